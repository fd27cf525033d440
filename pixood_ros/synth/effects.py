"""Camera and weather effects: exposure, white balance, blur, sensor noise, and domain shift.

Applied after rendering so labels stay exact while pixels vary the way real frames do.
`ood_shift` frames additionally get night, fog and/or strong blur, which a model trained on the
clean splits has never seen.
"""

from __future__ import annotations

import cv2
import numpy as np

from .textures import value_noise


def _blur(rng, img: np.ndarray, strength: float) -> np.ndarray:
    if rng.random() < 0.3:  # motion blur along a random direction
        k = max(int(round(strength * 4)) | 1, 3)
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(-30, 30), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (k, k))
        return cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))
    return cv2.GaussianBlur(img, (0, 0), strength)


def apply_camera(rng, img: np.ndarray, depth: np.ndarray, shift: bool) -> np.ndarray:
    """float RGB 0..1 + depth map -> uint8 RGB frame."""
    h, w = img.shape[:2]
    if shift:
        effects = [e for e in ("dark", "fog", "blur") if rng.random() < 0.5] or [
            ("dark", "fog", "blur")[int(rng.integers(3))]
        ]
    else:
        effects = []

    if "fog" in effects:
        visibility = rng.uniform(15.0, 60.0)
        t = np.exp(-np.minimum(depth, 1e3) / visibility)[..., None]
        fog = np.float32(rng.uniform(0.6, 0.85)) * np.array([1.0, 1.0, 1.02], np.float32)
        img = img * t + fog * (1 - t)

    # exposure, white balance, contrast/gamma
    gain = rng.uniform(0.8, 1.2)
    wb = rng.uniform(0.93, 1.07, 3).astype(np.float32)
    img = img * (gain * wb)
    if "dark" in effects:
        img = img * rng.uniform(0.25, 0.5)
        glow = np.clip(value_noise(rng, h, w, cell=w / 3, octaves=1), 0, 1)[..., None]
        img = img + glow * np.array([0.12, 0.08, 0.02], np.float32) * rng.uniform(0.2, 1.0)
    gamma = rng.uniform(0.85, 1.15)
    img = np.clip(img, 0, 1) ** gamma

    # vignetting
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    img = img * (1.0 - rng.uniform(0.0, 0.15) * r2 / 2)[..., None]

    if "blur" in effects:
        img = _blur(rng, img.astype(np.float32), rng.uniform(1.5, 3.5))
    elif rng.random() < 0.5:
        img = _blur(rng, img.astype(np.float32), rng.uniform(0.3, 0.9))

    sigma = rng.uniform(0.004, 0.02) * (2.5 if "dark" in effects else 1.0)
    noise = rng.standard_normal((h, w, 3)).astype(np.float32) * sigma
    img = img + noise * np.sqrt(np.clip(img, 0.02, 1)) * 2.0
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
