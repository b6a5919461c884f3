"""A view as a picture (RGB, row 0 at the top) for reports and PNG outputs, without Qt or VTK.

The pixels come from ``compose_view``, the function the viewer draws with, on the same planes
(``plane_for`` / ``native_plane``), so a layer looks the same on paper as on screen. Only the
vector primitives (box outlines, landmark crosses, captions), which the viewer hands to VTK, are
drawn here with Pillow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.findings.types import Overlay
from app.study.geometry import ImageVolume
from app.study.model import CT_PRESETS, Series
from app.viewstate.compose import ColorBar, ViewImage, compose_view
from app.viewstate.layers import Layer, layer_from_overlay
from app.viewstate.planes import ORIENTATIONS, PlaneGrid, native_plane, plane_for
from app.viewstate.windowing import WindowLevel

PLANES = (*ORIENTATIONS, "native")
# Caption text in picture pixels: a fixed share of a small picture, never more than this on a
# big one (text has a size bounded in pixels, not scaled with the image; pictures are at most
# ``max_size`` pixels anyway)
CAPTION_PX = (10, 18)


@dataclass
class Picture:
    rgb: np.ndarray  # (rows, cols, 3) uint8, row 0 at the top
    plane: PlaneGrid  # the grid the pixels lie on (decimated for big images)
    depth: float  # the plane's depth (mm along its normal)
    colorbar: ColorBar | None = None

    def pixel_of(self, xyz) -> tuple[float, float]:
        """(column, row) of a world point in ``rgb`` (row 0 at the top)."""
        row, col, _ = self.plane.to_plane(np.asarray(xyz, dtype=float))
        return float(col), float(self.plane.shape[0] - 1 - row)


def picture_plane(volume: ImageVolume, plane: str, max_size: int = 1024) -> PlaneGrid:
    """The viewer's plane of ``volume`` (its only one, ``native``, for a radiograph), sampled
    every n-th pixel so that neither side exceeds ``max_size``."""
    if plane not in PLANES:
        raise ValueError(f"unknown plane '{plane}'; expected one of {', '.join(PLANES)}")
    grid = native_plane(volume) if plane == "native" or volume.is_2d else plane_for(volume, plane)
    grid = square_pixels(grid)
    return grid.decimated(max(1, math.ceil(max(grid.shape) / max_size)))


def square_pixels(grid: PlaneGrid) -> PlaneGrid:
    """The same plane at its finer spacing along both axes: a picture has square pixels, where
    the viewer stretches a sagittal slice of 2 mm x 1 mm pixels through VTK's image spacing."""
    sr, sc = grid.spacing
    step = min(sr, sc)
    if abs(sr - sc) <= 1e-6 * step:
        return grid
    rows, cols = grid.shape
    return replace(
        grid,
        spacing=(step, step),
        shape=(int(round((rows - 1) * sr / step)) + 1, int(round((cols - 1) * sc / step)) + 1),
    )


def report_window(series: Series, window: tuple[float, float] | None = None) -> WindowLevel:
    """The given (center, width), else the stored window, else the bone preset for a CT (a bone
    viewer's report), else the series' percentile window; inverted for MONOCHROME1."""
    if window is None:
        if series.window is not None:
            window = series.window
        elif (series.modality or "").upper() == "CT":
            window = CT_PRESETS["Bone"]
        else:
            window = series.default_window()
    return WindowLevel(window[0], window[1], invert=bool(series.invert))


def render_layers(
    base: ImageVolume,
    window: WindowLevel,
    plane: PlaneGrid,
    world_point,
    layers: Sequence[Layer],
) -> Picture:
    """Compose ``layers`` over ``base`` on ``plane`` through ``world_point`` and draw the
    primitives; the depth snaps to a slice as the viewer's crosshair does."""
    depth = plane.snap_depth(plane.depth_of(np.asarray(world_point, dtype=float)))
    view = compose_view(base, window, plane, depth, list(layers))
    rgb = draw_primitives(view, plane)
    return Picture(rgb, plane, depth, view.colorbar)


def render_overlays(
    series: Series,
    overlays: Sequence[Overlay],
    plane: str,
    world_point,
    window: tuple[float, float] | None = None,
    max_size: int = 1024,
) -> Picture:
    """``series`` on ``plane`` through ``world_point`` with its visible ``overlays``, each as the
    viewer's layer of it (same opacity rules, colours and drawing order)."""
    layers = [layer_from_overlay(ov, reference=series.image) for ov in overlays if ov.visible]
    grid = picture_plane(series.image, plane, max_size)
    return render_layers(series.image, report_window(series, window), grid, world_point, layers)


def font_of_size(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def draw_primitives(view: ViewImage, plane: PlaneGrid) -> np.ndarray:
    """The composed pixels flipped to row 0 at the top, with lines and captions drawn on them
    (plane millimetres -> pixels through the plane's spacing, as the viewer's camera does)."""
    rgb = np.ascontiguousarray(view.rgb[::-1])
    if not view.lines and not view.captions:
        return rgb
    rows, cols = rgb.shape[:2]
    sr, sc = plane.spacing

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        return x / sc, rows - 1 - y / sr

    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    width = max(1, round(max(rows, cols) / 300))
    for line in view.lines:
        points = [to_pixel(float(x), float(y)) for x, y in line.points]
        if line.closed:
            points.append(points[0])
        draw.line(points, fill=tuple(int(c) for c in line.color), width=width)
    font = font_of_size(min(max(CAPTION_PX[0], round(max(rows, cols) / 45)), CAPTION_PX[1]))
    placed: list[tuple[float, float, float, float]] = []
    for cap in view.captions:
        col, row = to_pixel(cap.x, cap.y)
        # the viewer anchors a caption at its bottom-left corner; on paper it must also stay
        # inside the picture (VTK may draw past the image's edge) and off the captions before it
        left, top, right, bottom = draw.textbbox((0, 0), cap.text, font=font)
        w, h = right - left, bottom - top + 2
        x = min(max(col, 0.0), max(cols - w - 1.0, 0.0))
        y = min(max(row - h, 0.0), max(rows - h - 1.0, 0.0))
        for _ in range(len(placed)):
            hit = next((b for b in placed if _overlap((x, y, x + w, y + h), b)), None)
            if hit is None:
                break
            # stack upwards, away from the box the caption labels; downwards at the top edge
            y = hit[1] - h - 1 if hit[1] - h - 1 >= 0 else hit[3] + 1
        placed.append((x, y, x + w, y + h))
        draw.text((x - left, y - top), cap.text, fill=tuple(int(c) for c in cap.color), font=font)
    return np.asarray(image, dtype=np.uint8).copy()


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
