"""One synthetic road scene: camera, layout, background, objects, anomalies, camera effects."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import textures as tx
from .anomalies import PlacedAnomaly, draw_anomaly, sample_anomaly_positions
from .background import paint_background, sample_layout
from .canvas import Camera, Canvas
from .classes import VOID
from .effects import apply_camera
from .objects import draw_thing, shadow
from .placement import sample_things, thing_box

SPLITS: tuple[str, ...] = ("train", "val", "ood_val", "ood_small", "ood_roadlike", "ood_shift")
ANOMALY_SPLITS: frozenset[str] = frozenset({"ood_val", "ood_small", "ood_roadlike", "ood_shift"})
MIN_WIDTH, MIN_HEIGHT = 64, 32


@dataclass
class Scene:
    image: np.ndarray  # H,W,3 uint8 RGB
    labels: np.ndarray  # H,W uint8 train ids, 255 void
    ood: np.ndarray  # H,W uint8: 0 in-distribution, 1 anomaly, 255 void
    split: str
    anomalies: list[PlacedAnomaly] = field(default_factory=list)


def render_scene(rng: np.random.Generator, width: int, height: int, split: str) -> Scene:
    """Render one frame. Anomalies appear only in the OOD splits; `ood_shift` adds domain shift."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValueError(f"image size {width}x{height} too small (min {MIN_WIDTH}x{MIN_HEIGHT})")
    cam = Camera(
        width=width,
        height=height,
        f=width * rng.uniform(0.7, 0.95),
        horizon=height * rng.uniform(0.36, 0.5),
        vx=width * rng.uniform(0.42, 0.58),
        cam_h=rng.uniform(1.3, 1.7),
    )
    lay = sample_layout(rng)
    canvas = Canvas(width, height)
    paint_background(rng, cam, lay, canvas)

    hood = rng.uniform(0.06, 0.14) * height if rng.random() < 0.4 else 0.0
    positions = []
    if split in ANOMALY_SPLITS:
        positions = sample_anomaly_positions(rng, cam, lay, split, height - hood)
    keep_clear = [(x, z, w / 2 + 0.3) for x, z, w, _ in positions]
    things = sample_things(rng, lay, keep_clear)
    if positions:  # nothing nearer may hide an anomaly completely: drop overlapping things
        boxes = [_anomaly_box(cam, p) for p in positions]
        things = [
            t
            for t in things
            if not any(
                t.z < p[1] + 1.0 and _overlap(thing_box(cam, t), b)
                for p, b in zip(positions, boxes, strict=True)
            )
        ]

    for t in things:
        if t.kind in ("car", "truck", "bus"):
            shadow(cam, canvas, t.x, t.z, t.params["width"] * 1.1, t.params["length"])
    for x, z, w, _ in positions:
        shadow(cam, canvas, x, z, w * 1.1, w * 0.5)
    for t in things:
        draw_thing(rng, cam, canvas, t)
    anomalies = [draw_anomaly(rng, cam, canvas, p, split, lay.road_color) for p in positions]
    if hood > 0:
        _paint_hood(rng, canvas, hood)

    image = apply_camera(rng, canvas.image, canvas.depth, shift=split == "ood_shift")
    labels = canvas.labels
    ood = np.where(canvas.anomaly, 1, np.where(labels == VOID, VOID, 0)).astype(np.uint8)
    return Scene(image, labels, ood, split, anomalies)


def _anomaly_box(cam: Camera, pos) -> tuple[float, float, float, float]:
    x, z, width, height = pos
    u0, v0 = cam.project(x - width / 2, z, height)
    u1, v1 = cam.project(x + width / 2, z, 0.0)
    return u0 - 3, v0 - 3, u1 + 3, v1 + 1


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _paint_hood(rng, canvas: Canvas, hood: float) -> None:
    """Ego-vehicle bonnet along the bottom edge: void, like Cityscapes' ego-vehicle label."""
    h, w = canvas.height, canvas.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx = w * rng.uniform(0.4, 0.6)
    edge = h - hood + 0.6 * hood * ((xx - cx) / (w / 2)) ** 2
    mask = yy >= edge
    col = tx.jitter_color(rng, tx.CAR_COLORS[int(rng.integers(len(tx.CAR_COLORS)))], 0.05)
    refl = np.clip((yy - (h - hood)) / max(hood, 1.0), 0, 1)[..., None]
    rgb = col * (0.6 + 0.4 * refl) + 0.15 * (1 - refl)
    canvas.paint(0, 0, mask, np.clip(rgb, 0, 1).astype(np.float32), VOID, 0.0)
