"""Street layout and the per-pixel background: sky, skyline, ground strips, facades, fences.

Everything static is computed per pixel from the camera model (ray/plane intersections), which
gives exact perspective and a depth map (used for z-testing sprites and for fog) at numpy speed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from . import textures as tx
from .canvas import SKY_DEPTH, Camera, Canvas
from .classes import Cls

SIDES = (-1, 1)  # left, right of the camera


@dataclass
class Blocks:
    """Facade segments along the street: start/end distance, height, style, gap kind."""

    z0: np.ndarray
    z1: np.ndarray
    height: np.ndarray
    color: np.ndarray  # [n, 3]
    window: np.ndarray  # [n, 4]: spacing, width, floor height, window height (m)
    kind: np.ndarray  # 0 building, 1 trees, 2 open


@dataclass
class Barrier:
    x: float
    kind: int  # Cls.FENCE or Cls.WALL
    height: float
    z0: float
    z1: float
    color: np.ndarray
    slat: float  # fence slat period (m)


@dataclass
class Layout:
    road: tuple[float, float]
    lane_lines: list[float]
    lane_centers: list[float]
    center_solid: bool
    sidewalk: dict[int, tuple[float, float]] = field(default_factory=dict)  # side -> (inner, outer)
    terrain: dict[int, tuple[float, float]] = field(default_factory=dict)
    facade_x: dict[int, float] = field(default_factory=dict)
    blocks: dict[int, Blocks] = field(default_factory=dict)
    barrier: dict[int, Barrier] = field(default_factory=dict)
    crosswalk: tuple[float, float] | None = None
    road_color: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))

    def side_strip(self, side: int) -> tuple[float, float]:
        """Lateral span (lo, hi) between the road edge and the facade on `side`."""
        edge = self.road[0] if side < 0 else self.road[1]
        far = self.facade_x.get(side, edge + side * 14.0)
        return (far, edge) if side < 0 else (edge, far)


def sample_layout(rng: np.random.Generator) -> Layout:
    n_lanes = int(rng.choice([2, 2, 3, 4]))
    lane_w = rng.uniform(3.0, 3.7)
    center = rng.uniform(-0.6, 0.6) * lane_w + (lane_w / 2 if n_lanes % 2 == 0 else 0.0)
    half = n_lanes * lane_w / 2
    road = (center - half, center + half)
    lines = [road[0] + k * lane_w for k in range(1, n_lanes)]
    centers = [road[0] + (k + 0.5) * lane_w for k in range(n_lanes)]
    lay = Layout(road, lines, centers, center_solid=bool(rng.random() < 0.3))
    lay.road_color = tx.jitter_color(rng, tx.ROAD_COLORS[rng.integers(len(tx.ROAD_COLORS))], 0.12)
    for side in SIDES:
        edge = road[0] if side < 0 else road[1]
        x = edge
        if rng.random() < 0.9:
            w = rng.uniform(1.5, 4.5)
            lay.sidewalk[side] = (x, x + side * w)
            x += side * w
        if rng.random() < 0.5:
            w = rng.uniform(1.0, 5.0)
            lay.terrain[side] = (x, x + side * w)
            x += side * w
        if rng.random() < 0.3:
            kind = int(Cls.FENCE if rng.random() < 0.6 else Cls.WALL)
            z0 = rng.uniform(3.0, 25.0)
            colors = tx.FENCE_COLORS if kind == Cls.FENCE else tx.WALL_COLORS
            lay.barrier[side] = Barrier(
                x=x + side * 0.2,
                kind=kind,
                height=rng.uniform(0.9, 2.2),
                z0=z0,
                z1=z0 + rng.uniform(10.0, 80.0),
                color=tx.jitter_color(rng, colors[rng.integers(len(colors))], 0.1),
                slat=rng.uniform(0.12, 0.3),
            )
        if rng.random() < 0.85:
            lay.facade_x[side] = x + side * rng.uniform(0.5, 2.0)
            lay.blocks[side] = _sample_blocks(rng)
        else:
            lay.terrain[side] = (x, x + side * 200.0)
    if rng.random() < 0.25:
        z = rng.uniform(8.0, 30.0)
        lay.crosswalk = (z, z + rng.uniform(3.0, 5.0))
    return lay


def _sample_blocks(rng: np.random.Generator) -> Blocks:
    z0, z1, hgt, col, win, kind = [], [], [], [], [], []
    z = rng.uniform(-5.0, 2.0)
    while z < 400.0:
        r = rng.random()
        k = 0 if r < 0.75 else (1 if r < 0.9 else 2)
        length = rng.uniform(8.0, 45.0) if k == 0 else rng.uniform(4.0, 20.0)
        z0.append(z)
        z1.append(z + length)
        hgt.append(rng.uniform(6.0, 30.0) if k == 0 else rng.uniform(3.0, 10.0))
        base = tx.BUILDING_COLORS[rng.integers(len(tx.BUILDING_COLORS))]
        col.append(tx.jitter_color(rng, base, 0.12))
        win.append((rng.uniform(2.2, 4.0), rng.uniform(0.8, 1.6), rng.uniform(2.8, 3.5), 1.4))
        kind.append(k)
        z += length
    return Blocks(
        np.array(z0, np.float32),
        np.array(z1, np.float32),
        np.array(hgt, np.float32),
        np.array(col, np.float32),
        np.array(win, np.float32),
        np.array(kind, np.int32),
    )


def _write(
    canvas: Canvas, valid: np.ndarray, depth: np.ndarray, rgb: np.ndarray, label, cols=slice(None)
) -> None:
    """Z-buffered background write into columns `cols`; `label` is a scalar or per-pixel array."""
    m = valid & (depth < canvas.depth[:, cols])
    canvas.image[:, cols][m] = rgb[m]
    canvas.labels[:, cols][m] = label[m] if np.ndim(label) else label
    canvas.depth[:, cols][m] = depth[m]


def paint_background(rng: np.random.Generator, cam: Camera, lay: Layout, canvas: Canvas) -> None:
    h, w = cam.height, cam.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    _paint_sky(rng, cam, canvas, yy)
    _paint_skyline(rng, cam, canvas)
    _paint_ground(rng, cam, lay, canvas, yy, xx)
    for side in SIDES:
        # a plane beside the road is only visible on its own side of the vanishing point
        split = int(np.clip(round(cam.vx), 0, w))
        cols = slice(0, split) if side < 0 else slice(split, w)
        if cols.stop - cols.start <= 0:
            continue
        sy, sx = yy[:, cols], xx[:, cols]
        if side in lay.blocks:
            _paint_facades(rng, cam, lay.facade_x[side], lay.blocks[side], canvas, sy, sx, cols)
        if side in lay.barrier:
            _paint_barrier(rng, cam, lay.barrier[side], canvas, sy, sx, cols)


def _paint_sky(rng, cam: Camera, canvas: Canvas, yy: np.ndarray) -> None:
    h, w = cam.height, cam.width
    t = np.clip(yy / max(cam.horizon, 1.0), 0.0, 1.0)[..., None]  # 0 top, 1 horizon
    if rng.random() < 0.6:  # blue sky
        top = tx.jitter_color(rng, (0.35, 0.55, 0.85), 0.1)
        bottom = tx.jitter_color(rng, (0.70, 0.80, 0.92), 0.06)
    else:  # overcast
        g = rng.uniform(0.65, 0.9)
        top = tx.jitter_color(rng, (g, g, g + 0.03), 0.04)
        bottom = tx.jitter_color(rng, (g + 0.05, g + 0.05, g + 0.06), 0.03)
    rgb = top * (1 - t) + bottom * t
    clouds = np.clip(tx.value_noise(rng, h, w, cell=w / 4, octaves=4) * 1.6 - 0.2, 0, 1)
    rgb = rgb + (0.95 - rgb) * (clouds * rng.uniform(0.2, 0.8))[..., None]
    canvas.image[:] = rgb
    canvas.labels[:] = Cls.SKY
    canvas.depth[:] = SKY_DEPTH


def _paint_skyline(rng, cam: Camera, canvas: Canvas) -> None:
    """Distant buildings / tree line sitting on the horizon."""
    h, w = cam.height, cam.width
    hz = int(round(cam.horizon))
    top = np.full(w, hz, np.float32)
    x = 0
    while x < w:
        seg = int(rng.integers(max(w // 40, 2), max(w // 8, 3)))
        if rng.random() < 0.6:
            top[x : x + seg] = hz - rng.uniform(0.0, 0.12) * h
        x += seg
    trees = (
        hz - np.clip(tx.value_noise(rng, 1, w, cell=w / 16, octaves=3)[0] + 0.3, 0, 1) * 0.06 * h
    )
    is_tree = trees < top
    top = np.minimum(top, trees)
    rows = np.arange(h, dtype=np.float32)[:, None]
    band = (rows >= top[None, :]) & (rows < hz + 1)
    label = np.where(is_tree[None, :], Cls.VEGETATION, Cls.BUILDING).astype(np.uint8)
    label = np.broadcast_to(label, (h, w))
    haze = rng.uniform(0.45, 0.7)
    noise = tx.value_noise(rng, h, w, cell=4, octaves=2)
    bcol = tx.tint(tx.jitter_color(rng, (0.55, 0.56, 0.6), 0.1), noise, 0.12)
    vcol = tx.tint(tx.jitter_color(rng, tx.VEGETATION_COLORS[0], 0.1), noise, 0.25)
    rgb = np.where((label == Cls.VEGETATION)[..., None], vcol, bcol)
    rgb = rgb * (1 - haze) + canvas.image * haze
    _write(canvas, band, np.full((h, w), 900.0, np.float32), rgb, label)


def _paint_ground(rng, cam: Camera, lay: Layout, canvas: Canvas, yy, xx) -> None:
    h, w = cam.height, cam.width
    below = yy > cam.horizon + 0.5
    dy = np.maximum(yy - cam.horizon, 0.5)
    z = cam.f * cam.cam_h / dy
    x = (xx - cam.vx) * z / cam.f
    px_per_m = cam.f / z  # at that pixel
    label = np.full((h, w), Cls.TERRAIN, np.uint8)

    on_road = (x >= lay.road[0]) & (x <= lay.road[1])
    label[on_road] = Cls.ROAD
    for a, b in lay.sidewalk.values():
        label[(x >= min(a, b)) & (x <= max(a, b))] = Cls.SIDEWALK

    # road: asphalt = low-frequency patches + grit, with perspective-faded grit
    fade = np.clip(px_per_m / 40.0, 0.15, 1.0)
    road = tx.tint(lay.road_color, tx.value_noise(rng, h, w, cell=w / 6, octaves=3), 0.10)
    road *= (1.0 + 0.10 * tx.grain(rng, h, w) * fade)[..., None]
    patch = _world_noise(rng, x, z, 0.25, 0.08) > 0.55
    road[patch] *= rng.uniform(0.8, 0.92)
    paint = np.zeros((h, w), bool)
    line_w = 0.12
    for lx in lay.lane_lines:
        near = np.abs(x - lx) < line_w
        solid = lay.center_solid and abs(lx - (lay.road[0] + lay.road[1]) / 2) < 0.1
        paint |= near & (solid | ((z % 9.0) < 3.0))
    for edge in lay.road:
        paint |= np.abs(x - (edge - np.sign(edge - sum(lay.road) / 2) * 0.3)) < line_w
    if lay.crosswalk is not None:
        za, zb = lay.crosswalk
        paint |= (z > za) & (z < zb) & ((x % 1.0) < 0.5)
    paint &= on_road
    marking = tx.jitter_color(rng, (0.85, 0.85, 0.82), 0.08)
    wear = tx.value_noise(rng, h, w, cell=6, octaves=2)
    road[paint] = (marking[None, :] * (0.85 + 0.15 * wear[paint, None])).clip(0, 1)

    # sidewalk: pavers with joints in world coordinates, joints fade with distance
    sw_col = tx.jitter_color(rng, tx.SIDEWALK_COLORS[rng.integers(len(tx.SIDEWALK_COLORS))], 0.08)
    side = tx.tint(sw_col, tx.value_noise(rng, h, w, cell=w / 10, octaves=3), 0.08)
    tile = rng.uniform(0.3, 0.8)
    joint = ((x % tile) < 0.03) | ((z % tile) < 0.03)
    jfade = np.clip(px_per_m * tile / 10.0 - 0.3, 0.0, 1.0)
    side *= (1.0 - 0.25 * (joint * jfade))[..., None]
    curb = np.zeros((h, w), bool)
    for a, _b in lay.sidewalk.values():
        curb |= np.abs(x - a) < 0.15
    side[curb] = side[curb] * 1.15

    # terrain: grass/dirt, streaky in world coordinates
    t_col = tx.jitter_color(rng, tx.TERRAIN_COLORS[rng.integers(len(tx.TERRAIN_COLORS))], 0.1)
    terr = tx.tint(t_col, tx.value_noise(rng, h, w, cell=w / 12, octaves=4), 0.25, chroma=0.4)
    terr *= (1.0 + 0.12 * tx.grain(rng, h, w) * fade)[..., None]

    rgb = np.where(
        (label == Cls.ROAD)[..., None],
        road,
        np.where((label == Cls.SIDEWALK)[..., None], side, terr),
    )
    _write(canvas, below, z, rgb.astype(np.float32), label)


def _world_noise(rng, x: np.ndarray, z: np.ndarray, sx: float, sz: float) -> np.ndarray:
    """Noise in world coordinates (x, z), sampled through a wrapping tile: stays on the ground."""
    tile = tx.value_noise(rng, 128, 128, cell=16, octaves=2)
    mx = ((x * sx * 16) % 128).astype(np.float32)
    mz = ((z * sz * 16) % 128).astype(np.float32)
    return cv2.remap(tile, mx, mz, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


def _plane_hits(cam: Camera, plane_x: float, yy, xx):
    """Ray/plane intersection with the vertical plane X = plane_x: (valid, depth, height, along)."""
    dx = xx - cam.vx
    with np.errstate(divide="ignore", invalid="ignore"):
        z = cam.f * plane_x / dx
    valid = (np.sign(dx) == np.sign(plane_x)) & np.isfinite(z) & (z > 0.5)
    z = np.where(valid, z, SKY_DEPTH).astype(np.float32)
    height = cam.cam_h - (yy - cam.horizon) * z / cam.f
    return valid & (height >= 0), z, height


def _paint_facades(
    rng, cam: Camera, plane_x: float, blocks: Blocks, canvas: Canvas, yy, xx, cols: slice
) -> None:
    h, w = yy.shape
    valid, z, height = _plane_hits(cam, plane_x, yy, xx)
    idx = np.clip(np.searchsorted(blocks.z1, z), 0, len(blocks.z1) - 1)
    kind = blocks.kind[idx]
    valid &= (z >= blocks.z0[0]) & (z <= blocks.z1[-1])
    tree_top = blocks.height[idx] * (0.8 + 0.3 * tx.value_noise(rng, h, w, cell=8, octaves=2))
    is_bld = valid & (kind == 0) & (height <= blocks.height[idx])
    is_veg = valid & (kind == 1) & (height <= tree_top)

    base = blocks.color[idx]
    noise = tx.value_noise(rng, h, w, cell=cam.width / 8, octaves=3)
    rgb = base * (1.0 + 0.10 * noise)[..., None]
    spacing, win_w, floor_h, win_h = (blocks.window[idx, k] for k in range(4))
    u = (z - blocks.z0[idx]) % spacing
    v = height % floor_h
    window = (u > 0.5) & (u < 0.5 + win_w) & (v > 0.9) & (v < 0.9 + win_h) & (height > 3.0)
    ledge = (v < 0.15) & (height > 2.5)
    glass = np.array([0.18, 0.22, 0.28], np.float32) * (1 + 0.4 * noise[..., None])
    rgb = np.where(window[..., None], glass, rgb)
    rgb = np.where(ledge[..., None], rgb * 0.8, rgb)
    shop = height < 2.6
    rgb = np.where(shop[..., None], rgb * 0.75, rgb)
    rgb *= rng.uniform(0.75, 1.05)  # facade orientation relative to the sun

    veg_col = tx.jitter_color(rng, tx.VEGETATION_COLORS[rng.integers(4)], 0.1)
    veg = tx.tint(veg_col, tx.value_noise(rng, h, w, cell=3, octaves=2), 0.45, chroma=0.3)
    rgb = np.where(is_veg[..., None], veg, rgb)
    label = np.where(is_veg, Cls.VEGETATION, Cls.BUILDING).astype(np.uint8)
    _write(canvas, is_bld | is_veg, z, np.clip(rgb, 0, 1).astype(np.float32), label, cols)


def _paint_barrier(rng, cam: Camera, bar: Barrier, canvas: Canvas, yy, xx, cols: slice) -> None:
    h, w = yy.shape
    valid, z, height = _plane_hits(cam, bar.x, yy, xx)
    valid &= (height <= bar.height) & (z >= bar.z0) & (z <= bar.z1)
    noise = tx.value_noise(rng, h, w, cell=cam.width / 16, octaves=3)
    rgb = tx.tint(bar.color, noise, 0.15)
    if bar.kind == Cls.FENCE:
        slat = (z % bar.slat) < bar.slat * 0.45
        rail = (np.abs(height - bar.height * 0.85) < 0.06) | (np.abs(height - 0.25) < 0.06)
        post = (z % 2.5) < 0.1
        far = cam.f / z * bar.slat < 2.0  # slats too small to resolve: render solid
        valid &= slat | rail | post | far
    else:
        rgb[height > bar.height - 0.12] *= 0.8  # coping stone
    _write(canvas, valid, z, rgb, int(bar.kind), cols)
