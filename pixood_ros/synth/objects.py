"""Drawing the in-distribution objects (vehicles, people, poles with signs/lights, trees, void
clutter) that `placement` put into the scene.

Each object is a flat billboard at a ground position (x, z) built from a few shaded parts; the
canvas z-test resolves occlusion, so objects can be drawn in any order.
"""

from __future__ import annotations

import numpy as np

from . import textures as tx
from .canvas import Camera, Canvas, Stencil
from .classes import VOID, Cls
from .placement import Thing


def shadow(cam: Camera, canvas: Canvas, x: float, z: float, width: float, length: float) -> None:
    """Soft dark ellipse on the ground under an object (labels untouched)."""
    u0, v0 = cam.project(x - width / 2, z)
    u1, v1 = cam.project(x + width / 2, z + length)
    st = Stencil(u0 - 2, v1 - 2, u1 + 2, v0 + 2)
    cx, cy = (u0 + u1) / 2, (v0 + v1) / 2
    yy, xx = np.mgrid[0 : st.h, 0 : st.w].astype(np.float32)
    rx, ry = max((u1 - u0) / 2 + 1, 1.0), max((v0 - v1) / 2 + 1, 1.0)
    d = ((xx + st.x0 - cx) / rx) ** 2 + ((yy + st.y0 - cy) / ry) ** 2
    weight = np.clip(1.2 - d, 0.0, 1.0)
    weight *= (
        canvas.depth[
            np.clip(yy.astype(int) + st.y0, 0, cam.height - 1),
            np.clip(xx.astype(int) + st.x0, 0, cam.width - 1),
        ]
        > z - 1.0
    )
    canvas.darken(st.y0, st.x0, weight, 0.45)


class Painter:
    """Paints one object's parts with shared depth, shading and noise."""

    def __init__(self, rng, cam: Camera, canvas: Canvas, thing: Thing, top: float, half_w: float):
        self.rng, self.cam, self.canvas, self.t = rng, cam, canvas, thing
        s = cam.scale(thing.z)
        u, v = cam.project(thing.x, thing.z)
        self.s, self.u, self.v = s, u, v
        self.st = Stencil(u - half_w * s - 2, v - top * s - 2, u + half_w * s + 2, v + 2)
        self.noise = tx.value_noise(rng, self.st.h, self.st.w, cell=max(3.0, s * 0.3), octaves=2)
        rows = self.st.rows()
        self.shade = 1.05 - 0.15 * np.clip((rows - (v - top * s)) / max(top * s, 1.0), 0, 1)

    def pt(self, dx: float, h: float) -> tuple[float, float]:
        """Image point at lateral offset dx (m) and height h (m) on the object's billboard."""
        return self.u + dx * self.s, self.v - h * self.s

    def box(self, x0: float, h0: float, x1: float, h1: float) -> np.ndarray:
        (a, b), (c, d) = self.pt(x0, h1), self.pt(x1, h0)
        return self.st.rect(a, b, c, d)

    def poly(self, pts) -> np.ndarray:
        return self.st.polygon([self.pt(dx, h) for dx, h in pts])

    def ellipse(self, dx: float, h: float, rx: float, ry: float) -> np.ndarray:
        cx, cy = self.pt(dx, h)
        return self.st.ellipse(cx, cy, rx * self.s, ry * self.s)

    def fill(self, mask: np.ndarray, color, label: int, texture: float = 0.08) -> None:
        rgb = np.asarray(color, np.float32)[None, None, :] * (1 + texture * self.noise[..., None])
        rgb = np.clip(rgb * self.shade[..., None], 0, 1)
        self.canvas.paint(self.st.y0, self.st.x0, mask, rgb, label, self.t.z - 0.3)


def draw_thing(rng: np.random.Generator, cam: Camera, canvas: Canvas, t: Thing) -> None:
    {
        "car": _draw_vehicle,
        "truck": _draw_vehicle,
        "bus": _draw_vehicle,
        "person": _draw_person,
        "cyclist": _draw_rider,
        "motorcyclist": _draw_rider,
        "pole": _draw_pole,
        "tree": _draw_tree,
        "clutter": _draw_clutter,
    }[t.kind](rng, cam, canvas, t)


