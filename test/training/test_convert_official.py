"""pixood-convert-official: official PixOOD checkpoints ▶ our checkpoint ▶ ONNX, scores equal to
a float64 re-computation of the published formulas; malicious pickles refused. The official files
are built by official_release.py (in the official structure, docs/method.md §7).
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from official_release import (
    BLOCKS,
    NUM_CLASSES,
    convert_argv,
    make_official_release,
    published_decoder,
    published_scores,
    published_table,
)
from scipy.stats import multivariate_normal
from torch import nn

from pixood_training.checkpoint import load_model, read_model_config
from pixood_training.convert_official.archive import load_official_checkpoint
from pixood_training.convert_official.build import build_decision
from pixood_training.convert_official.cli import main as convert_main
from pixood_training.convert_official.official import OfficialPixOOD
from pixood_training.convert_official.unpickler import UnsafePickleError


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


def _touch(marker):
    return _Exploit(os.system, f"touch {marker}")


# (payload, torch.save options, the global named in the refusal)
PAYLOADS = {
    "os.system, zip": (_touch, {}, "posix.system"),
    "os.system, legacy format": (_touch, {"_use_new_zipfile_serialization": False}, "posix.system"),
    "os.system, protocol 0": (_touch, {"pickle_protocol": 0}, "posix.system"),
    "os.system, protocol 2 legacy": (
        _touch,
        {"pickle_protocol": 2, "_use_new_zipfile_serialization": False},
        "posix.system",
    ),
    "builtins.eval": (
        lambda m: _Exploit(eval, f"open({str(m)!r}, 'w').close()"),
        {},
        "builtins.eval",
    ),
    "subprocess.Popen": (lambda m: _Exploit(subprocess.Popen, ["touch", str(m)]), {}, "Popen"),
    "a foreign class": (lambda m: collections.UserDict(), {}, "collections.UserDict"),
    "numpy object array": (lambda m: np.array([_touch(m), 1], dtype=object), {}, "posix.system"),
}


@pytest.mark.parametrize("which", ["pixood_ckpt", "backbone_ckpt"])
@pytest.mark.parametrize("payload", PAYLOADS)
def test_malicious_pickle_is_refused_without_running_it(release, tmp_path, capsys, which, payload):
    files, _ = release
    make, save_options, named = PAYLOADS[payload]
    marker = tmp_path / "pwned"
    bad = {**files, which: tmp_path / "evil.pth"}
    entry = {"state_dict": {}, "custom_data": {"knn_model": [make(marker)]}}
    torch.save(entry, bad[which], **save_options)
    with pytest.raises(UnsafePickleError, match=named.replace(".", r"\.")):
        load_official_checkpoint(bad[which])
    assert convert_main(convert_argv(bad, tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err and "refusing" in err
    assert not marker.exists() and not (tmp_path / "out" / "model.safetensors").exists()


_TORCHSCRIPT_MARKER: list[Path] = []  # where the archive's code writes when it runs


@torch.library.custom_op("pixood_test::touch_marker", mutates_args=())
def _touch_marker(x: torch.Tensor) -> torch.Tensor:
    """An operator the TorchScript archive calls while it loads (stands for any code in it)."""
    _TORCHSCRIPT_MARKER[-1].touch()
    return x.clone()


class _ScriptedOnLoad(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.zeros(1)

    @torch.jit.export
    def __getstate__(self) -> tuple[torch.Tensor, bool]:
        return (self.weight, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, bool]) -> None:
        self.weight = torch.ops.pixood_test.touch_marker(state[0])
        self.training = state[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight


@pytest.mark.parametrize(
    ("extra", "compression", "message"),
    [
        ("extra/notes.txt", zipfile.ZIP_STORED, "unexpected entry"),
        (None, zipfile.ZIP_DEFLATED, "compressed entry"),
    ],
)
def test_archive_entries_torch_save_does_not_write_are_refused(
    release, tmp_path, extra, compression, message
):
    files, _ = release
    odd = tmp_path / "odd.pth"
    with (
        zipfile.ZipFile(files["backbone_ckpt"]) as source,
        zipfile.ZipFile(odd, "w", compression=compression) as target,
    ):
        for name in source.namelist():
            target.writestr(name, source.read(name))
        if extra:
            target.writestr(f"{source.namelist()[0].split('/')[0]}/{extra}", b"")
    with pytest.raises(UnsafePickleError, match=message):
        load_official_checkpoint(odd)


@pytest.mark.parametrize("which", ["pixood_ckpt", "backbone_ckpt"])
def test_torchscript_archive_is_refused_before_its_code_runs(release, tmp_path, capsys, which):
    files, _ = release
    marker = tmp_path / "pwned"
    _TORCHSCRIPT_MARKER.append(marker)
    archive = tmp_path / "evil.pth"
    torch.jit.script(_ScriptedOnLoad()).save(str(archive))
    torch.jit.load(str(archive))  # the payload is live: loading it runs its code
    assert marker.exists()
    marker.unlink()
    assert convert_main(convert_argv({**files, which: archive}, tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "TorchScript" in err and "refusing" in err, err
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
