"""InternImage + UperNet family: DCNv3, pooling, network size, model round trip (fast)."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import deform_conv2d

from pixood_training.checkpoint import load_model, save_model
from pixood_training.internimage.backbone import InternImageConfig
from pixood_training.internimage.dcnv3 import deformable_sample, kernel_points
from pixood_training.internimage.model import network_size, tiny_internimage_model
from pixood_training.internimage.upernet import adaptive_avg_pool


def test_dcnv3_sampling_matches_torchvision_deformable_convolution():
    """Independent reference: DCNv3 per group = modulated deformable conv with a depthwise
    all-ones kernel (torchvision samples at integer pixel coordinates, offsets as (dy, dx))."""
    torch.manual_seed(0)
    n, h, w, groups, per_group, scale = 2, 7, 9, 2, 3, 1.5
    c, points = groups * per_group, 9
    value = torch.randn(n, h, w, c)
    offset = torch.randn(n, h, w, groups, points, 2) * 1.5
    weight = torch.randn(n, h, w, groups, points).softmax(-1)
    ours = deformable_sample(
        value,
        offset.reshape(n, h, w, -1),
        weight.reshape(n, h, w, -1),
        kernel_points(3),
        groups,
        scale,
    )
    # torchvision: kernel point k = ky * 3 + kx at (ky-1, kx-1) + offset; ours is x-major with
    # the kernel spread scaled too, so express ours as torchvision offsets.
    base = kernel_points(3)  # [P, 2] (dx, dy), x-major
    shift = base * (scale - 1.0) + offset * scale  # extra displacement beyond the unit grid
    order = [int(dx * 3 + dy) for dy in range(3) for dx in range(3)]  # torchvision -> ours index
    tv_offset = shift[..., order, :].flip(-1)  # (dy, dx)
    tv_offset = tv_offset.permute(0, 3, 4, 5, 1, 2).reshape(n, groups * points * 2, h, w)
    tv_mask = weight[..., order].permute(0, 3, 4, 1, 2).reshape(n, groups * points, h, w)
    kernel = torch.ones(c, 1, 3, 3)
    theirs = deform_conv2d(
        value.permute(0, 3, 1, 2), tv_offset, kernel, padding=1, mask=tv_mask
    ).permute(0, 2, 3, 1)
    assert torch.allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("size", [(13, 7), (6, 6), (1, 5), (29, 31)])
def test_adaptive_pool_matches_pytorch(size):
    x = torch.randn(2, 3, *size)
    for cells in (1, 2, 3, 6):
        expected = torch.nn.functional.adaptive_avg_pool2d(x, cells)
        assert torch.allclose(adaptive_avg_pool(x, cells), expected, atol=1e-5)


def test_network_size_is_a_multiple_of_32_keeping_the_aspect():
    assert network_size(1024, 2048) == (1024, 2048)
    assert network_size(1024, 2048, 1024) == (512, 1024)
    assert network_size(301, 403) == (256, 384)  # floored, as the ViT family
    assert network_size(10, 20) == (32, 32)
    with pytest.raises(ValueError):
        network_size(100, 100, 500)


def test_presets_and_unknown_options():
    xl = InternImageConfig.from_dict({"preset": "XL"})
    assert (xl.channels, xl.depths, xl.offset_scale) == (192, (5, 5, 24, 5), 2.0)
    assert xl.groups == (12, 24, 48, 96) and xl.post_norm
    assert InternImageConfig.from_dict({"preset": "T", "channels": 32}).channels == 32
    with pytest.raises(ValueError, match="unknown InternImage"):
        InternImageConfig.from_dict({"preset": "XXL"})
    with pytest.raises(ValueError, match="option"):
        InternImageConfig.from_dict({"width": 3})


@pytest.mark.parametrize("preset,features", [("tiny", "head"), ("tiny_post", "stages")])
def test_checkpoint_round_trip_gives_the_same_outputs(tmp_path, preset, features):
    model = tiny_internimage_model(preset=preset, scorer_features=features)
    with torch.no_grad():  # deformed sampling, not the plain grid of a fresh model
        for name, param in model.named_parameters():
            if ".dcn.offset" in name or ".dcn.mask" in name:
                param.normal_(0, 0.5)
    image = torch.randint(0, 256, (1, 75, 101, 3), dtype=torch.uint8)
    save_model(model, tmp_path / "ck")
    loaded = load_model(tmp_path / "ck")
    assert loaded.get_config()["family"] == "internimage"
    with torch.no_grad():
        expected = model.forward_with_unknown(image)
        for ours, theirs in zip(expected, loaded.forward_with_unknown(image), strict=True):
            assert ours.shape[1:] == (75, 101)
            assert torch.equal(ours, theirs)
        features, logits = loaded.features_and_logits(loaded.preprocess(image))
    assert logits.shape[2:] == (64 // 4, 96 // 4)
    assert features.shape[1] == loaded.feature_dim


def test_half_precision_backbone_wraps_the_multi_scale_backbone():
    """`pixood-export --fp16` wraps the backbone; InternImage returns four feature maps."""
    from pixood_training.export.fp16 import with_half_precision_backbone

    model = tiny_internimage_model().eval()
    image = torch.randint(0, 255, (1, 96, 128, 3), dtype=torch.uint8)
    with torch.no_grad():
        full, half = model(image), with_half_precision_backbone(model)(image)
    assert (full[1] == half[1]).float().mean() > 0.99  # semantic
    assert torch.allclose(full[0], half[0], atol=1e-2)  # anomaly score
    assert torch.allclose(full[2], half[2], atol=1e-2)  # confidence
