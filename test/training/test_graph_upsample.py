"""The cheaper forms of the graph compute the same values: matrix bilinear upsampling vs
PyTorch's resize, and prototype distances for the needed classes vs all classes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch_fixtures import random_image as _image

from pixood_training.condensation import PrototypeDistance
from pixood_training.model import PixOODModel, tiny_model
from pixood_training.models import upsample


@pytest.mark.parametrize(
    ("grid", "size"),
    [((3, 4), (37, 53)), ((18, 32), (1080, 1920)), ((1, 5), (7, 3)), ((9, 9), (9, 9))],
)
def test_matrix_bilinear_equals_pytorch_resize(grid, size):
    maps = [torch.rand(1, *grid, generator=torch.Generator().manual_seed(k)) for k in range(2)]
    got = upsample.bilinear(maps, *size, matrices=True)
    want = upsample.bilinear(maps, *size, matrices=False)
    for ours, theirs, source in zip(got, want, maps, strict=True):
        reference = F.interpolate(source[:, None], size=size, mode="bilinear", align_corners=False)
        torch.testing.assert_close(theirs, reference[:, 0], rtol=0, atol=0)
        torch.testing.assert_close(ours, theirs, rtol=0, atol=2e-6)


def test_model_outputs_same_with_either_upsampling_form(monkeypatch):
    model = tiny_model(seed=0, network_long_side=56, eval_labels=[0, 1, 5])
    assert model.matrix_upsampling  # 4-patch grid: the matrix form
    image = _image(45, 67, seed=3)
    with torch.no_grad():
        matrix_outputs = model.forward_with_unknown(image)
        monkeypatch.setattr(PixOODModel, "matrix_upsampling", property(lambda self: False))
        resize_outputs = model.forward_with_unknown(image)
    for ours, theirs in zip(matrix_outputs, resize_outputs, strict=True):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape == (1, 45, 67)
        torch.testing.assert_close(ours, theirs, rtol=0, atol=2e-6)
    for score in (*matrix_outputs[:1], *matrix_outputs[2:]):
        assert score.min() >= 0 and score.max() <= 1


def test_matrix_form_only_for_small_fixed_grids():
    assert not tiny_model(network_long_side=0).matrix_upsampling  # grid grows with the image
    assert tiny_model(network_long_side=448).matrix_upsampling  # 32 patches
    assert not tiny_model(network_long_side=448, eval_scale_factor=7).matrix_upsampling


@pytest.mark.parametrize("chunk_rows", [None, 7])
def test_needed_class_distances_equal_all_class_distances(chunk_rows):
    gen = torch.Generator().manual_seed(5)
    distance = PrototypeDistance(torch.randn(6, 4, 8, generator=gen), chunk_rows=chunk_rows)
    e = torch.randn(30, 8, generator=gen)
    classes = torch.randint(0, 3, (30, 3), generator=gen)  # only classes 0..2 occur
    classes[:, 2] = 5
    torch.testing.assert_close(distance.at(e, classes), distance(e).gather(1, classes))