def _draw_vehicle(rng, cam: Camera, canvas: Canvas, t: Thing) -> None:
    p = t.params
    w, h, length, col = p["width"], p["height"], p["length"], p["color"]
    label = {"car": Cls.CAR, "truck": Cls.TRUCK, "bus": Cls.BUS}[t.kind]
    hw = w / 2
    # side face: visible when the vehicle is beside the camera axis
    if abs(t.x) > hw:
        sx = t.x - hw if t.x > 0 else t.x + hw
        far = t.z + length
        quad = [
            cam.project(sx, t.z, 0.2),
            cam.project(sx, t.z, h * (0.6 if t.kind == "car" else 1)),
            cam.project(sx, far, h * (0.6 if t.kind == "car" else 1)),
            cam.project(sx, far, 0.2),
        ]
        xs, ys = [q[0] for q in quad], [q[1] for q in quad]
        st = Stencil(min(xs), min(ys), max(xs), max(ys))
        side = st.polygon(quad)
        canvas.paint(st.y0, st.x0, side, np.clip(col * 0.75, 0, 1), label, t.z + 0.03)
        wheel_r = 0.35 * cam.scale(t.z + length * 0.2)
        for frac in (0.15, 0.8):
            cx, cy = cam.project(sx, t.z + length * frac, 0.0)
            side_w = st.ellipse(cx, cy - wheel_r, wheel_r * 0.5, wheel_r)
            canvas.paint(st.y0, st.x0, side_w, (0.05, 0.05, 0.05), label, t.z + 0.01)
        if t.kind == "car":
            cab = [
                cam.project(sx, t.z + length * 0.3, h * 0.6),
                cam.project(sx, t.z + length * 0.35, h),
                cam.project(sx, t.z + length * 0.7, h),
                cam.project(sx, t.z + length * 0.8, h * 0.6),
            ]
            canvas.paint(st.y0, st.x0, st.polygon(cab), col * 0.5 + 0.05, label, t.z + 0.02)
    pa = Painter(rng, cam, canvas, t, top=h, half_w=hw)
    dark = (0.05, 0.05, 0.06)
    glass = np.array((0.15, 0.18, 0.22), np.float32)
    pa.fill(
        pa.box(-hw + 0.05, 0.0, -hw + 0.4, 0.35) | pa.box(hw - 0.4, 0.0, hw - 0.05, 0.35),
        dark,
        label,
    )
    if t.kind == "car":
        pa.fill(pa.box(-hw, 0.2, hw, h * 0.62), col, label)
        pa.fill(
            pa.poly([(-hw * 0.92, h * 0.6), (-hw * 0.7, h), (hw * 0.7, h), (hw * 0.92, h * 0.6)]),
            col,
            label,
        )
        pa.fill(
            pa.poly(
                [
                    (-hw * 0.8, h * 0.64),
                    (-hw * 0.64, h * 0.95),
                    (hw * 0.64, h * 0.95),
                    (hw * 0.8, h * 0.64),
                ]
            ),
            glass + 0.08 * p["front"],
            label,
            0.3,
        )
        light_h = h * 0.5
    else:
        pa.fill(pa.box(-hw, 0.3, hw, h), col, label)
        if t.kind == "bus" or p["front"]:
            pa.fill(pa.box(-hw * 0.9, h * 0.55, hw * 0.9, h * 0.92), glass, label, 0.3)
        else:
            pa.fill(pa.box(-0.03, 0.35, 0.03, h * 0.97), col * 0.7, label)  # cargo doors
        light_h = 0.6
    pa.fill(pa.box(-hw, 0.2, hw, 0.4), col * 0.55, label)  # bumper
    lamp = (0.95, 0.92, 0.8) if p["front"] else (0.75, 0.05, 0.05)
    pa.fill(
        pa.box(-hw + 0.05, light_h - 0.08, -hw + 0.3, light_h + 0.08)
        | pa.box(hw - 0.3, light_h - 0.08, hw - 0.05, light_h + 0.08),
        lamp,
        label,
        0.0,
    )
    pa.fill(pa.box(-0.26, 0.42, 0.26, 0.55), (0.9, 0.9, 0.88), label, 0.0)  # licence plate


