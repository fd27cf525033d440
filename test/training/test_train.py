"""Training pipeline: feature cache reuse/invalidation, config and CLI errors, `pixood-train all`
end to end on a tiny synthetic set, and resuming after kill -9 to the same result."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from train_runs import TINY_CONFIG, synth_set
from train_runs import train as _train

from pixood_ros import durable
from pixood_training.data import FolderDataset
from pixood_training.data.feature_cache import FeatureCache, build_feature_cache
from pixood_training.data.patch_labels import majority_patch_labels
from pixood_training.train.cli import main
from pixood_training.train.config import ConfigError, load_config
from pixood_training.train.experiment import Experiment, load_torch, save_torch

# --- patch labels + feature cache -------------------------------------------------------------


def test_majority_patch_labels_threshold_and_void():
    labels = torch.full((1, 28, 28), 255, dtype=torch.long)
    labels[0, :14, :14] = 3  # pure patch
    labels[0, :14, 14:] = 5
    labels[0, :2, 14:16] = 7  # 4/196 foreign pixels: still >= 0.9 class 5
    labels[0, 14:, :14] = 1
    labels[0, 14:21, :14] = 2  # 50/50 -> void
    out = majority_patch_labels(labels, 14, 0.9)
    assert out.tolist() == [[[3, 5], [255, 255]]]


def _tiny_folder(root: Path, n: int = 5) -> FolderDataset:
    rng = np.random.default_rng(0)
    for i in range(n):
        (root / "img").mkdir(parents=True, exist_ok=True)
        (root / "lbl").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (28, 56, 3), dtype=np.uint8)).save(
            root / "img" / f"{i}.png"
        )
        labels = np.zeros((28, 56), np.uint8)
        labels[:, 28:] = 2
        Image.fromarray(labels).save(root / "lbl" / f"{i}.png")
    return FolderDataset(root / "img", root / "lbl", num_classes=19, size=(28, 56))


class CountingExtractor:
    """Stand-in for backbone + decoder: features = mean colour per patch, logits = 2 channels."""

    def __init__(self, offset: float = 0.0) -> None:
        self.calls = 0
        self.offset = offset

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        feats = torch.nn.functional.avg_pool2d(images, 14) + self.offset
        return feats, feats[:, :2] * 2


def test_feature_cache_is_reused_resumed_and_invalidated(tmp_path):
    data = _tiny_folder(tmp_path / "data")
    key = {"weights": "a", "data": data.fingerprint()}
    cache_dir = tmp_path / "cache"
    extract = CountingExtractor()
    cache = build_feature_cache(cache_dir, data, extract, key, batch_size=2, progress=False)
    assert extract.calls == 3 and len(cache) == 3 and cache.is_valid()
    batch = cache.batch(2)  # last batch holds one image
    assert batch.features.shape == (1, 2, 4, 3) and batch.features.dtype == torch.float16
    assert batch.logits.shape == (1, 2, 4, 2) and batch.labels.tolist() == [[[0, 0, 2, 2]] * 2]
    expected = torch.nn.functional.avg_pool2d(data[4]["image"][None], 14)
    assert torch.allclose(batch.features.float(), expected.permute(0, 2, 3, 1), atol=1e-3)

    # Same key: nothing recomputed.
    again = CountingExtractor()
    build_feature_cache(cache_dir, data, again, key, batch_size=2, progress=False)
    assert again.calls == 0

    # Interrupted extraction (one batch missing, not marked complete): only that batch is redone.
    (cache_dir / "b000001_labels.npy").unlink()
    record = json.loads((cache_dir / "key.json").read_text())
    (cache_dir / "key.json").write_text(json.dumps({**record, "complete": False}))
    assert not FeatureCache(
        cache_dir, {**key, "batch_size": 2, "patch": 14, "threshold": 0.9}
    ).is_valid()
    resumed = CountingExtractor()
    build_feature_cache(cache_dir, data, resumed, key, batch_size=2, progress=False)
    assert resumed.calls == 1

    # Changed weights: everything recomputed, with the new values.
    shifted = CountingExtractor(offset=1.0)
    cache = build_feature_cache(
        cache_dir, data, shifted, {**key, "weights": "b"}, batch_size=2, progress=False
    )
    assert shifted.calls == 3
    assert torch.allclose(
        cache.batch(2).features.float(), expected.permute(0, 2, 3, 1) + 1, atol=1e-3
    )

    # Changed data (a file rewritten): the fingerprint, hence the key, changes.
    Image.fromarray(np.zeros((28, 56, 3), np.uint8)).save(tmp_path / "data" / "img" / "0.png")
    os.utime(tmp_path / "data" / "img" / "0.png", ns=(1, 1))
    new_key = {"weights": "b", "data": data.fingerprint()}
    assert new_key != {**key, "weights": "b"}
    rebuilt = CountingExtractor()
    build_feature_cache(cache_dir, data, rebuilt, new_key, batch_size=2, progress=False)
    assert rebuilt.calls == 3

    # Different batch size = different cache layout: rebuilt too.
    other = CountingExtractor()
    build_feature_cache(cache_dir, data, other, new_key, batch_size=5, progress=False)
    assert other.calls == 1


# --- config + CLI errors -----------------------------------------------------------------------


def test_config_overrides_apply():
    cfg = load_config(TINY_CONFIG, ["stage1.epochs=7", "data.root=/x", "model.eval_labels=[0,1]"])
    assert cfg.stage1.epochs == 7 and cfg.model.eval_labels == [0, 1] and cfg.data.root == "/x"
    assert cfg.condense.trainer["K"] == 16  # the file's value; the rest of the section stays
    assert cfg.condense.cache_batch_size == 4 and cfg.data.splits["ood"] == "ood_val"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("stage1.epoch=3", "unknown config key 'stage1.epoch'"),
        ("stage1.batch_size=0", "stage1.batch_size must be a positive integer"),
        ("data.long_side=100", "data.long_side must be a positive multiple of 14"),
        ("decide.scorers=[pixood,nope]", "decide.scorers must be a non-empty list out of"),
        ("data.kind=lidar", "data.kind must be one of cityscapes, synth, folder"),
        ("stage1.lr=fast", "stage1.lr must be a non-negative number, got 'fast'"),
        ("condense.Kay=3", "unknown config key 'condense.Kay'"),
        ("condense.shuffle=3", "condense.shuffle must be true or false"),
        ("condense.init_tau=500.0", "condense: init_tau must be in"),
        ("stage1=3", "stage1 must be a mapping"),
        ("stage1.epochs", "not of the form key.path=value"),
    ],
)
def test_config_mistakes_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(TINY_CONFIG, [override])


def test_unreadable_config_file_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage1: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot parse config file"):
        load_config(bad)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)) * 4, "is not a UTF-8 text file"),
        (b"\0" * 64, "cannot parse config file"),
        (None, "is a directory, not a file"),
    ],
)
def test_binary_config_file_exits_2_with_one_line(tmp_path, capsys, content, message):
    config = tmp_path / "config.yaml"
    if content is None:
        config.mkdir()
    else:
        config.write_bytes(content)
    argv = ["stage1", "--config", str(config), "--out", str(tmp_path / "exp"), "--no-progress"]
    err = _one_line_error(capsys, argv)
    assert message in err and str(config) in err


def _one_line_error(capsys, argv: list[str], progress_before: bool = False) -> str:
    """Exit code 2 and exactly one error line (after the run's own log lines, for errors that
    only show once a stage reads the data), no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    if not progress_before:
        assert len(lines) == 1, err
    assert lines[-1].startswith("pixood-train: error: "), err
    assert not any("error" in line for line in lines[:-1]), err
    return lines[-1]


