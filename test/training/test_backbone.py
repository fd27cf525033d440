"""DINOv2 backbone: shapes, freezing, block/norm selection, official pos-embed interpolation,
official <-> timm weight formats and clear errors on bad weight files (tiny random ViTs)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pixood_training.models.backbone import (
    BackboneConfig,
    BackboneWeightsError,
    DinoV2Backbone,
    backbone_config_from_weights,
    bicubic_resize_matrix,
    build_backbone,
    default_blocks,
    timm_to_official,
    tiny_backbone_config,
)
from pixood_training.models.decoder import MLPDecoder
from pixood_training.models.preprocess import network_input_size, preprocess_image


@pytest.fixture(scope="module")
def tiny() -> DinoV2Backbone:
    torch.manual_seed(0)
    return DinoV2Backbone(tiny_backbone_config())


def test_default_blocks_are_even_quarters():
    assert default_blocks(24) == (5, 11, 17, 23)
    assert default_blocks(12) == (2, 5, 8, 11)
    assert default_blocks(40) == (9, 19, 29, 39)
    assert BackboneConfig().resolved_blocks == (5, 11, 17, 23)


@pytest.mark.parametrize("size", [(14, 14), (56, 98), (70, 70), (112, 42)])
def test_output_shape_at_multiples_of_14(tiny, size):
    h, w = size
    out = tiny(torch.randn(2, 3, h, w))
    assert out.shape == (2, 4 * 32, h // 14, w // 14)
    assert torch.isfinite(out).all()


def test_rejects_size_not_multiple_of_14(tiny):
    with pytest.raises(ValueError, match="multiple of 14"):
        tiny(torch.randn(1, 3, 50, 56))


def test_frozen_and_stays_in_eval(tiny):
    assert not any(p.requires_grad for p in tiny.parameters())
    tiny.train()
    assert not tiny.vit.training
    out = tiny(torch.randn(1, 3, 28, 28))
    assert not out.requires_grad


@pytest.mark.parametrize("registers", [False, True])
def test_blocks_are_final_norm_of_selected_blocks(registers):
    """Equals timm's own forward_intermediates(norm=True) when timm's pos-embed resize is used."""
    torch.manual_seed(1)
    config = tiny_backbone_config(registers=registers, pos_embed_interp="timm", blocks=(1, 3))
    backbone = DinoV2Backbone(config)
    image = torch.randn(1, 3, 42, 84)
    ours = backbone.forward_blocks(image)
    ref = backbone.vit.forward_intermediates(
        image, indices=[1, 3], norm=True, intermediates_only=True
    )
    assert len(ours) == 2
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # a manual loop: block 1's output through the final LayerNorm, prefix tokens dropped
    vit = backbone.vit
    x = vit._pos_embed(vit.patch_embed(image))
    for block in vit.blocks[:2]:
        x = block(x)
    manual = vit.norm(x)[:, vit.num_prefix_tokens :].reshape(1, 3, 6, -1).permute(0, 3, 1, 2)
    torch.testing.assert_close(ours[0], manual, rtol=0, atol=1e-6)


@pytest.mark.parametrize("out_size", [(3, 8), (5, 5), (9, 4), (40, 61)])
def test_official_pos_embed_interpolation_matches_dinov2_formula(out_size):
    """Bicubic with scale (n + 0.1) / grid, as the official DINOv2 hub code calls F.interpolate."""
    torch.manual_seed(2)
    grid = 5
    table = torch.randn(1, 6, grid, grid)
    hp, wp = out_size
    ref = F.interpolate(
        table,
        scale_factor=((hp + 0.1) / grid, (wp + 0.1) / grid),
        mode="bicubic",
        align_corners=False,
    )
    offset = torch.tensor(0.1)
    rows = bicubic_resize_matrix(hp, grid, offset)
    cols = bicubic_resize_matrix(wp, grid, offset)
    ours = torch.einsum("hi,bcij,wj->bchw", rows, table, cols)
    torch.testing.assert_close(ours, ref, rtol=0, atol=2e-5)


def test_native_grid_uses_pos_embed_unchanged(tiny):
    pos = tiny.vit.pos_embed[:, 1:]
    torch.testing.assert_close(tiny.patch_pos_embed(5, 5), pos, rtol=0, atol=0)
    assert not torch.allclose(tiny.patch_pos_embed(5, 6)[:, :5], pos[:, :5], atol=1e-4)


@pytest.mark.parametrize("registers", [False, True])
def test_official_format_round_trip(tmp_path, registers):
    """Save a tiny model in the official DINOv2 layout, load it into a fresh one: same outputs."""
    torch.manual_seed(3)
    config = tiny_backbone_config(registers=registers)
    source = DinoV2Backbone(config)
    with torch.no_grad():  # make cls/reg/pos non-trivial so a wrong conversion shows
        for name in ("cls_token", "pos_embed", "reg_token"):
            if getattr(source.vit, name, None) is not None:
                getattr(source.vit, name).normal_()
    official = timm_to_official(source.vit.state_dict(), config)
    assert "mask_token" in official and "blocks.0.ls1.gamma" in official
    if registers:
        assert "register_tokens" in official and official["pos_embed"].shape[1] == 1 + 25
    path = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save(official, path)
    loaded = build_backbone(config, weights=path)
    image = torch.randn(1, 3, 42, 56)
    torch.testing.assert_close(loaded(image), source(image), rtol=0, atol=1e-6)
    inferred = backbone_config_from_weights(path)
    assert (inferred.resolved_embed_dim, inferred.resolved_depth, inferred.img_size) == (32, 4, 70)
    assert inferred.num_register_tokens == (4 if registers else 0)


def test_timm_format_weights_load(tmp_path, tiny):
    path = tmp_path / "timm_tiny.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tiny.vit.state_dict().items()}, str(path))
    loaded = build_backbone(tiny_backbone_config(), weights=path)
    image = torch.randn(1, 3, 28, 42)
    torch.testing.assert_close(loaded(image), tiny(image), rtol=0, atol=0)


def test_bad_weights_files_name_the_file(tmp_path, tiny):
    config = tiny_backbone_config()
    missing = tmp_path / "nope.pth"
    with pytest.raises(BackboneWeightsError, match="nope.pth"):
        build_backbone(config, weights=missing)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(BackboneWeightsError, match="corrupt.pth"):
        build_backbone(config, weights=corrupt)
    wider = DinoV2Backbone(tiny_backbone_config(embed_dim=48, num_heads=2))
    wrong = tmp_path / "wrong_width.pth"
    torch.save(timm_to_official(wider.vit.state_dict(), wider.config), wrong)
    with pytest.raises(BackboneWeightsError, match=r"wrong_width\.pth.*shape mismatches"):
        build_backbone(config, weights=wrong)
    state = timm_to_official(tiny.vit.state_dict(), config)
    del state["blocks.3.mlp.fc2.weight"]
    truncated = tmp_path / "truncated.pth"
    torch.save(state, truncated)
    with pytest.raises(BackboneWeightsError, match=r"truncated\.pth.*missing 1 tensors"):
        build_backbone(config, weights=truncated)


def test_config_dict_round_trip_and_validation():
    config = tiny_backbone_config(blocks=(3, 1))
    again = BackboneConfig.from_dict(config.to_dict())
    assert again == config and again.resolved_blocks == (1, 3)
    with pytest.raises(ValueError, match="out of range"):
        tiny_backbone_config(blocks=(4,))
    with pytest.raises(ValueError, match="unknown backbone arch"):
        BackboneConfig(arch="resnet50")


def test_decoder_keys_and_shapes():
    decoder = MLPDecoder(128, 19, hidden_channels=64)
    keys = set(decoder.state_dict())
    assert keys == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert decoder[0].weight.shape == (64, 128, 1, 1) and decoder[2].weight.shape == (19, 64, 1, 1)
    assert isinstance(decoder[1], torch.nn.GELU) and decoder[1].approximate == "none"
    wrapped = torch.nn.Module()
    wrapped.decoder = decoder
    assert "decoder.0.weight" in wrapped.state_dict()
    assert decoder(torch.randn(2, 128, 3, 5)).shape == (2, 19, 3, 5)
    assert MLPDecoder(128, 19).hidden_channels == 128


@pytest.mark.parametrize(
    "size, long_side, expected",
    [
        ((1024, 2048), 0, (1022, 2044)),
        ((1080, 1920), 0, (1078, 1918)),
        ((1024, 2048), 1792, (896, 1792)),
        ((2048, 1024), 1792, (1792, 896)),
        ((37, 53), 0, (28, 42)),
        ((100, 180), 0, (84, 168)),
        ((10, 300), 0, (14, 294)),
    ],
)
def test_network_input_size(size, long_side, expected):
    assert network_input_size(*size, long_side=long_side) == expected


def test_network_input_size_rejects_bad_long_side():
    with pytest.raises(ValueError, match="multiple of 14"):
        network_input_size(100, 100, long_side=100)


def test_preprocess_resizes_and_normalises():
    image = torch.full((1, 37, 53, 3), 255, dtype=torch.uint8)
    image[..., 1] = 0
    x = preprocess_image(image)
    assert x.shape == (1, 3, 28, 42) and x.dtype == torch.float32
    expected = torch.tensor([(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (1 - 0.406) / 0.225])
    torch.testing.assert_close(x[0, :, 10, 10], expected, rtol=0, atol=1e-5)


def _official_size(h0: int, w0: int, long_side: int) -> tuple[int, int]:
    """docs/method.md §1 as the official transform writes it (float arithmetic)."""
    s = long_side or (max(h0, w0) // 14) * 14
    if h0 >= w0:
        return s, int(14 * ((w0 / (h0 / s)) // 14))
    return int(14 * ((h0 / (w0 / s)) // 14)), s


def test_network_input_size_agrees_with_official_formula():
    generator = torch.Generator().manual_seed(4)
    sizes = torch.randint(30, 3000, (500, 2), generator=generator).tolist()
    for h0, w0 in sizes:
        for long_side in (0, 1792):
            official = _official_size(h0, w0, long_side)
            if min(official) >= 14:
                assert network_input_size(h0, w0, long_side) == official, (h0, w0, long_side)