def _draw_person_body(pa: Painter, p: dict, label: int, seated: bool) -> None:
    h = p["height"]
    head = h * 0.065
    stride = p["stride"]
    if not seated:
        pa.fill(
            pa.poly([(-0.1, h * 0.5), (-0.02, h * 0.5), (-0.05 + stride, 0), (-0.15 + stride, 0)]),
            p["pants"],
            label,
        )
        pa.fill(
            pa.poly([(0.02, h * 0.5), (0.1, h * 0.5), (0.15 - stride, 0), (0.05 - stride, 0)]),
            p["pants"],
            label,
        )
        base = h * 0.48
    else:
        pa.fill(
            pa.box(-0.2, h * 0.25, -0.08, h * 0.55) | pa.box(0.08, h * 0.25, 0.2, h * 0.55),
            p["pants"],
            label,
        )
        base = h * 0.5
    top = h - 2 * head
    pa.fill(
        pa.poly([(-0.19, top - 0.02), (0.19, top - 0.02), (0.15, base), (-0.15, base)]),
        p["shirt"],
        label,
    )
    pa.fill(
        pa.poly(
            [(-0.22, top - 0.04), (-0.17, top - 0.04), (-0.2, base + 0.05), (-0.26, base + 0.05)]
        )
        | pa.poly(
            [(0.17, top - 0.04), (0.22, top - 0.04), (0.26, base + 0.05), (0.2, base + 0.05)]
        ),
        p["shirt"] * 0.85,
        label,
    )
    pa.fill(pa.box(-0.04, top - 0.05, 0.04, top + 0.02), p["skin"], label)
    pa.fill(pa.ellipse(0, h - head, head * 0.85, head), p["skin"], label)
    pa.fill(pa.ellipse(0, h - head * 0.6, head * 0.9, head * 0.55), p["color"], label)  # hair


def _draw_person(rng, cam: Camera, canvas: Canvas, t: Thing) -> None:
    pa = Painter(rng, cam, canvas, t, top=t.params["height"], half_w=0.35)
    _draw_person_body(pa, t.params, Cls.PERSON, seated=False)


def _draw_rider(rng, cam: Camera, canvas: Canvas, t: Thing) -> None:
    p = dict(t.params)
    p["height"] = p["height"] * 1.05
    pa = Painter(rng, cam, canvas, t, top=p["height"] + 0.2, half_w=0.45)
    if t.kind == "cyclist":
        bike = pa.ellipse(0, 0.34, 0.035, 0.34) | pa.box(-0.02, 0.3, 0.02, 0.95)
        bike |= pa.box(-0.3, 0.95, 0.3, 1.0)
        pa.fill(bike, (0.12, 0.12, 0.14), Cls.BICYCLE, 0.1)
    else:
        moto = pa.ellipse(0, 0.3, 0.09, 0.3) | pa.poly(
            [(-0.3, 0.45), (0.3, 0.45), (0.22, 0.95), (-0.22, 0.95)]
        )
        moto |= pa.box(-0.42, 1.0, 0.42, 1.06)
        pa.fill(moto, p["color"], Cls.MOTORCYCLE, 0.15)
        pa.fill(pa.box(-0.08, 0.75, 0.08, 0.83), (0.75, 0.05, 0.05), Cls.MOTORCYCLE, 0.0)
    _draw_person_body(pa, p, Cls.RIDER, seated=True)


