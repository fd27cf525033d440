"""Pinhole ground-plane camera and the layered canvas every scene element paints into.

A flat-world pinhole model gives perspective for free: a point on the ground at distance Z lies on
row `horizon + f*cam_h/Z` and an object there is `f/Z` pixels per metre, so sizes, lane markings
and anomaly scales stay consistent with the vanishing point.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .classes import VOID

SKY_DEPTH = 1.0e4


@dataclass(frozen=True)
class Camera:
    width: int
    height: int
    f: float  # focal length in pixels
    horizon: float  # row of the horizon (vanishing point y)
    vx: float  # column of the vanishing point
    cam_h: float  # camera height above the road in metres

    def depth_of_row(self, row: float) -> float:
        return self.f * self.cam_h / max(row - self.horizon, 1e-6)

    def project(self, x: float, z: float, height: float = 0.0) -> tuple[float, float]:
        """Image (column, row) of the point at lateral x, distance z, `height` above ground."""
        return self.vx + self.f * x / z, self.horizon + self.f * (self.cam_h - height) / z

    def scale(self, z: float) -> float:
        """Pixels per metre at distance z."""
        return self.f / z


class Canvas:
    """Image, labels, depth and visible-anomaly mask, painted back to front.

    Painting a class over an anomaly clears the anomaly flag there, so `anomaly` always holds
    exactly the anomaly pixels that remain visible.
    """

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.image = np.zeros((height, width, 3), np.float32)
        self.labels = np.full((height, width), VOID, np.uint8)
        self.depth = np.full((height, width), SKY_DEPTH, np.float32)
        self.anomaly = np.zeros((height, width), bool)

    def paint(
        self,
        y0: int,
        x0: int,
        mask: np.ndarray,
        rgb: np.ndarray,
        label: int,
        depth: float,
        anomaly: bool = False,
    ) -> None:
        """Paint the local boolean `mask` (top-left corner at (y0, x0)) where nothing nearer is.

        Clips at the image border; `depth` is the object's distance used for the z-test.
        """
        h, w = mask.shape
        ya, xa = max(y0, 0), max(x0, 0)
        yb, xb = min(y0 + h, self.height), min(x0 + w, self.width)
        if ya >= yb or xa >= xb:
            return
        sl = (slice(ya, yb), slice(xa, xb))
        # z-test: parts of one object painted later at the same depth win (>=)
        m = mask[ya - y0 : yb - y0, xa - x0 : xb - x0] & (self.depth[sl] >= depth)
        if not m.any():
            return
        if np.ndim(rgb) == 3:
            self.image[sl][m] = rgb[ya - y0 : yb - y0, xa - x0 : xb - x0][m]
        else:
            self.image[sl][m] = np.asarray(rgb, np.float32)
        self.labels[sl][m] = label
        self.depth[sl][m] = depth
        self.anomaly[sl][m] = anomaly

    def darken(self, y0: int, x0: int, weight: np.ndarray, strength: float) -> None:
        """Multiply the image by `1 - strength*weight` (soft shadows; labels unchanged)."""
        h, w = weight.shape
        ya, xa = max(y0, 0), max(x0, 0)
        yb, xb = min(y0 + h, self.height), min(x0 + w, self.width)
        if ya >= yb or xa >= xb:
            return
        wt = weight[ya - y0 : yb - y0, xa - x0 : xb - x0]
        self.image[ya:yb, xa:xb] *= (1.0 - strength * wt)[..., None]


class Stencil:
    """A local raster window for one object: polygons/ellipses in image coordinates become masks."""

    SHIFT = 4  # sub-pixel bits for cv2 drawing

    def __init__(self, x0: float, y0: float, x1: float, y1: float):
        self.x0, self.y0 = int(np.floor(x0)) - 1, int(np.floor(y0)) - 1
        self.w = max(int(np.ceil(x1)) + 2 - self.x0, 1)
        self.h = max(int(np.ceil(y1)) + 2 - self.y0, 1)

    def _pts(self, pts) -> np.ndarray:
        p = (np.asarray(pts, np.float64) - (self.x0, self.y0)) * (1 << self.SHIFT)
        return np.round(p).astype(np.int32).reshape(-1, 1, 2)

    def empty(self) -> np.ndarray:
        return np.zeros((self.h, self.w), np.uint8)

    def polygon(self, pts) -> np.ndarray:
        m = self.empty()
        cv2.fillPoly(m, [self._pts(pts)], 1, cv2.LINE_8, self.SHIFT)
        return m.astype(bool)

    def rect(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        return self.polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, angle: float = 0.0) -> np.ndarray:
        m = self.empty()
        s = 1 << self.SHIFT
        center = (round((cx - self.x0) * s), round((cy - self.y0) * s))
        axes = (max(round(rx * s), 1), max(round(ry * s), 1))
        cv2.ellipse(m, center, axes, angle, 0, 360, 1, -1, cv2.LINE_8, self.SHIFT)
        return m.astype(bool)

    def line(self, p0, p1, thickness: float) -> np.ndarray:
        m = self.empty()
        a, b = self._pts([p0, p1]).reshape(2, 2)
        cv2.line(
            m,
            tuple(int(v) for v in a),
            tuple(int(v) for v in b),
            1,
            max(int(round(thickness)), 1),
            cv2.LINE_8,
            self.SHIFT,
        )
        return m.astype(bool)

    def rows(self) -> np.ndarray:
        """Row coordinate (image space) of every local pixel, for vertical shading."""
        return (np.arange(self.h, dtype=np.float32) + self.y0)[:, None] * np.ones(
            (1, self.w), np.float32
        )
