"""pixood-convert-internimage: published mmsegmentation checkpoints -> our checkpoint directory.

``write_published_checkpoint`` builds what a published InternImage UperNet release holds
(``{"meta", "state_dict": backbone.* / decode_head.* / auxiliary_head.*}``, torch.save zip) from
a tiny randomly initialised model in the published structure; other InternImage tests reuse it.
"""

from __future__ import annotations

import collections
import pickle
from pathlib import Path

import pytest
import torch

from pixood_training.checkpoint import load_model
from pixood_training.internimage.convert import main
from pixood_training.internimage.model import InternImageModel, tiny_internimage_model


def randomised(model: InternImageModel, seed: int = 0) -> InternImageModel:
    """Every weight random (offsets, masks and BatchNorm statistics included)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator) * 0.3
                tensor.copy_(noise.abs() + 0.5 if "running_var" in name else noise)
    return model.eval()


def write_published_checkpoint(path: Path, model: InternImageModel, extra=None) -> Path:
    """``model``'s weights in the published mmseg layout (plus an auxiliary head)."""
    state = collections.OrderedDict()
    for key, value in model.state_dict().items():
        if key.startswith("backbone."):
            state[key] = value.clone()
        elif key.startswith("decoder."):
            state["decode_head." + key[len("decoder.") :]] = value.clone()
    state["auxiliary_head.conv.weight"] = torch.randn(8, 64, 3, 3)
    state["auxiliary_head.conv_seg.weight"] = torch.randn(model.num_classes, 8, 1, 1)
    meta = {"CLASSES": tuple(model.class_names), "PALETTE": model.palette, "mmseg_version": "0.27"}
    torch.save({"meta": meta, "state_dict": state, **(extra or {})}, path)
    return path


@pytest.fixture()
def published(tmp_path) -> tuple[Path, InternImageModel]:
    model = randomised(tiny_internimage_model(preset="tiny_post", num_classes=5, seed=3))
    return write_published_checkpoint(tmp_path / "upernet_tiny.pth", model), model


def test_converted_model_reproduces_the_published_one(published, tmp_path, capsys):
    path, source = published
    assert main([str(path), "-o", str(tmp_path / "out"), "--offset-scale", "2"]) == 0
    out = capsys.readouterr().out
    assert "post-norm" in out and "auxiliary head dropped (2 tensors)" in out
    model = load_model(tmp_path / "out")
    config = model.get_config()
    assert config["backbone"]["depths"] == [1, 1, 1, 1]
    assert config["backbone"]["groups"] == [1, 2, 4, 8]
    assert config["decoder"]["num_classes"] == 5 and config["class_names"] == source.class_names
    image = torch.randint(0, 256, (1, 70, 90, 3), dtype=torch.uint8)
    with torch.no_grad():
        for ours, theirs in zip(model(image), source(image), strict=True):
            assert torch.equal(ours, theirs)


def _error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_width_without_a_published_preset_needs_the_offset_scale(published, tmp_path, capsys):
    path, _ = published
    assert main([str(path), "-o", str(tmp_path / "out")]) == 2
    assert "--offset-scale" in _error(capsys)


def test_missing_or_extra_tensors_are_one_line(published, tmp_path, capsys):
    path, model = published
    broken = tmp_path / "broken.pth"
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["state_dict"]["backbone.levels.1.blocks.0.mlp.fc2.bias"]
    checkpoint["state_dict"]["backbone.levels.0.blocks.0.center_feature_scale_proj_weight"] = (
        torch.zeros(1, 16)
    )
    torch.save(checkpoint, broken)
    assert main([str(broken), "-o", str(tmp_path / "out"), "--offset-scale", "1"]) == 2
    line = _error(capsys)
    assert "does not fit" in line and "missing 1" in line and "unexpected 1" in line
    assert not (tmp_path / "out").exists()


class _RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_is_refused_without_running(published, tmp_path, capsys):
    path, model = published
    evil = tmp_path / "evil.pth"
    write_published_checkpoint(evil, model, extra={"hook": _RunsCode()})
    assert main([str(evil), "-o", str(tmp_path / "out"), "--offset-scale", "2"]) == 2
    captured = capsys.readouterr()
    assert "this must never run" not in captured.out
    assert "refused" in captured.err and len(captured.err.strip().splitlines()) == 1


def test_not_a_checkpoint(tmp_path, capsys):
    other = tmp_path / "other.pth"
    torch.save([1, 2, 3], other)
    assert main([str(other), "-o", str(tmp_path / "out")]) == 2
    assert "not a checkpoint dict" in _error(capsys)
    with open(other, "wb") as handle:
        pickle.dump([1, 2, 3], handle)  # not a torch file at all
    assert main([str(other), "-o", str(tmp_path / "out")]) == 2
    assert "cannot read" in _error(capsys)
    assert main([str(tmp_path / "absent.pth"), "-o", str(tmp_path / "out")]) == 2
    assert "not found" in _error(capsys)
