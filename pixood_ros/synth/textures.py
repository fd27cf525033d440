"""Texture primitives: cheap multi-octave noise and per-class colour families.

Every class gets its own colour range and noise statistics so that a segmenter has something to
learn, while random variation keeps the task from being a colour lookup.
"""

from __future__ import annotations

import cv2
import numpy as np


def value_noise(
    rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 3, gain: float = 0.5
) -> np.ndarray:
    """Smooth noise in roughly [-1, 1]: random grids upsampled bicubically, summed over octaves.

    `cell` is the feature size of the coarsest octave in pixels; each octave halves it.
    """
    h, w = max(int(h), 1), max(int(w), 1)
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for _ in range(max(octaves, 1)):
        c = max(cell, 1.0)
        gh, gw = int(np.ceil(h / c)) + 3, int(np.ceil(w / c)) + 3
        grid = rng.standard_normal((gh, gw)).astype(np.float32)
        big = cv2.resize(grid, (int(gw * c), int(gh * c)), interpolation=cv2.INTER_CUBIC)
        oy = int(rng.integers(0, max(big.shape[0] - h, 0) + 1))
        ox = int(rng.integers(0, max(big.shape[1] - w, 0) + 1))
        out += amp * big[oy : oy + h, ox : ox + w]
        total += amp
        amp *= gain
        cell /= 2.0
    return np.clip(out / (total * 0.9), -1.0, 1.0)


def grain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Per-pixel white noise in [-1, 1] (asphalt grit, leaf speckle)."""
    return rng.uniform(-1.0, 1.0, (max(int(h), 1), max(int(w), 1))).astype(np.float32)


def tint(base: np.ndarray, noise: np.ndarray, amount: float, chroma: float = 0.15) -> np.ndarray:
    """Colour field `base * (1 + amount*noise)` with a little per-channel variation of the noise."""
    base = np.asarray(base, np.float32)
    ch = 1.0 + chroma * np.array([0.6, -0.2, -0.4], np.float32)
    return np.clip(base[None, None, :] * (1.0 + amount * noise[..., None] * ch), 0.0, 1.0)


def jitter_color(rng: np.random.Generator, rgb: tuple[float, float, float], amount: float):
    """A colour near `rgb` (0..1 floats): brightness and hue wobble."""
    c = np.asarray(rgb, np.float32) * rng.uniform(1 - amount, 1 + amount)
    c = c + rng.uniform(-amount, amount, 3).astype(np.float32) * 0.25
    return np.clip(c, 0.0, 1.0)


# --- colour families, 0..1 RGB ------------------------------------------------------------------
# Anomalies deliberately avoid these ranges (see anomalies.py): vivid magenta/cyan/lime/orange never
# appear in any class below.

ROAD_COLORS = ((0.33, 0.33, 0.35), (0.40, 0.39, 0.38), (0.28, 0.28, 0.30), (0.45, 0.44, 0.44))
SIDEWALK_COLORS = ((0.62, 0.60, 0.58), (0.58, 0.50, 0.48), (0.66, 0.63, 0.55), (0.52, 0.52, 0.55))
TERRAIN_COLORS = ((0.55, 0.55, 0.30), (0.50, 0.45, 0.30), (0.45, 0.52, 0.28), (0.60, 0.55, 0.38))
VEGETATION_COLORS = ((0.20, 0.35, 0.12), (0.25, 0.40, 0.15), (0.16, 0.28, 0.12), (0.30, 0.38, 0.14))
BUILDING_COLORS = (
    (0.55, 0.53, 0.50),
    (0.70, 0.64, 0.55),
    (0.55, 0.35, 0.28),
    (0.78, 0.76, 0.72),
    (0.42, 0.45, 0.50),
    (0.62, 0.55, 0.45),
)
WALL_COLORS = ((0.60, 0.58, 0.55), (0.50, 0.48, 0.46), (0.66, 0.60, 0.52))
FENCE_COLORS = ((0.45, 0.42, 0.38), (0.35, 0.35, 0.36), (0.55, 0.45, 0.32))
POLE_COLORS = ((0.45, 0.45, 0.45), (0.30, 0.30, 0.30), (0.55, 0.56, 0.55))
CAR_COLORS = (
    (0.85, 0.85, 0.86),
    (0.62, 0.63, 0.65),
    (0.35, 0.36, 0.38),
    (0.08, 0.08, 0.09),
    (0.12, 0.16, 0.32),
    (0.40, 0.08, 0.08),
    (0.70, 0.65, 0.55),
    (0.15, 0.25, 0.18),
)
TRUCK_COLORS = ((0.85, 0.85, 0.83), (0.25, 0.30, 0.45), (0.55, 0.15, 0.12), (0.60, 0.60, 0.58))
BUS_COLORS = ((0.75, 0.72, 0.30), (0.80, 0.80, 0.80), (0.20, 0.35, 0.55), (0.60, 0.12, 0.12))
SKIN_COLORS = ((0.87, 0.70, 0.58), (0.70, 0.50, 0.38), (0.45, 0.32, 0.24), (0.93, 0.78, 0.66))
CLOTH_COLORS = (
    (0.10, 0.10, 0.12),
    (0.20, 0.22, 0.35),
    (0.45, 0.42, 0.38),
    (0.60, 0.10, 0.12),
    (0.82, 0.82, 0.80),
    (0.25, 0.35, 0.22),
    (0.35, 0.25, 0.18),
)
