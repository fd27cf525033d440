"""Where the in-distribution objects of a frame stand: traffic in the lanes, people, poles, trees
and clutter beside the road, the odd cyclist. Sampling only; `objects` draws them.

The random draws happen in a fixed order (lanes, then each side, then the rider): the data set is
reproducible from its seed, and reordering them would change every generated frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import textures as tx
from .background import SIDES, Layout
from .canvas import Camera

KeepClear = list[tuple[float, float, float]]  # (x, z, radius) of anomalies nothing may hide

VEHICLE_SIZES = {"car": (1.8, 1.5, 4.4), "truck": (2.4, 3.4, 7.0), "bus": (2.55, 3.2, 11.0)}


@dataclass
class Thing:
    kind: str  # car, truck, bus, person, cyclist, motorcyclist, pole, tree, clutter
    x: float
    z: float
    params: dict = field(default_factory=dict)


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def sample_things(rng: np.random.Generator, lay: Layout, keep_clear: KeepClear) -> list[Thing]:
    """Random street furniture and traffic; no vehicle may hide a `keep_clear` (x, z, radius)."""
    things = _traffic(rng, lay, keep_clear)
    for side in SIDES:
        things += _roadside(rng, lay, side)
    rider = _rider(rng, lay, keep_clear)
    if rider is not None:
        things.append(rider)
    return things


def _clear(keep_clear: KeepClear, x: float, z: float, width: float) -> bool:
    # a vehicle in front of (smaller z than) an anomaly and laterally overlapping hides it
    return all(not (z < az + r and abs(x - ax) < (width / 2 + r)) for ax, az, r in keep_clear)


def _traffic(rng: np.random.Generator, lay: Layout, keep_clear: KeepClear) -> list[Thing]:
    """Vehicles along every lane, nearest first, with random gaps."""
    things: list[Thing] = []
    for lane_x in lay.lane_centers:
        z = rng.uniform(3.0, 15.0)
        while z < 90.0:
            if rng.random() < 0.45:
                r = rng.random()
                kind = "car" if r < 0.8 else ("truck" if r < 0.92 else "bus")
                w, h, length = VEHICLE_SIZES[kind]
                s = rng.uniform(0.92, 1.08)
                x = lane_x + rng.uniform(-0.4, 0.4)
                if _clear(keep_clear, x, z, w * s):
                    things.append(
                        _vehicle(rng, lay, kind, lane_x, x, z, (w * s, h * s, length * s))
                    )
                z += length + rng.uniform(4.0, 25.0)
            else:
                z += rng.uniform(5.0, 25.0)
    return things


def _vehicle(
    rng: np.random.Generator,
    lay: Layout,
    kind: str,
    lane_x: float,
    x: float,
    z: float,
    size: tuple[float, float, float],
) -> Thing:
    oncoming = lane_x < sum(lay.road) / 2 and rng.random() < 0.8
    colors = {"car": tx.CAR_COLORS, "truck": tx.TRUCK_COLORS, "bus": tx.BUS_COLORS}
    width, height, length = size
    return Thing(
        kind,
        x,
        z,
        {
            "width": width,
            "height": height,
            "length": length,
            "color": tx.jitter_color(rng, _pick(rng, colors[kind]), 0.06),
            "front": oncoming,
        },
    )


def _roadside(rng: np.random.Generator, lay: Layout, side: int) -> list[Thing]:
    """People on the sidewalk, poles at the kerb, trees and clutter on one side of the road."""
    things: list[Thing] = []
    lo, hi = lay.side_strip(side)
    walk = lay.sidewalk.get(side)
    edge = lay.road[0] if side < 0 else lay.road[1]
    for _ in range(int(rng.integers(0, 5))):
        a, b = walk if walk else (lo, hi)
        x = rng.uniform(min(a, b) + 0.3, max(max(a, b) - 0.3, min(a, b) + 0.31))
        things.append(_person(rng, "person", x, rng.uniform(4.0, 50.0)))
    for _ in range(int(rng.integers(1, 4))):
        things.append(_pole(rng, edge + side * rng.uniform(0.3, 0.7), side))
    for _ in range(int(rng.integers(0, 5))):
        x = rng.uniform(min(lo, hi), max(lo, hi))
        if abs(x - edge) < 1.0:
            continue
        things.append(_tree(rng, x))
    if walk and rng.random() < 0.3:
        things.append(_clutter(rng, (walk[0] + walk[1]) / 2 + rng.uniform(-0.5, 0.5)))
    return things


def _pole(rng: np.random.Generator, x: float, side: int) -> Thing:
    return Thing(
        "pole",
        x,
        rng.uniform(5.0, 80.0),
        {
            "width": rng.uniform(0.12, 0.25),
            "height": rng.uniform(4.0, 9.0),
            "color": tx.jitter_color(rng, _pick(rng, tx.POLE_COLORS), 0.08),
            "attach": _pick(rng, ("sign", "sign", "light", "lamp", "none")),
            "sign": _pick(rng, ("circle", "triangle", "square", "diamond")),
            "lit": int(rng.integers(3)),
            "side": side,
        },
    )


def _tree(rng: np.random.Generator, x: float) -> Thing:
    return Thing(
        "tree",
        x,
        rng.uniform(5.0, 90.0),
        {
            "width": 3.5,
            "trunk": rng.uniform(0.2, 0.4),
            "crown": rng.uniform(3.0, 6.0),
            "radius": rng.uniform(1.2, 2.6),
            "color": tx.jitter_color(rng, _pick(rng, tx.VEGETATION_COLORS), 0.12),
            "seed": int(rng.integers(1 << 31)),
        },
    )


def _clutter(rng: np.random.Generator, x: float) -> Thing:
    return Thing(
        "clutter",
        x,
        rng.uniform(5.0, 40.0),
        {
            "width": rng.uniform(0.5, 1.0),
            "height": rng.uniform(0.8, 1.3),
            "color": tx.jitter_color(rng, (0.25, 0.32, 0.28), 0.3),
        },
    )


def _rider(rng: np.random.Generator, lay: Layout, keep_clear: KeepClear) -> Thing | None:
    """Now and then a cyclist or motorcyclist at the road's edge."""
    if rng.random() >= 0.35:
        return None
    kind = "cyclist" if rng.random() < 0.6 else "motorcyclist"
    side = 1 if rng.random() < 0.7 else -1
    edge = lay.road[0] if side < 0 else lay.road[1]
    x, z = edge - side * rng.uniform(0.6, 1.2), rng.uniform(5.0, 40.0)
    return _person(rng, kind, x, z) if _clear(keep_clear, x, z, 0.8) else None


