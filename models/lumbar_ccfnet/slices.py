"""One sagittal slice in the orientation the network was trained on, numpy only.

CCF-Net sees a sagittal slice with the patient's front on the left and the head at the top
(columns run toward posterior, rows toward the feet: DICOM ImageOrientationPatient 0\\1\\0\\0\\0\\-1,
the usual sagittal acquisition). Series stored otherwise (rows toward the head, columns toward
anterior, or transposed) are flipped or transposed here, and points are mapped back to the
series' own (i, j) indices, so landmarks land where they belong in LPS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.study.geometry import ImageVolume

SAGITTAL_MIN_COS = 0.7  # |slice normal . L-R axis| above this counts as sagittal (< 45 deg off)


def slice_normal(image: ImageVolume) -> np.ndarray:
    d = np.asarray(image.direction, np.float64)
    n = np.cross(d[:, 0], d[:, 1])
    return n / max(float(np.linalg.norm(n)), 1e-12)


def plane_name(image: ImageVolume) -> str:
    """'sagittal', 'coronal', 'axial' or 'oblique' from the slice normal in LPS."""
    n = np.abs(slice_normal(image))
    axis = int(np.argmax(n))
    if n[axis] < SAGITTAL_MIN_COS:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


@dataclass(frozen=True)
class SagittalSlice:
    """Pixels (rows, cols) of slice ``k`` in canonical orientation and the way back."""

    pixels: np.ndarray
    spacing: tuple[float, float]  # (row, column) mm of the canonical pixels
    k: int
    transposed: bool  # canonical rows were the series' columns
    flip_rows: bool
    flip_cols: bool
    source_shape: tuple[int, int]  # (rows, cols) of the series slice

    def to_index(self, pts: np.ndarray) -> np.ndarray:
        """Canonical (x, y) = (column, row) -> the series' (i, j) = (column, row)."""
        p = np.array(pts, np.float64, copy=True)
        h, w = self.pixels.shape
        if self.flip_cols:
            p[..., 0] = (w - 1) - p[..., 0]
        if self.flip_rows:
            p[..., 1] = (h - 1) - p[..., 1]
        return p[..., ::-1].copy() if self.transposed else p

    def from_index(self, ij: np.ndarray) -> np.ndarray:
        """The series' (i, j) -> canonical (x, y)."""
        p = np.array(ij, np.float64, copy=True)
        if self.transposed:
            p = p[..., ::-1].copy()
        h, w = self.pixels.shape
        if self.flip_cols:
            p[..., 0] = (w - 1) - p[..., 0]
        if self.flip_rows:
            p[..., 1] = (h - 1) - p[..., 1]
        return p


def sagittal_slice(image: ImageVolume, k: int) -> SagittalSlice:
    arr = np.asarray(image.array[k], np.float32)
    if arr.ndim == 3:  # colour: luminance
        arr = arr[..., :3].mean(-1)
    d = np.asarray(image.direction, np.float64)
    di, dj = d[:, 0], d[:, 1]  # LPS directions of a column step and a row step
    _, dr, dc = image.spacing
    transposed = abs(di[2]) > abs(dj[2])  # columns run head-feet: swap so rows do
    if transposed:
        arr, di, dj, dr, dc = arr.T, dj, di, dc, dr
    flip_rows = dj[2] > 0  # rows should run toward the feet (LPS z decreasing)
    flip_cols = di[1] < 0  # columns should run toward posterior (LPS y increasing)
    if flip_rows:
        arr = arr[::-1]
    if flip_cols:
        arr = arr[:, ::-1]
    return SagittalSlice(
        np.ascontiguousarray(arr),
        (float(dr), float(dc)),
        int(k),
        bool(transposed),
        bool(flip_rows),
        bool(flip_cols),
        tuple(image.array.shape[1:3]),
    )
