"""Text on pictures for people: panel titles and the key band under a video frame (the anomaly
colour bar with the threshold marked, and the model's class names in its palette colours).

Every size here follows the frame's height (`TextStyle.for_height`), so the same code is readable
on a 512x256 frame and on a 1080p one. All images are RGB uint8.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pixood_ros.render.overlay import SCALE_RGB
from pixood_ros.tables import fmt

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)
KEY_BACKGROUND = 32  # grey level of the key band


@dataclass(frozen=True)
class TextStyle:
    """Font scale, stroke and line height for one frame height."""

    scale: float
    thickness: int
    line: int  # pixels from one text line to the next

    @classmethod
    def for_height(cls, height: int) -> TextStyle:
        scale = float(np.clip(height / 480, 0.45, 3.0))
        thickness = max(1, round(scale * 1.5))
        (_, text_h), base = cv2.getTextSize("Ag", FONT, scale, thickness)
        return cls(scale, thickness, int((text_h + base) * 1.6) + 2)

    def width(self, text: str) -> int:
        return cv2.getTextSize(text, FONT, self.scale, self.thickness)[0][0]

    def put(self, image: np.ndarray, text: str, x: int, y: int) -> None:
        """`text` with its baseline at row `y`, from column `x`."""
        cv2.putText(image, text, (x, y), FONT, self.scale, WHITE, self.thickness, cv2.LINE_AA)


def draw_title(panel: np.ndarray, title: str, style: TextStyle) -> None:
    """`title` in the panel's top-right corner (the semantic inset is top-left) on a dark box."""
    text_w = style.width(title)
    pad = max(2, style.line // 8)
    x = max(pad, panel.shape[1] - text_w - 2 * pad)
    box = panel[: style.line, max(0, x - pad) : x + text_w + pad]
    box //= 3
    style.put(panel, title, x, style.line - 2 * pad)


def key_band(
    width: int,
    style: TextStyle,
    threshold: float,
    class_names: Sequence[str] | None = None,
    palette: Sequence[Sequence[int]] | None = None,
) -> np.ndarray:
    """RGB band `width` wide: the colour bar of the anomaly scale (0, threshold, 1 marked) and,
    when `class_names` are given, one swatch per class in its palette colour, wrapped in rows."""
    pad = style.line // 3
    bar_w = max(1, min(width - 2 * pad, max(12 * style.line, width // 3)))
    bar = _colour_bar(bar_w, style, threshold)
    entries = _legend_entries(class_names or (), palette or (), style)
    left = bar_w + 3 * pad
    rows = _wrap([entry.shape[1] for entry in entries], width - left - pad)
    legend_h = len(rows) * style.line
    band = np.full((max(bar.shape[0], legend_h) + 2 * pad, width, 3), KEY_BACKGROUND, np.uint8)
    _paste(band, bar, pad, pad)
    for row_index, row in enumerate(rows):
        x = left
        for entry_index in row:
            entry = entries[entry_index]
            y = pad + row_index * style.line
            _paste(band, entry, y, x)
            x += entry.shape[1]
    return band


def _colour_bar(width: int, style: TextStyle, threshold: float) -> np.ndarray:
    """Caption, the 256-level scale stretched to `width` (threshold at its middle, where the
    overlay's colours begin) and the tick labels 0 / threshold / 1."""
    line = style.line
    image = np.full((3 * line, width, 3), KEY_BACKGROUND, np.uint8)
    style.put(image, f"anomaly score: coloured at >= {fmt(threshold, 3)}", 0, line - line // 4)
    strip = cv2.resize(SCALE_RGB[None], (width, line - line // 4), interpolation=cv2.INTER_NEAREST)
    image[line : line + strip.shape[0]] = strip
    middle = width // 2
    image[line - line // 8 : line + strip.shape[0] + line // 8, middle - 1 : middle + 1] = WHITE
    baseline = 3 * line - line // 4
    style.put(image, "0", 0, baseline)
    label = fmt(threshold, 3)
    style.put(image, label, max(0, middle - style.width(label) // 2), baseline)
    style.put(image, "1", width - style.width("1"), baseline)
    return image


def _legend_entries(
    class_names: Sequence[str], palette: Sequence[Sequence[int]], style: TextStyle
) -> list[np.ndarray]:
    """One small image per class: a swatch in its colour and its name."""
    swatch = max(6, style.line * 2 // 3)
    entries = []
    for name, colour in zip(class_names, palette, strict=False):
        entry_w = swatch + style.line // 3 + style.width(name) + style.line // 2
        entry = np.full((style.line, entry_w, 3), KEY_BACKGROUND, np.uint8)
        top = (style.line - swatch) // 2
        entry[top : top + swatch, :swatch] = np.asarray(colour, np.uint8)[:3]
        style.put(entry, name, swatch + style.line // 3, style.line - style.line // 3)
        entries.append(entry)
    return entries


def _wrap(widths: Sequence[int], room: int) -> list[list[int]]:
    """Indices of `widths` in rows no wider than `room` (an entry wider than that gets a row)."""
    rows: list[list[int]] = []
    used = 0
    for index, width in enumerate(widths):
        if not rows or (rows[-1] and used + width > room):
            rows.append([])
            used = 0
        rows[-1].append(index)
        used += width
    return rows


def _paste(image: np.ndarray, part: np.ndarray, y: int, x: int) -> None:
    """`part` into `image` at (y, x), cut at the image's edges (narrow frames)."""
    height = max(0, min(part.shape[0], image.shape[0] - y))
    width = max(0, min(part.shape[1], image.shape[1] - x))
    image[y : y + height, x : x + width] = part[:height, :width]