def test_cli_user_mistakes_exit_2_with_one_line(tmp_path, capsys):
    out = ["--out", str(tmp_path / "exp"), "--no-progress"]
    err = _one_line_error(capsys, ["stage1", "--config", str(tmp_path / "missing.yaml"), *out])
    assert "config file not found" in err and "missing.yaml" in err
    err = _one_line_error(capsys, ["stage1", "--config", str(TINY_CONFIG), "stage1.lr=fast", *out])
    assert "stage1.lr" in err
    err = _one_line_error(
        capsys, ["stage1", "--config", str(TINY_CONFIG), f"data.root={tmp_path / 'nodata'}", *out]
    )
    assert "nodata" in err
    root = synth_set(tmp_path / "synth", {"train": 1, "val": 1, "ood_val": 1}, 112, 56, seed=1)
    err = _one_line_error(
        capsys, ["decide", "--config", str(TINY_CONFIG), f"data.root={root}", *out]
    )
    assert "stage stage1 is not complete" in err


@pytest.mark.parametrize("workers", [0, 1])
def test_cli_broken_data_file_names_it(tmp_path, capsys, workers):
    """Also when the file is read in a DataLoader worker process (its traceback is not shown)."""
    root = synth_set(tmp_path / "synth", {"train": 2, "val": 1, "ood_val": 1}, 112, 56, seed=1)
    victim = next((root / "gtFine" / "train" / "synth").glob("*.png"))
    Image.fromarray(np.full((56, 112), 40, np.uint8)).save(victim)
    argv = ["stage1", "--config", str(TINY_CONFIG), f"data.root={root}", "stage1.epochs=1"]
    out = ["--out", str(tmp_path / "exp"), "--no-progress", f"data.num_workers={workers}"]
    err = _one_line_error(capsys, [*argv, *out], progress_before=True)
    assert victim.name in err and "[40]" in err


