"""pixood-convert-official: official PixOOD checkpoints ▶ our checkpoint ▶ ONNX, scores equal to
a float64 re-computation of the published formulas; malicious pickles refused.

The official files are built here in the official structure (docs/method.md §7): pickled instances
of classes named ``helpers.kmeans.OnlineKMeans`` / ``DiffKMeansMultiClassv2`` (fake modules
registered only while pickling), a SimpleNamespace N-P model with real scipy interp1d tables
produced by the published tabulation (§5.3), ``_orig_mod.`` keys, optimizer entries, a tiny DINOv2
in the official key layout and a parameters.yaml.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from scipy.interpolate import interp1d
from scipy.spatial.distance import cdist
from scipy.stats import multivariate_normal
from torch import nn

from pixood_training.checkpoint import load_model, read_model_config
from pixood_training.convert_official.build import build_decision
from pixood_training.convert_official.cli import main as convert_main
from pixood_training.convert_official.official import OfficialPixOOD
from pixood_training.convert_official.unpickler import UnsafePickleError, load_official_checkpoint
from pixood_training.models.backbone import DinoV2Backbone, timm_to_official, tiny_backbone_config
from pixood_training.models.decoder import MLPDecoder
from pixood_training.models.preprocess import preprocess_image

NUM_CLASSES = 3
BLOCKS = (1, 3)  # official MULTISCALE of the fixture (not the default quarters 0,1,2,3)
GRID = 500  # published 2000; the converter does not care about the table length
PROTOS_PER_CLASS = (5, 8, 3)


# -- the published formulas, float64 (docs/method.md §4.7, §5.2-§5.4) ---------------------------
def published_table(mean, cov, ood_mean, ood_cov, logit_max, grid=GRID):
    """interp1d table exactly as the published stage 3: grid ratios sorted, ties skipped (their
    mass dropped), NaN / inf knots kept, X = [0, midpoints, inf], Y = [0, cumulative mass, 1]."""
    ll, ss = np.meshgrid(
        np.linspace(-logit_max - 5, logit_max + 5, grid), np.linspace(0.0, 1.0, grid)
    )
    points = np.stack([ll.ravel(), ss.ravel()], axis=1)
    p_c = multivariate_normal(mean, cov, allow_singular=True).pdf(points)
    p_o = multivariate_normal(ood_mean, ood_cov, allow_singular=True).pdf(points)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = p_c / p_o
    order = np.argsort(r)
    r, p_c_sorted = r[order], p_c[order]
    with np.errstate(invalid="ignore", over="ignore"):
        new = r[1:] != r[:-1]  # NaN != NaN: NaN knots are kept, as in the published loop
        mid = (r[1:] + r[:-1]) / 2
    x = mid[new]
    y = np.cumsum(np.where(new, p_c_sorted[1:], 0.0))[new] / p_c.sum()
    return interp1d(np.r_[0.0, x, np.inf], np.r_[0.0, y, 1.0])


def published_scores(e, logits, prototypes, np_model):
    """S [N, C]: raw Euclidean nearest prototype, sim 1/(1+0.5 d), scipy pdf ratio, interp1d."""
    e, logits = np.asarray(e, np.float64), np.asarray(logits, np.float64)
    scores = np.zeros_like(logits)
    for c, protos in enumerate(prototypes):
        d = cdist(e, protos.double().numpy()).min(axis=1)
        z = np.stack([logits[:, c], 1.0 / (1.0 + 0.5 * d)], axis=1)
        p_c = multivariate_normal(np_model.class_means[c], np_model.class_covs[c]).pdf(z)
        p_o = multivariate_normal(
            np_model.ood_estimate_means[c], np_model.ood_estimate_covs[c]
        ).pdf(z)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            scores[:, c] = np_model.interp_fnc[c](p_c / p_o)
    return scores


def published_decoder(features, state):
    """Official decoder (1x1 conv, exact GELU, 1x1 conv) in float64 on [N, in] features."""
    w0 = state["decoder.0.weight"][:, :, 0, 0].double()
    w2 = state["decoder.2.weight"][:, :, 0, 0].double()
    hidden = F.gelu(features.double() @ w0.T + state["decoder.0.bias"].double())
    return hidden @ w2.T + state["decoder.2.bias"].double()


# -- official-structure fixture ---------------------------------------------------------------
def _official_classes():
    def kmeans_init(self, clusters, var, weight):
        self.clusters, self.cluster_var, self.cluster_weight = clusters, var, weight
        self.MAX_NUM_CLUSTERS, self.normalize_by_tau, self.exp_decay = 250, False, 0.01
        self.intra_dist_factor, self.max_var, self.min_var = 3.0, 900, 25
        self.mahalanobis_dist = False

    def diff_init(self, num_classes, k, dim):
        nn.Module.__init__(self)
        self._mu = nn.Parameter(torch.randn(num_classes, k, dim))
        self.exp_distr_temp = nn.Parameter(torch.full((num_classes, k), -4.3944))
        self.cluster_temp = nn.Parameter(torch.tensor(2.0))
        self.running_assignment = nn.Parameter(torch.rand(num_classes, k), requires_grad=False)
        self.running_batchsize = nn.Parameter(torch.ones(num_classes), requires_grad=False)
        self.register_buffer("norm_data_med", torch.zeros(dim))
        self.register_buffer("norm_data_std", torch.ones(dim))
        self._mu_init = self._mu.detach().clone()
        self.class_t = torch.zeros(num_classes, dtype=torch.long)
        self.reset_assignment_thr_, self.decay_assign, self.knn_type = 0.5, 0.001, "condensation"
        self.hist_assignment = [np.random.rand(num_classes, k) for _ in range(3)]
        self.training_loss = [np.float64(1.5), 1.25]
        self.not_valid_mask = torch.zeros(num_classes, k, dtype=torch.bool)

    online = type("OnlineKMeans", (), {"__module__": "helpers.kmeans", "__init__": kmeans_init})
    diff = type(
        "DiffKMeansMultiClassv2",
        (nn.Module,),
        {"__module__": "helpers.kmeans", "__init__": diff_init},
    )
    return online, diff


def save_with_official_modules(obj, path):
    """torch.save while fake ``helpers.kmeans`` modules exist; they are removed afterwards."""
    helpers, kmeans = types.ModuleType("helpers"), types.ModuleType("helpers.kmeans")
    helpers.kmeans = kmeans
    for cls in obj.pop("_classes", ()):
        setattr(kmeans, cls.__name__, cls)
    sys.modules["helpers"], sys.modules["helpers.kmeans"] = helpers, kmeans
    try:
        torch.save(obj, path)
    finally:
        del sys.modules["helpers"], sys.modules["helpers.kmeans"]


def _adamw_state(params):
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    sum(p.sum() for p in params).backward()
    optimizer.step()
    return optimizer.state_dict()


def make_official_release(root: Path, seed: int = 0, with_backbone_config: bool = True):
    """Write the official files into root; return paths and the ground truth used to make them."""
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    backbone = DinoV2Backbone(tiny_backbone_config(num_heads=1, blocks=BLOCKS))
    dinov2 = root / "dinov2_vits14_tiny.pth"
    torch.save(timm_to_official(backbone.vit.state_dict(), backbone.config), dinov2)
    decoder = MLPDecoder(backbone.out_channels, NUM_CLASSES, hidden_channels=24).eval()
    with torch.no_grad():
        decoder[2].weight.mul_(4.0)  # livelier logits than the default init

    # "training patches": features of random images, labels drawn at random
    images = torch.from_numpy(rng.randint(0, 256, (4, 56, 84, 3)).astype(np.uint8))
    with torch.no_grad():
        feats = backbone(preprocess_image(images))
        logits = decoder(feats)
    e = feats[:, -backbone.embed_dim :].permute(0, 2, 3, 1).reshape(-1, backbone.embed_dim)
    ell = logits.permute(0, 2, 3, 1).reshape(-1, NUM_CLASSES).double().numpy()
    labels = rng.randint(0, NUM_CLASSES, e.shape[0])
    prototypes = []
    for c, k in enumerate(PROTOS_PER_CLASS):
        rows = rng.choice(np.flatnonzero(labels == c), k, replace=False)
        prototypes.append((e[rows] + 0.05 * torch.randn(k, e.shape[1])).float())

    # stage 3 as published (§5.2-5.3), float64
    means, covs, quant = [], [], []
    for c in range(NUM_CLASSES):
        rows = labels == c
        d = cdist(e[rows].double().numpy(), prototypes[c].double().numpy()).min(axis=1)
        z = np.stack([ell[rows, c], 1.0 / (1.0 + 0.5 * d)], axis=1)
        means.append(z.mean(axis=0))
        covs.append(np.cov(z.T))
        quant.append(np.quantile(z, 0.9, axis=0))
    a_bar, b_bar = np.mean(quant, axis=0)
    draws = np.stack([rng.normal(0, abs(a_bar) / 4, 10000), rng.normal(0, b_bar / 8, 10000)])
    ood_cov = np.cov(draws)
    logit_max = float(ell.max())
    tables = [
        published_table(means[c], covs[c], np.zeros(2), ood_cov, logit_max)
        for c in range(NUM_CLASSES)
    ]
    np_model = types.SimpleNamespace(
        class_means=means,
        class_covs=covs,
        ood_estimate_means=[np.array([0, 0]) for _ in range(NUM_CLASSES)],
        ood_estimate_covs=[ood_cov.copy() for _ in range(NUM_CLASSES)],
        ood_classes=[],
        interp_fnc=tables,
    )

    online, diff = _official_classes()
    knn = [online(p.clone(), torch.rand(len(p)) * 10, torch.rand(len(p))) for p in prototypes]
    condensation = diff(NUM_CLASSES, 8, backbone.embed_dim)
    pixood_ckpt = root / "checkpoint-latest.pth"
    save_with_official_modules(
        {
            "_classes": (online, diff),
            "epoch": 1,
            "state_dict": {},
            "optimizer": _adamw_state([condensation._mu, condensation.exp_distr_temp]),
            "best_pred": 0.0,
            "custom_data": {
                "knn_model": knn,
                "all_knn_models": [knn],
                "all_knn_models_stats": rng.rand(1, 4),
                "kmeans_mc_models": [condensation],
                "kmeans_mc_models_train_loss": [[2.0, 1.5]],
                "n_p_model": np_model,
            },
            "save_trainable_only": True,
        },
        pixood_ckpt,
    )
    backbone_ckpt = root / "checkpoint-backbone.pth"
    state = {f"_orig_mod.decoder.{k}": v.clone() for k, v in decoder.state_dict().items()}
    torch.save(
        {
            "epoch": 13,
            "state_dict": state,
            "optimizer": _adamw_state([nn.Parameter(v.clone()) for v in state.values()]),
            "best_pred": 0.61,
            "custom_data": {},
            "save_trainable_only": True,
        },
        backbone_ckpt,
    )
    params = root / "parameters.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "MODEL": {
                    "NET": "GROODNetKNMSoftMultiClass",
                    "FILENAME": "grood",
                    "NUM_CLASSES": NUM_CLASSES,
                    "EMB_SIZE": backbone.embed_dim,
                    "PATCH_SIZE": 14,
                    "PATCH_MAJORITY_VOTE_THR": 0.9,
                    "TAU_NORM": False,
                    "FEATURE_RESIZE_FACTOR": 1,
                    "MAX_K": 1000,
                    "INIT_TAU": 10,
                    "MAHALANOBIS_DIST": False,
                },
                "LOSS": {"IGNORE_LABEL": 255},
                "INPUT": {
                    "IMG_SIZE": 1792,
                    "NORM_MEAN": [0.485, 0.456, 0.406],
                    "NORM_STD": [0.229, 0.224, 0.225],
                },
                "EXPERIMENT": {
                    "OUT_DIR": "./",
                    "NAME": "grood_logml_1000K_01adamw_tau10_resetthr1",
                },
            }  # fmt: skip
        )
    )
    files = {
        "backbone_ckpt": backbone_ckpt,
        "pixood_ckpt": pixood_ckpt,
        "params": params,
        "dinov2": dinov2,
    }
    if with_backbone_config:
        files["backbone_config"] = root / "dinov2_vit_l.yaml"
        files["backbone_config"].write_text(
            yaml.safe_dump(
                {
                    "MODEL": {
                        "NET": "DINOv2NetMultiScaleBaseline",
                        "ARCH": "dinov2_vits14",
                        "MULTISCALE": list(BLOCKS),
                        "NUM_CLASSES": NUM_CLASSES,
                    }
                }
            )  # fmt: skip
        )
    decoder_state = {f"decoder.{k}": v for k, v in decoder.state_dict().items()}
    truth = {"prototypes": prototypes, "np_model": np_model, "decoder": decoder_state}
    return files, truth


def convert_argv(files, out, *extra):
    argv = [
        "--backbone-ckpt", str(files["backbone_ckpt"]), "--pixood-ckpt", str(files["pixood_ckpt"]),
        "--params", str(files["params"]), "-o", str(out),
    ]  # fmt: skip
    if files.get("dinov2") is not None:
        argv += ["--dinov2-weights", str(files["dinov2"])]
    if "backbone_config" in files:
        argv += ["--backbone-config", str(files["backbone_config"])]
    return argv + list(extra)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return make_official_release(tmp_path_factory.mktemp("official"))


@pytest.fixture(scope="module")
def converted(release, tmp_path_factory):
    files, _ = release
    out = tmp_path_factory.mktemp("converted") / "ckpt"
    assert convert_main(convert_argv(files, out)) == 0
    return out


def _test_image(seed=1, height=60, width=90):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, (height, width, 3)).astype(np.uint8)


# -- tests --------------------------------------------------------------------------------------
def test_official_files_load_without_official_code(release):
    files, truth = release
    assert "helpers" not in sys.modules and "helpers.kmeans" not in sys.modules
    data = load_official_checkpoint(files["pixood_ckpt"])
    knn = data["custom_data"]["knn_model"]
    assert type(knn[0]).official_name == "helpers.kmeans.OnlineKMeans"
    torch.testing.assert_close(knn[1].clusters, truth["prototypes"][1])
    module = data["custom_data"]["kmeans_mc_models"][0]
    assert type(module).official_name == "helpers.kmeans.DiffKMeansMultiClassv2"
    assert not isinstance(module, nn.Module)  # inert container: no official code runs
    assert "helpers" not in sys.modules


def test_converted_checkpoint_structure(release, converted):
    files, truth = release
    config = read_model_config(converted)
    assert config["backbone"]["embed_dim"] == 32 and config["backbone"]["depth"] == 4
    assert config["backbone"]["blocks"] == list(BLOCKS)  # from MULTISCALE, not the quarters
    assert config["scorer"]["name"] == "pixood"
    assert config["eval_labels"] == [0, 1] and config["network_long_side"] == 0
    model = load_model(converted)
    for key, value in truth["decoder"].items():  # decoder copied unchanged, _orig_mod. stripped
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)
    official_vit = torch.load(files["dinov2"], weights_only=True)
    torch.testing.assert_close(model.backbone.vit.blocks[3].mlp.fc2.weight,
                               official_vit["blocks.3.mlp.fc2.weight"], rtol=0, atol=0)  # fmt: skip


def test_patch_scores_equal_published_formulas(release, converted):
    _, truth = release
    model = load_model(converted)
    image = torch.from_numpy(_test_image())[None]
    with torch.no_grad():
        x = model.preprocess(image)
        features, _ = model.features_and_logits(x)
        logits, ours = model.patch_scores(x)
    dim = model.backbone.embed_dim
    e = features[:, -dim:].permute(0, 2, 3, 1).reshape(-1, dim)
    ell = published_decoder(features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]),
                            truth["decoder"])  # fmt: skip
    reference = published_scores(e, ell, truth["prototypes"], truth["np_model"])
    ours = ours.permute(0, 2, 3, 1).reshape(-1, NUM_CLASSES).double().numpy()
    assert np.isfinite(reference).all()
    assert reference.std() > 0.05  # the test points spread over the tables, not one plateau
    np.testing.assert_allclose(ours, reference, atol=1e-3, rtol=0)


@pytest.mark.slow
def test_exported_model_equals_published_anomaly(release, converted, tmp_path):
    from pixood_ros.engine import Segmenter
    from pixood_training.export.cli import main as export_main

    _, truth = release
    onnx_path = tmp_path / "official.onnx"
    assert export_main([str(converted), "-o", str(onnx_path), "--check-sizes", "60x90"]) == 0
    segmenter = Segmenter(str(onnx_path), providers=["CPUExecutionProvider"])
    assert segmenter.info.scorer == "pixood" and list(segmenter.info.eval_labels) == [0, 1]
    rgb = _test_image(seed=2, height=70, width=100)
    result = segmenter(rgb)

    model = load_model(converted)  # features in PyTorch; everything after in float64
    with torch.no_grad():
        features, _ = model.features_and_logits(model.preprocess(torch.from_numpy(rgb)[None]))
    _, _, h, w = features.shape
    dim = model.backbone.embed_dim
    e = features[:, -dim:].permute(0, 2, 3, 1).reshape(-1, dim)
    ell = published_decoder(features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]),
                            truth["decoder"])  # fmt: skip
    scores = published_scores(e, ell, truth["prototypes"], truth["np_model"])
    scores = torch.from_numpy(scores).reshape(1, h, w, NUM_CLASSES).permute(0, 3, 1, 2)
    full = F.interpolate(scores[:, [0, 1]], size=rgb.shape[:2], mode="bilinear",
                         align_corners=False)  # fmt: skip
    anomaly = (1.0 - full.amax(dim=1))[0].numpy()
    np.testing.assert_allclose(result.anomaly_score, anomaly, atol=1e-3, rtol=0)
    semantic = ell.argmax(dim=1).reshape(h, w).numpy()
    rows = np.arange(rgb.shape[0]) * h // rgb.shape[0]
    cols = np.arange(rgb.shape[1]) * w // rgb.shape[1]
    assert (result.semantic == semantic[rows][:, cols]).mean() > 0.99


def test_non_finite_published_knots_are_dropped_with_equal_finite_scores():
    """A narrow OOD guess makes both pdfs underflow on part of the grid: the published table then
    holds NaN knots and scores NaN / 1.0 there; finite published scores are reproduced."""
    means = [np.array([3.0, 0.3]), np.array([1.0, 0.1])]
    covs = [np.array([[1.0, 0.005], [0.005, 1e-4]]), np.array([[0.5, 0.0], [0.0, 4e-5]])]
    ood_cov = np.diag([4.0, 0.0004])
    tables = [
        published_table(mean, cov, np.zeros(2), ood_cov, 6.0, grid=300)
        for mean, cov in zip(means, covs, strict=True)
    ]
    assert all(np.isnan(t.x).any() for t in tables)
    official = OfficialPixOOD(
        prototypes=[torch.zeros(1, 2), torch.zeros(1, 2)],
        class_means=np.stack(means), class_covs=np.stack(covs),
        ood_means=np.zeros((2, 2)), ood_covs=np.stack([ood_cov, ood_cov]),
        knots_x=[t.x for t in tables], knots_y=[t.y for t in tables],
    )  # fmt: skip
    decision, kept, dropped = build_decision(official)
    assert dropped > 0 and all(k > 10 for k in kept)
    rng = np.random.RandomState(0)
    logits = rng.uniform(-8, 8, (4000, 2))
    dists = rng.uniform(0, 20, (4000, 2))
    np_model = types.SimpleNamespace(
        class_means=means, class_covs=covs, ood_estimate_means=[np.zeros(2)] * 2,
        ood_estimate_covs=[ood_cov] * 2, interp_fnc=tables,
    )  # fmt: skip
    reference = np.zeros((4000, 2))
    for c in range(2):
        z = np.stack([logits[:, c], 1.0 / (1.0 + 0.5 * dists[:, c])], axis=1)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ratio = multivariate_normal(means[c], covs[c]).pdf(z) / multivariate_normal(
                np.zeros(2), ood_cov
            ).pdf(z)
        reference[:, c] = np_model.interp_fnc[c](ratio)
    ours = decision.scores(torch.from_numpy(logits).float(), torch.from_numpy(dists).float())
    ours = ours.double().numpy()
    assert np.isfinite(ours).all()
    published_nan = ~np.isfinite(reference)
    assert published_nan.any()  # the published code does give NaN scores here
    finite = ~published_nan
    np.testing.assert_allclose(ours[finite], reference[finite], atol=1e-3, rtol=0)


class _Exploit:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


@pytest.mark.parametrize(
    ("which", "func", "named"),
    [("pixood_ckpt", os.system, "posix.system"), ("backbone_ckpt", eval, "builtins.eval")],
)
def test_malicious_pickle_is_refused_without_running_it(
    release, tmp_path, capsys, which, func, named
):
    files, _ = release
    marker = tmp_path / "pwned"
    payload = f"touch {marker}" if func is os.system else f"open({str(marker)!r}, 'w').close()"
    bad = dict(files)
    bad[which] = tmp_path / "evil.pth"
    entry = {"state_dict": {}, "custom_data": {"knn_model": [_Exploit(func, payload)]}}
    torch.save(entry, bad[which])
    with pytest.raises(UnsafePickleError, match=named.replace(".", r"\.")):
        load_official_checkpoint(bad[which])
    assert convert_main(convert_argv(bad, tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err and "refusing" in err
    assert not marker.exists() and not (tmp_path / "out" / "model.safetensors").exists()


def test_default_blocks_are_quarters_and_mismatch_is_a_clear_error(release, tmp_path, capsys):
    files, _ = release
    no_config = {k: v for k, v in files.items() if k != "backbone_config"}
    # the fixture decoder was trained on blocks (1, 3); quarters of 4 blocks = (0, 1, 2, 3)
    assert convert_main(convert_argv(no_config, tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "128" in err and "64 input channels" in err and "[0, 1, 2, 3]" in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f, t: {**f, "params": t / "missing.yaml"}, "--params file not found"),
        (lambda f, t: {**f, "pixood_ckpt": f["backbone_ckpt"]}, "knn_model"),
        (lambda f, t: {**f, "backbone_ckpt": f["params"]}, "cannot read backbone checkpoint"),
        (
            lambda f, t: {k: v for k, v in f.items() if k not in ("dinov2", "backbone_config")},
            "without --dinov2-weights the DINOv2 size comes from MODEL.ARCH",
        ),
    ],
)
def test_user_mistakes_exit_2_with_one_line(release, tmp_path, capsys, change, message):
    files, _ = release
    assert convert_main(convert_argv(change(files, tmp_path), tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_unsupported_official_settings_are_refused(release, tmp_path, capsys):
    files, _ = release
    params = yaml.safe_load(files["params"].read_text())
    params["MODEL"]["TAU_NORM"] = True
    bad = tmp_path / "parameters.yaml"
    bad.write_text(yaml.safe_dump(params))
    assert convert_main(convert_argv({**files, "params": bad}, tmp_path / "out")) == 2
    assert "TAU_NORM" in capsys.readouterr().err


def test_eval_labels_option(release, tmp_path):
    files, _ = release
    assert convert_main(convert_argv(files, tmp_path / "all", "--eval-labels", "all")) == 0
    assert read_model_config(tmp_path / "all")["eval_labels"] == [0, 1, 2]
    with pytest.raises(SystemExit) as exit_info:
        convert_main(convert_argv(files, tmp_path / "bad", "--eval-labels", "road"))
    assert exit_info.value.code == 2
