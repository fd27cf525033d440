"""Scoring-grid maps ▶ input resolution: the only full-size work of the model besides the input
resize, so it is written for the fewest and cheapest full-size passes (docs/architecture.md §3).

* Bilinear (``align_corners=False``, PyTorch's and the official rule), one map at a time so each
  result is already the output buffer (a fused multi-channel resize needs a channel split, a
  full-size copy, after it). Two forms with the same values up to float rounding:
  ``resize`` (ONNX ``Resize``) and ``matrices``: ``R_h @ map @ R_w^T`` with the 1-D
  interpolation matrices built from the (symbolic) sizes. The second is one small product on the
  grid and one ``[H, h] x [h, W]`` MatMul; ONNX Runtime runs that about 3x faster than its
  ``Resize`` kernel while the grid is a few dozen rows high, slower beyond (its cost grows with h).
* Nearest: two gathers with exact integer indices (values copied, never interpolated).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

# Matrix upsampling while the scoring grid is at most this many rows high (see module docstring).
MATRIX_MAX_GRID_ROWS = 48


def bilinear_matrix(
    out_size: Any, in_size: Any, device: torch.device | None = None
) -> torch.Tensor:
    """[out_size, in_size] matrix M with ``M @ x`` = PyTorch's 1-D bilinear resize of ``x``
    (``align_corners=False``: source ``(i + 0.5) * in / out - 0.5``, clamped at 0; the upper
    neighbour clamped at the last sample). Sizes may be symbolic."""
    dst = torch.arange(out_size, dtype=torch.float32, device=device)
    cols = torch.arange(in_size, dtype=torch.float32, device=device)
    scale = torch.ones_like(cols).sum() / torch.ones_like(dst).sum()
    src = ((dst + 0.5) * scale - 0.5).clamp_min(0.0)
    lower = torch.floor(src)
    weight = (src - lower)[:, None]
    upper = torch.minimum(lower + 1.0, cols[-1:])
    return (1.0 - weight) * (lower[:, None] == cols).to(torch.float32) + weight * (
        upper[:, None] == cols
    ).to(torch.float32)


def bilinear(
    maps: list[torch.Tensor], height: Any, width: Any, matrices: bool
) -> list[torch.Tensor]:
    """Each [B,h,w] map (same grid) -> [B,H,W] bilinear; ``matrices`` picks the form (same
    values to rounding); the interpolation matrices are built once for all maps."""
    if matrices:
        grid = maps[0]
        rows = bilinear_matrix(height, grid.shape[1], grid.device)
        cols = bilinear_matrix(width, grid.shape[2], grid.device).t()
        return [torch.matmul(rows, torch.matmul(m, cols)) for m in maps]
    # unsqueeze / squeeze rather than [:, None] / [:, 0]: the exporter turns an index into a
    # Gather, which would copy the full-size map; a Squeeze is free.
    size = (height, width)
    return [
        F.interpolate(m.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)
        for m in maps
    ]


def _nearest_index(out_size: Any, in_size: Any, device: torch.device) -> torch.Tensor:
    """Source index floor(i * in / out) of PyTorch's 'nearest' resize, in exact integers."""
    return (torch.arange(out_size, device=device) * in_size) // out_size


def nearest(grid: torch.Tensor, height: Any, width: Any) -> torch.Tensor:
    """[B,h,w] -> [B,H,W] nearest, any dtype: columns first on the small map, then whole rows
    (ONNX Runtime's Gather on the last axis moves one element at a time, on axis 1 it copies
    rows of W contiguous values)."""
    cols = _nearest_index(width, grid.shape[2], grid.device)
    rows = _nearest_index(height, grid.shape[1], grid.device)
    return grid.index_select(2, cols).index_select(1, rows)