class _TouchOnLoad:
    """Unpickling this runs ``touch marker`` (what a hostile state.pt would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _hostile_experiment(tmp_path: Path, *, record: bool) -> tuple[list[str], Experiment, Path]:
    """A stage1 command, its experiment, and a stage1/state.pt that runs code when unpickled
    (with a state.json naming this config when `record`)."""
    root = synth_set(tmp_path / "synth", {"train": 1, "val": 1, "ood_val": 1}, 112, 56, seed=1)
    overrides = [f"data.root={root}"]
    exp = Experiment(tmp_path / "exp", load_config(TINY_CONFIG, overrides))
    marker = tmp_path / "pwned"
    exp.path("stage1").mkdir(parents=True)
    torch.save({"epoch": _TouchOnLoad(marker)}, exp.path("stage1", "state.pt"))
    if record:
        record_text = json.dumps({"config_hash": exp.stage_hash("stage1")})
        exp.path("stage1", "state.json").write_text(record_text)
    argv = ["stage1", "--config", str(TINY_CONFIG), *overrides, "--out", str(exp.dir)]
    return [*argv, "--no-progress"], exp, marker


def test_hostile_resume_state_is_refused_without_running_it(tmp_path, capsys):
    argv, _, marker = _hostile_experiment(tmp_path, record=True)
    err = _one_line_error(capsys, argv, progress_before=True)
    assert "cannot read" in err and "state.pt" in err and "posix.system" in err, err
    assert "--force" in err and "weights_only" not in err
    assert not marker.exists()


def test_resume_state_is_opened_only_after_its_config_hash_matches(tmp_path, monkeypatch):
    _, exp, marker = _hostile_experiment(tmp_path, record=False)

    def never(*args, **kwargs):
        raise AssertionError("state.pt opened before its config hash was checked")

    monkeypatch.setattr(torch, "load", never)
    assert exp.load_state("stage1") is None  # no state.json: not ours
    exp.path("stage1", "state.json").write_text(json.dumps({"config_hash": "0" * 64}))
    assert exp.load_state("stage1") is None  # another config's
    assert not marker.exists()
    assert "ignoring resume state" in (exp.dir / "train.log").read_text()


def test_failed_save_keeps_the_previous_file_and_stale_temporaries_go(tmp_path, monkeypatch):
    """A full disk mid-save leaves the last complete file; a killed run's temporary files are
    removed when the experiment is opened again."""
    exp = Experiment(tmp_path / "exp", load_config(TINY_CONFIG))
    best = exp.path("stage1", "decoder_best.pt")
    save_torch({"w": torch.ones(2)}, best)

    def full_disk(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError):
        save_torch({"w": torch.zeros(2)}, best)
    assert torch.equal(load_torch(best)["w"], torch.ones(2))
    assert [p.name for p in best.parent.iterdir()] == ["decoder_best.pt"]
    stale = exp.path("stage1", f"{durable.TEMP_PREFIX}999_state.pt")
    stale.write_bytes(b"half")
    Experiment(exp.dir, exp.config)
    assert not stale.exists() and best.is_file()


# --- end to end --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory) -> Path:
    counts = {"train": 24, "val": 4, "ood_val": 8}
    return synth_set(tmp_path_factory.mktemp("synth_tiny"), counts, width=448, height=224)


@pytest.fixture(scope="module")
def reference_run(tiny_synth, tmp_path_factory) -> Path:
    exp = tmp_path_factory.mktemp("exp_reference")
    result = _train("all", exp, tiny_synth)
    assert result.returncode == 0, result.stderr[-3000:]
    return exp


@pytest.mark.slow
def test_train_all_end_to_end_separates_anomalies(reference_run):
    from pixood_training.checkpoint import load_model

    metrics = json.loads((reference_run / "metrics.json").read_text())
    assert metrics["stage1"]["val_miou"] > 0.1
    scorers = metrics["decide"]["scorers"]
    # Under the default monotone rule decide also scores the published rule on the same fit.
    expected = {"pixood", "pixood_published", "msp", "maxlogit", "energy", "kmeans"}
    assert set(scorers) == expected
    assert (reference_run / "checkpoints" / "pixood_published").exists()
    pix = scorers["pixood"]
    assert 0 < pix["anomaly_fraction"] < 0.2
    assert pix["ap"] > 3 * pix["anomaly_fraction"], pix  # chance level AP = anomaly fraction
    assert pix["auroc"] > 0.7, pix
    model = load_model(reference_run / "checkpoints" / "pixood")
    with torch.no_grad():
        anomaly, semantic, confidence = model(torch.zeros(1, 60, 90, 3, dtype=torch.uint8))
    assert anomaly.shape == (1, 60, 90) and semantic.dtype == torch.uint8
    assert float(anomaly.min()) >= 0 and float(anomaly.max()) <= 1
    assert (reference_run / "config.yaml").is_file() and (reference_run / "train.log").is_file()


@pytest.mark.slow
def test_completed_stages_are_not_redone(reference_run, tiny_synth):
    before = (reference_run / "stage1" / "decoder_best.pt").stat().st_mtime_ns
    result = _train("all", reference_run, tiny_synth)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("already complete") == 3
    assert (reference_run / "stage1" / "decoder_best.pt").stat().st_mtime_ns == before


def _same_tensors(a, b) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _same_tensors(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same_tensors(x, y)
    else:
        assert torch.equal(a, b)


@pytest.mark.slow
def test_kill_9_mid_stage_resumes_to_the_same_result(reference_run, tiny_synth, tmp_path):
    from safetensors.torch import load_file

    exp = tmp_path / "exp"
    # Condensation checkpoints after every epoch (6 batches each here): iteration 12 = epoch 2.
    for kill in ("stage1:2", "condense:12", "decide:2"):
        killed = _train("all", exp, tiny_synth, kill=kill)
        assert killed.returncode == -9, (kill, killed.stderr[-2000:])
    final = _train("all", exp, tiny_synth)
    assert final.returncode == 0, final.stderr[-2000:]
    assert "stage1: resuming after epoch 2" in (exp / "train.log").read_text()
    assert "condense: resuming" in (exp / "train.log").read_text()

    def load(path: Path):
        return torch.load(path, map_location="cpu", weights_only=True)

    _same_tensors(
        load(exp / "stage1" / "decoder_best.pt"), load(reference_run / "stage1" / "decoder_best.pt")
    )
    _same_tensors(
        load(exp / "condense" / "prototypes.pt"), load(reference_run / "condense" / "prototypes.pt")
    )
    for scorer in ("pixood", "kmeans"):
        ours = load_file(str(exp / "checkpoints" / scorer / "model.safetensors"))
        ref = load_file(str(reference_run / "checkpoints" / scorer / "model.safetensors"))
        _same_tensors(ours, ref)
    ours = json.loads((exp / "metrics.json").read_text())["decide"]["scorers"]["pixood"]
    ref = json.loads((reference_run / "metrics.json").read_text())["decide"]["scorers"]["pixood"]
    assert ours["ap"] == ref["ap"]


def test_config_hash_of_unchanged_config_is_stable():
    """The stage hashes in done.json (and so whether a finished stage reruns) must not move when
    the config code changes: these are the hashes the dict-based loader gave these configs."""
    from pixood_training.train.config import section_hash
    from pixood_training.train.experiment import STAGE_SECTIONS

    cfg = load_config(TINY_CONFIG)
    hashes = {stage: section_hash(cfg, keys)[:16] for stage, keys in STAGE_SECTIONS.items()}
    assert hashes == {
        "pretrain": "26c8185bbe3fc48c",
        "stage1": "f01a015ff93ce8a2",
        # condense and decide moved once, on purpose: the re-seed stop became 0.9 x epochs
        # (reinit_stop_epoch now listed) and decide.rule (default "monotone") changed the fit
        "condense": "6074d31e87c9a105",
        "decide": "6ed74806608614ad",
    }


def test_every_registered_scorer_is_fitted_by_decide_and_accepted_by_the_config():
    from pixood_training.scorers import SCORERS
    from pixood_training.train.decide import FITTERS

    assert set(FITTERS) == set(SCORERS.values())
    assert set(load_config(TINY_CONFIG).decide.scorers) == set(SCORERS)