def _draw_pole(rng, cam: Camera, canvas: Canvas, t: Thing) -> None:
    p = t.params
    h, w = p["height"], p["width"]
    pa = Painter(rng, cam, canvas, t, top=h + 0.5, half_w=2.0)
    pa.fill(pa.box(-w / 2, 0, w / 2, h), p["color"], Cls.POLE, 0.1)
    toward_road = -p["side"]
    if p["attach"] == "lamp":
        arm = pa.box(min(0, toward_road * 1.6), h - 0.08, max(0, toward_road * 1.6), h)
        pa.fill(arm, p["color"], Cls.POLE, 0.1)
        lx = toward_road * 1.6
        pa.fill(pa.box(lx - 0.3, h - 0.2, lx + 0.3, h - 0.05), (0.85, 0.85, 0.75), Cls.POLE, 0.0)
    elif p["attach"] == "light":
        top = h - 0.1
        pa.fill(pa.box(-0.2, top - 1.0, 0.2, top), (0.12, 0.12, 0.1), Cls.TRAFFIC_LIGHT, 0.1)
        colors = [(0.9, 0.1, 0.05), (0.95, 0.65, 0.05), (0.1, 0.85, 0.3)]
        for k, c in enumerate(colors):
            lamp = pa.ellipse(0, top - 0.18 - 0.32 * k, 0.11, 0.11)
            on = k == p["lit"]
            pa.fill(lamp, c if on else np.asarray(c) * 0.25, Cls.TRAFFIC_LIGHT, 0.0)
    elif p["attach"] == "sign":
        c = min(h - 0.4, 2.8)
        shape = p["sign"]
        r = 0.35
        if shape == "circle":
            pa.fill(pa.ellipse(0, c, r, r), (0.8, 0.1, 0.1), Cls.TRAFFIC_SIGN, 0.05)
            pa.fill(
                pa.ellipse(0, c, r * 0.72, r * 0.72), (0.95, 0.95, 0.95), Cls.TRAFFIC_SIGN, 0.05
            )
        elif shape == "triangle":
            pa.fill(
                pa.poly([(-r, c - r * 0.7), (r, c - r * 0.7), (0, c + r)]),
                (0.85, 0.1, 0.1),
                Cls.TRAFFIC_SIGN,
                0.05,
            )
            pa.fill(
                pa.poly([(-r * 0.6, c - r * 0.45), (r * 0.6, c - r * 0.45), (0, c + r * 0.55)]),
                (0.95, 0.95, 0.92),
                Cls.TRAFFIC_SIGN,
                0.05,
            )
        elif shape == "square":
            pa.fill(pa.box(-r, c - r, r, c + r), (0.1, 0.3, 0.75), Cls.TRAFFIC_SIGN, 0.05)
            pa.fill(
                pa.box(-r * 0.2, c - r * 0.6, r * 0.2, c + r * 0.6),
                (0.95, 0.95, 0.95),
                Cls.TRAFFIC_SIGN,
                0.0,
            )
        else:
            pa.fill(
                pa.poly([(0, c - r), (r, c), (0, c + r), (-r, c)]),
                (0.95, 0.8, 0.1),
                Cls.TRAFFIC_SIGN,
                0.05,
            )


def _draw_tree(rng, cam: Camera, canvas: Canvas, t: Thing) -> None:
    p = t.params
    r, crown = p["radius"], p["crown"]
    pa = Painter(rng, cam, canvas, t, top=crown + r * 1.3, half_w=r * 2.0)
    pa.fill(pa.box(-p["trunk"] / 2, 0, p["trunk"] / 2, crown), (0.3, 0.22, 0.15), Cls.VEGETATION)
    lr = np.random.default_rng(p["seed"])
    canopy = pa.ellipse(0, crown, r, r * 0.9)
    for _ in range(int(lr.integers(2, 6))):
        canopy |= pa.ellipse(
            lr.uniform(-r, r),
            crown + lr.uniform(-0.4, 0.8) * r,
            r * lr.uniform(0.5, 0.8),
            r * lr.uniform(0.5, 0.8),
        )
    leaves = tx.value_noise(rng, pa.st.h, pa.st.w, cell=max(2.0, pa.s * 0.25), octaves=2)
    rgb = tx.tint(p["color"], leaves, 0.5, chroma=0.3) * pa.shade[..., None]
    canvas.paint(pa.st.y0, pa.st.x0, canopy, rgb, Cls.VEGETATION, t.z - 0.3)


def _draw_clutter(rng, cam: Camera, canvas: Canvas, t: Thing) -> None:
    p = t.params
    pa = Painter(rng, cam, canvas, t, top=p["height"], half_w=p["width"])
    hw = p["width"] / 2
    pa.fill(pa.box(-hw, 0, hw, p["height"]), p["color"], VOID, 0.15)
    pa.fill(pa.box(-hw - 0.04, p["height"] - 0.08, hw + 0.04, p["height"]), p["color"] * 0.6, VOID)
