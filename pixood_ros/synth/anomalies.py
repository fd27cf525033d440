"""Anomalies: objects whose colours, textures and shapes no class uses, placed on the road.

Textures come from real photographs shipped inside scikit-image (read straight from its package
folder, so nothing is ever downloaded), from vivid procedural patterns, or - for the hard
`ood_roadlike` split - from grey photo textures tinted to the road's own colour.
"""

from __future__ import annotations

import colorsys
import functools
import os
from dataclasses import dataclass

import cv2
import numpy as np

from . import textures as tx
from .background import Layout
from .canvas import Camera, Canvas, Stencil
from .classes import VOID

# Files shipped in skimage/data (no pooch download needed). Missing ones are skipped.
COLOR_PHOTOS = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "ihc.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "color.png",
)
GRAY_PHOTOS = ("gravel.png", "brick.png", "moon.png", "camera.png", "coins.png", "grass.png")
SILHOUETTES = ("horse.png",)

# Hue ranges (degrees) no class uses at high saturation: lime, cyan, violet/magenta, orange.
VIVID_HUES = ((75.0, 160.0), (165.0, 195.0), (265.0, 335.0), (15.0, 38.0))


@dataclass
class PlacedAnomaly:
    """An anomaly as drawn: full footprint (before occlusion) and where it stands."""

    kind: str
    texture: str
    x: float  # lateral position on the road (m)
    z: float  # distance (m)
    size: float  # width (m)
    y0: int  # footprint top-left row in the image
    x0: int  # footprint top-left column
    mask: np.ndarray  # bool footprint, local to (y0, x0)

    def full_mask(self, height: int, width: int) -> np.ndarray:
        out = np.zeros((height, width), bool)
        h, w = self.mask.shape
        ya, xa = max(self.y0, 0), max(self.x0, 0)
        yb, xb = min(self.y0 + h, height), min(self.x0 + w, width)
        if ya < yb and xa < xb:
            out[ya:yb, xa:xb] = self.mask[ya - self.y0 : yb - self.y0, xa - self.x0 : xb - self.x0]
        return out


@functools.lru_cache(maxsize=1)
def _photo_bank() -> dict[str, list[np.ndarray]]:
    """Shipped scikit-image photos as float RGB, long side <= 256 px (speed)."""
    import skimage.data

    folder = os.path.dirname(skimage.data.__file__)
    bank: dict[str, list[np.ndarray]] = {"color": [], "gray": [], "silhouette": []}
    for group, names in (
        ("color", COLOR_PHOTOS),
        ("gray", GRAY_PHOTOS),
        ("silhouette", SILHOUETTES),
    ):
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                continue
            img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            if img is None:
                continue
            if img.ndim == 3:
                img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
            scale = 256.0 / max(img.shape[:2])
            if scale < 1:
                img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            img = img.astype(np.float32) / 255.0
            if group == "gray" and img.ndim == 3:
                img = img.mean(axis=2)
            if group == "silhouette":
                img = img if img.ndim == 2 else img.mean(axis=2)
                img = (img < 0.5).astype(np.float32)  # horse.png: dark animal on white
            bank[group].append(img)
    return bank


def available_photos() -> dict[str, int]:
    """How many shipped photos of each group were found (reported in meta.json)."""
    return {k: len(v) for k, v in _photo_bank().items()}


