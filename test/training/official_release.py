"""Official PixOOD release files built in the official structure (docs/method.md §7), and the
published formulas in float64, for the pixood-convert-official tests.

Pickled instances of classes named ``helpers.kmeans.OnlineKMeans`` / ``DiffKMeansMultiClassv2``
(fake modules registered only while pickling), a SimpleNamespace N-P model with real scipy
interp1d tables produced by the published tabulation (§5.3), ``_orig_mod.`` keys, optimizer
entries, a tiny DINOv2 in the official key layout and a parameters.yaml.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from scipy.interpolate import interp1d
from scipy.spatial.distance import cdist
from scipy.stats import multivariate_normal
from torch import nn

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
    e, ell, labels, prototypes = _training_patches(backbone, decoder, rng)
    np_model = _published_np_model(e, ell, labels, prototypes, rng)
    pixood_ckpt = _write_pixood_checkpoint(root, prototypes, np_model, backbone, rng)
    files = {
        "backbone_ckpt": _write_backbone_checkpoint(root, decoder),
        "pixood_ckpt": pixood_ckpt,
        "params": _write_parameters(root, backbone.embed_dim),
        "dinov2": dinov2,
    }
    if with_backbone_config:
        files["backbone_config"] = _write_backbone_config(root)
    decoder_state = {f"decoder.{k}": v for k, v in decoder.state_dict().items()}
    truth = {"prototypes": prototypes, "np_model": np_model, "decoder": decoder_state}
    return files, truth


def _training_patches(backbone, decoder, rng):
    """Features e, logits ell, random labels and per-class prototypes of random images."""
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
    return e, ell, labels, prototypes


def _published_np_model(e, ell, labels, prototypes, rng):
    """Stage 3 as published (§5.2-5.3), float64: the N-P model with its interp1d tables."""
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
    return types.SimpleNamespace(
        class_means=means,
        class_covs=covs,
        ood_estimate_means=[np.array([0, 0]) for _ in range(NUM_CLASSES)],
        ood_estimate_covs=[ood_cov.copy() for _ in range(NUM_CLASSES)],
        ood_classes=[],
        interp_fnc=tables,
    )


def _write_pixood_checkpoint(root: Path, prototypes, np_model, backbone, rng) -> Path:
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
    return pixood_ckpt


def _write_backbone_checkpoint(root: Path, decoder) -> Path:
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
    return backbone_ckpt


def _write_parameters(root: Path, embed_dim: int) -> Path:
    params = root / "parameters.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "MODEL": {
                    "NET": "GROODNetKNMSoftMultiClass",
                    "FILENAME": "grood",
                    "NUM_CLASSES": NUM_CLASSES,
                    "EMB_SIZE": embed_dim,
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
    return params


def _write_backbone_config(root: Path) -> Path:
    path = root / "dinov2_vit_l.yaml"
    model = {
        "NET": "DINOv2NetMultiScaleBaseline",
        "ARCH": "dinov2_vits14",
        "MULTISCALE": list(BLOCKS),
        "NUM_CLASSES": NUM_CLASSES,
    }
    path.write_text(yaml.safe_dump({"MODEL": model}))
    return path


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