def thing_box(cam: Camera, t: Thing) -> tuple[float, float, float, float]:
    """Generous image bounding box (u0, v0, u1, v1) of a thing, side faces included."""
    p = t.params
    half = {"tree": p.get("radius", 1.0) * 2.0, "pole": 2.0}.get(t.kind, p.get("width", 0.6) / 2)
    top = {"tree": p.get("crown", 0) + 1.3 * p.get("radius", 0)}.get(t.kind, p.get("height", 2.0))
    u0, v0 = cam.project(t.x - half, t.z, top + 0.5)
    u1, v1 = cam.project(t.x + half, t.z, 0.0)
    if "length" in p:  # vehicles: the side face reaches toward the vanishing point
        fu0, fv0 = cam.project(t.x - half, t.z + p["length"], top)
        fu1, _ = cam.project(t.x + half, t.z + p["length"], 0.0)
        u0, u1, v0 = min(u0, fu0), max(u1, fu1), min(v0, fv0)
    return u0 - 2, v0 - 2, u1 + 2, v1 + 2


def _person(rng, kind: str, x: float, z: float) -> Thing:
    return Thing(
        kind,
        x,
        z,
        {
            "width": 0.5,
            "height": rng.uniform(1.55, 1.9),
            "skin": tx.jitter_color(rng, _pick(rng, tx.SKIN_COLORS), 0.05),
            "shirt": tx.jitter_color(rng, _pick(rng, tx.CLOTH_COLORS), 0.1),
            "pants": tx.jitter_color(rng, _pick(rng, tx.CLOTH_COLORS), 0.1),
            "stride": rng.uniform(-0.15, 0.15),
            "color": tx.jitter_color(rng, (0.2, 0.2, 0.22), 0.3),
        },
    )