def _crop(rng, img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Random crop (random zoom, flip, 90-degree turn) resized to h x w."""
    if rng.random() < 0.5:
        img = np.rot90(img)
    ih, iw = img.shape[:2]
    frac = rng.uniform(0.3, 1.0)
    ch = max(int(ih * frac), 2)
    cw = max(min(int(ch * w / max(h, 1)), iw), 2)
    y = int(rng.integers(0, ih - ch + 1))
    x = int(rng.integers(0, iw - cw + 1))
    out = np.ascontiguousarray(img[y : y + ch, x : x + cw])
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return cv2.resize(np.ascontiguousarray(out), (w, h), interpolation=cv2.INTER_AREA)


def _vivid(rng) -> np.ndarray:
    lo, hi = VIVID_HUES[int(rng.integers(len(VIVID_HUES)))]
    rgb = colorsys.hsv_to_rgb(
        rng.uniform(lo, hi) / 360.0, rng.uniform(0.7, 1.0), rng.uniform(0.6, 1.0)
    )
    return np.array(rgb, np.float32)


def _shape(rng, st: Stencil, u0, v0, u1, v1) -> tuple[str, np.ndarray]:
    """Silhouette inside the image box (u0,v0)-(u1,v1)."""
    w, h = u1 - u0, v1 - v0
    cx, cy = (u0 + u1) / 2, (v0 + v1) / 2
    bank = _photo_bank()
    r = rng.random()
    if r < 0.35:
        k = int(rng.integers(3, 10))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = rng.uniform(0.55, 1.0, k)
        pts = np.stack([cx + np.cos(ang) * rad * w / 2, cy + np.sin(ang) * rad * h / 2], 1)
        return "polygon", st.polygon(pts)
    if r < 0.7:
        yy, xx = np.mgrid[0 : st.h, 0 : st.w].astype(np.float32)
        d = ((xx + st.x0 - cx) / max(w / 2, 0.5)) ** 2 + ((yy + st.y0 - cy) / max(h / 2, 0.5)) ** 2
        n = tx.value_noise(rng, st.h, st.w, cell=max(min(w, h) / 3, 1.0), octaves=2)
        return "blob", (1.0 - d + 0.45 * n) > 0.25
    if r < 0.85 or not bank["silhouette"]:
        ang = rng.uniform(-25, 25)
        rect = cv2.boxPoints(((cx, cy), (w * 0.85, h * 0.85), ang))
        return "box", st.polygon(rect)
    sil = bank["silhouette"][int(rng.integers(len(bank["silhouette"])))]
    if rng.random() < 0.5:
        sil = sil[:, ::-1]
    m = np.zeros((st.h, st.w), bool)
    bw, bh = max(int(round(w)), 1), max(int(round(h)), 1)
    res = cv2.resize(np.ascontiguousarray(sil), (bw, bh), interpolation=cv2.INTER_NEAREST) > 0.5
    oy, ox = int(round(v0)) - st.y0, int(round(u0)) - st.x0
    ys, xs = slice(max(oy, 0), min(oy + bh, st.h)), slice(max(ox, 0), min(ox + bw, st.w))
    m[ys, xs] = res[ys.start - oy : ys.stop - oy, xs.start - ox : xs.stop - ox]
    return "silhouette", m


def _texture(rng, h: int, w: int, roadlike: bool, road_rgb: np.ndarray) -> tuple[str, np.ndarray]:
    bank = _photo_bank()
    if roadlike:
        if bank["gray"] and rng.random() < 0.7:
            g = _crop(rng, bank["gray"][int(rng.integers(len(bank["gray"])))], h, w)
            name = "gray_photo"
        else:
            g = tx.value_noise(rng, h, w, cell=rng.uniform(2, 8), octaves=3) * 0.5 + 0.5
            name = "road_noise"
        g = (g - g.mean()) / (g.std() + 1e-3)
        # brighter or darker than the road by a small margin, nearly the same hue
        offset = rng.choice([-1.0, 1.0]) * rng.uniform(0.08, 0.25)
        base = np.clip(road_rgb * (1.0 + offset) + rng.uniform(-0.03, 0.03, 3), 0.02, 1.0)
        return name, np.clip(base[None, None] * (1.0 + 0.18 * g[..., None]), 0, 1).astype(
            np.float32
        )
    r = rng.random()
    if r < 0.5 and bank["color"]:
        return "photo", _crop(rng, bank["color"][int(rng.integers(len(bank["color"])))], h, w)
    c1, c2 = _vivid(rng), _vivid(rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = max(min(h, w) / rng.uniform(2.0, 6.0), 2.0)
    pattern = ("stripes", "checker", "dots", "solid")[int(rng.integers(4))]
    if pattern == "stripes":
        ang = rng.uniform(0, np.pi)
        sel = ((xx * np.cos(ang) + yy * np.sin(ang)) // period) % 2 == 0
    elif pattern == "checker":
        sel = ((xx // period) + (yy // period)) % 2 == 0
    elif pattern == "dots":
        sel = ((xx % period) - period / 2) ** 2 + ((yy % period) - period / 2) ** 2 < (
            period / 3
        ) ** 2
    else:
        sel = np.zeros((h, w), bool)
    rgb = np.where(sel[..., None], c2, c1)
    rgb = rgb * (1 + 0.1 * tx.value_noise(rng, h, w, cell=max(period, 2), octaves=2)[..., None])
    return pattern, np.clip(rgb, 0, 1).astype(np.float32)


def sample_anomaly_positions(
    rng, cam: Camera, lay: Layout, split: str, max_row: float
) -> list[tuple[float, float, float, float]]:
    """(x, z, width, height) in metres for each anomaly of a frame; all stand on the road."""
    small = split == "ood_small"
    n = int(rng.integers(1, 5 if small else 4))
    # nearest distance whose ground row is still above the ego hood
    z_near = cam.depth_of_row(max_row - 2.0)
    out = []
    for _ in range(n):
        if small:
            width = rng.uniform(0.12, 0.45)
            z = np.exp(rng.uniform(np.log(max(18.0, z_near)), np.log(max(80.0, z_near + 1))))
        else:
            width = rng.uniform(0.3, 1.8)
            z = np.exp(rng.uniform(np.log(max(5.0, z_near)), np.log(max(45.0, z_near + 1))))
        height = width * rng.uniform(0.4, 1.4)
        # lateral range: on the road, and (as a whole) inside the picture
        margin = max(width * cam.scale(z), 3.0) / 2 + 1
        lo = max(lay.road[0] + width / 2 + 0.2, (margin - cam.vx) * z / cam.f)
        hi = min(lay.road[1] - width / 2 - 0.2, (cam.width - margin - cam.vx) * z / cam.f)
        if hi < lo:  # road wider than the view this close: stand in the middle of the view
            lo = hi = min(max(0.0, lay.road[0] + width / 2), lay.road[1] - width / 2)
        x = rng.uniform(lo, hi)
        out.append((float(x), float(z), float(width), float(height)))
    return out


def draw_anomaly(
    rng,
    cam: Camera,
    canvas: Canvas,
    pos: tuple[float, float, float, float],
    split: str,
    road_rgb: np.ndarray,
) -> PlacedAnomaly:
    """Paint one anomaly standing at ground point (x, z); returns its full footprint."""
    x, z, width, height = pos
    s = cam.scale(z)
    u, v = cam.project(x, z)
    # never smaller than ~3 px: a 1-px "object" is not an object any more
    pw, ph = max(width * s, 3.0), max(height * s, 3.0)
    u0, v0, u1, v1 = u - pw / 2, v - ph, u + pw / 2, v
    st = Stencil(u0, v0, u1, v1)
    kind, mask = _shape(rng, st, u0, v0, u1, v1)
    name, rgb = _texture(rng, st.h, st.w, split == "ood_roadlike", road_rgb)
    shade = 1.1 - 0.25 * np.clip((st.rows() - v0) / max(ph, 1.0), 0, 1)  # lit from above
    rgb = np.clip(rgb * shade[..., None], 0, 1)
    # z-test depth of the contact row, so the ground right under the base cannot cut it off
    rows = np.nonzero(mask.any(axis=1))[0]
    lowest = st.y0 + (rows.max() if rows.size else st.h)
    depth = min(z - 0.1, cam.depth_of_row(max(v, lowest) + 1.5))
    canvas.paint(st.y0, st.x0, mask, rgb, VOID, depth, anomaly=True)
    return PlacedAnomaly(kind, name, x, z, width, st.y0, st.x0, mask)
