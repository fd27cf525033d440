"""The demo-only pretrain step (stand-in for DINOv2 pretraining): it changes the backbone, the
backbone is frozen from stage 1 on (the exported checkpoint holds exactly the pretrained
weights), `all` runs it only when enabled, a kill -9 resumes to the same weights, and it refuses
to run with real backbone weights or when the config does not enable it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_runs import TINY_CONFIG, synth_set, train

from pixood_training.train.cli import main
from pixood_training.train.config import ConfigError, load_config

# Everything shrunk further than synth_tiny: the point is behaviour, not quality.
FAST = [
    "pretrain.enabled=true",
    "pretrain.epochs=2",
    "pretrain.batch_size=4",
    "pretrain.reconstruction_weight=0.5",
    "pretrain.crop=112",
    "data.long_side=224",
    "stage1.epochs=1",
    "condense.epochs=1",
    "decide.scorers=[pixood]",
    "decide.grid_size=50",
]


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory) -> Path:
    counts = {"train": 8, "val": 2, "ood_val": 2}
    return synth_set(tmp_path_factory.mktemp("synth_pretrain"), counts, width=224, height=112)


def _train(stage: str, exp: Path, data: Path, *extra: str, kill: str | None = None):
    return train(stage, exp, data, *FAST, *extra, kill=kill)


def _load(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def pretrained_run(tiny_synth, tmp_path_factory) -> Path:
    exp = tmp_path_factory.mktemp("exp_pretrain")
    result = _train("all", exp, tiny_synth)
    assert result.returncode == 0, result.stderr[-3000:]
    return exp


@pytest.mark.slow
def test_all_pretrains_then_keeps_the_backbone_frozen(pretrained_run, tiny_synth):
    from safetensors.torch import load_file

    from pixood_training.train import parts

    log = (pretrained_run / "train.log").read_text()
    assert log.index("pretrain: starting") < log.index("stage1: starting")
    pretrained = _load(pretrained_run / "pretrain" / "backbone.pt")
    config = load_config(TINY_CONFIG, [f"data.root={tiny_synth}", *FAST])
    random_init = parts.new_backbone(config).vit.state_dict()
    changed = [k for k in random_init if not torch.equal(random_init[k], pretrained[k])]
    assert len(changed) > len(random_init) // 2, "pretraining left the backbone untouched"
    # Stages 1-3 used it frozen: the exported checkpoint carries exactly the pretrained weights.
    ckpt = load_file(str(pretrained_run / "checkpoints" / "pixood" / "model.safetensors"))
    vit = {k.removeprefix("backbone.vit."): v for k, v in ckpt.items() if ".vit." in f".{k}"}
    assert vit.keys() == pretrained.keys()
    for key, value in pretrained.items():
        assert torch.equal(vit[key], value), key
    assert not (pretrained_run / "stage1" / "backbone.pt").exists()  # no random backbone drawn


@pytest.mark.slow
def test_pretrain_resumes_after_kill_9_to_the_same_backbone(
    pretrained_run, tiny_synth, tmp_path, capsys
):
    exp = tmp_path / "exp"
    killed = _train("pretrain", exp, tiny_synth, kill="pretrain:1")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (exp / "pretrain" / "backbone.pt").exists()
    resumed = _train("pretrain", exp, tiny_synth)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "pretrain: resuming after epoch 1" in (exp / "train.log").read_text()
    ours = _load(exp / "pretrain" / "backbone.pt")
    ref = _load(pretrained_run / "pretrain" / "backbone.pt")
    for key, value in ref.items():
        assert torch.equal(ours[key], value), key
    # Stage 1 refuses to start before the (enabled) pretrain step of its experiment is complete.
    args = ["stage1", "--config", str(TINY_CONFIG), f"data.root={tiny_synth}", *FAST]
    assert main([*args, "--out", str(tmp_path / "fresh"), "--no-progress"]) == 2
    assert "stage pretrain is not complete" in capsys.readouterr().err


def test_pretrain_is_refused_with_real_weights_or_when_disabled(tmp_path, capsys):
    weights = tmp_path / "dinov2.pth"
    weights.write_bytes(b"x")
    with pytest.raises(ConfigError, match="pretrain.enabled"):
        load_config(TINY_CONFIG, ["pretrain.enabled=true", f"model.backbone_weights={weights}"])
    with pytest.raises(ConfigError, match="random_init_layerscale"):
        load_config(TINY_CONFIG, ["model.random_init_layerscale=-1"])
    code = main(["pretrain", "--config", str(TINY_CONFIG), "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pretrain.enabled=true" in err[0]


def test_random_init_layerscale_sets_every_gain():
    from pixood_training.train import parts

    config = load_config(TINY_CONFIG, ["model.random_init_layerscale=1.0"])
    backbone = parts.new_backbone(config)
    gains = [b.ls1.gamma for b in backbone.vit.blocks] + [b.ls2.gamma for b in backbone.vit.blocks]
    assert all(torch.all(g == 1.0) for g in gains)
    default = parts.new_backbone(load_config(TINY_CONFIG))
    assert float(default.vit.blocks[0].ls1.gamma.max()) < 1e-4  # timm's DINOv2 init
