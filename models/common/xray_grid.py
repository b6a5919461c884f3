"""The pixel grid of a 2-D phantom, and masks drawn on it from outlines in millimetres.

A ``Grid`` maps millimetres (x to the right along columns, y downward along rows, origin at the
centre of pixel (0, 0)) to pixels; the mask operations here (rasterise, grow, shrink, shift,
blur) take their sizes in millimetres too, so the same phantom draws alike at any pixel size.
Most work only on a shape's bounding box (``bbox``): phantoms draw dozens of small shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage


@dataclass(frozen=True)
class Grid:
    """Pixel grid of a 2-D image: ``rows`` x ``cols`` pixels of ``row_mm`` x ``col_mm``."""

    rows: int
    cols: int
    row_mm: float
    col_mm: float

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def width_mm(self) -> float:
        return self.cols * self.col_mm

    @property
    def height_mm(self) -> float:
        return self.rows * self.row_mm

    def to_px(self, pts_mm: np.ndarray) -> np.ndarray:
        """(N, 2) (x, y) mm -> (N, 2) (column, row) fractional pixel indices."""
        pts = np.asarray(pts_mm, dtype=float).reshape(-1, 2)
        return np.stack([pts[:, 0] / self.col_mm, pts[:, 1] / self.row_mm], axis=1)

    def mm_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """(X, Y) mm coordinates of every pixel centre, each of shape (rows, cols)."""
        x = np.arange(self.cols, dtype=np.float32) * self.col_mm
        y = np.arange(self.rows, dtype=np.float32) * self.row_mm
        return np.meshgrid(x, y)

    def mm_to_px_len(self, length_mm: float) -> float:
        return length_mm / min(self.row_mm, self.col_mm)


# ---- rasterising -----------------------------------------------------------------------


def polygon_mask(grid: Grid, outline_mm: np.ndarray, supersample: int = 2) -> np.ndarray:
    """Boolean mask of a closed outline (mm), drawn with PIL at ``supersample`` x resolution."""
    return polygon_coverage(grid, outline_mm, supersample) >= 0.5


def polygon_coverage(grid: Grid, outline_mm: np.ndarray, supersample: int = 2) -> np.ndarray:
    """Fraction (0..1) of each pixel covered by the closed outline: anti-aliased edges."""
    ss = supersample
    out = np.zeros(grid.shape, dtype=np.float32)
    px = grid.to_px(outline_mm) + 0.5  # PIL puts pixel centres at +0.5
    c0, r0 = np.maximum(np.floor(px.min(axis=0)).astype(int) - 1, 0)
    c1 = min(int(np.ceil(px[:, 0].max())) + 1, grid.cols)
    r1 = min(int(np.ceil(px[:, 1].max())) + 1, grid.rows)
    if c1 <= c0 or r1 <= r0:
        return out
    # Rasterise only the outline's bounding box: phantoms draw dozens of small shapes.
    img = Image.new("L", ((c1 - c0) * ss, (r1 - r0) * ss), 0)
    local = (px - [c0, r0]) * ss
    ImageDraw.Draw(img).polygon([tuple(p) for p in local], fill=255)
    a = np.asarray(img, dtype=np.float32) / 255.0
    if ss > 1:
        a = a.reshape(r1 - r0, ss, c1 - c0, ss).mean(axis=(1, 3))
    out[r0:r1, c0:c1] = a
    return out


def polyline_mask(grid: Grid, pts_mm: np.ndarray, width_mm: float) -> np.ndarray:
    """Boolean mask of a polyline ``width_mm`` wide."""
    img = Image.new("L", (grid.cols, grid.rows), 0)
    px = grid.to_px(pts_mm) + 0.5
    w = max(1, int(round(grid.mm_to_px_len(width_mm))))
    ImageDraw.Draw(img).line([tuple(p) for p in px], fill=255, width=w, joint="curve")
    return np.asarray(img) > 0


def blur_local(arr: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of a mostly-zero image, computed only around its non-zero part."""
    box = bbox(arr != 0, pad=int(np.ceil(3 * sigma_px)) + 1)
    out = np.zeros(arr.shape, dtype=np.float32)
    if box is not None:
        out[box] = ndimage.gaussian_filter(arr[box].astype(np.float32), sigma_px)
    return out


def erode_mm(mask: np.ndarray, grid: Grid, mm: float) -> np.ndarray:
    box = bbox(mask, pad=2)
    out = np.zeros_like(mask, dtype=bool)
    if box is None:
        return out
    d = ndimage.distance_transform_edt(mask[box], sampling=(grid.row_mm, grid.col_mm))
    out[box] = d > mm
    return out


def dilate_mm(mask: np.ndarray, grid: Grid, mm: float) -> np.ndarray:
    """Grow a mask by ``mm`` millimetres (Euclidean)."""
    if mm <= 0:
        return mask.copy()
    d = ndimage.distance_transform_edt(~mask, sampling=(grid.row_mm, grid.col_mm))
    return d <= mm


def bbox(mask: np.ndarray, pad: int = 0) -> tuple[slice, slice] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, mask.shape[0])
    c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, mask.shape[1])
    return (slice(r0, r1), slice(c0, c1))


def shift_mm(arr: np.ndarray, grid: Grid, dx_mm: float, dy_mm: float, order: int = 1) -> np.ndarray:
    """Translate an image by (dx, dy) mm (fragment displacement); zero fill."""
    return ndimage.shift(
        arr, (dy_mm / grid.row_mm, dx_mm / grid.col_mm), order=order, mode="constant", cval=0
    )
