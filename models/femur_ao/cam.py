"""Class activation maps -> input-space maps and boxes (numpy + scipy; the paper's procedure).

Boxes (paper section III, after Wang et al.): the map is resized bilinearly to the input, its
intensities normalised to [0, 255], the values between 60 and 180 kept, and one box drawn around
each connected region that is left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

LOW, HIGH = 60.0, 180.0


@dataclass
class CamBox:
    u0: float
    v0: float
    u1: float
    v1: float
    score: float  # mean normalised activation (0..1) inside the region

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.u0, self.v0, self.u1, self.v1)


def sample_cams(cam: np.ndarray, theta: np.ndarray, u: np.ndarray, v: np.ndarray, input_size: int):
    """Bilinear values of (K, S, S) ROI maps at input-grid points (u = column, v = row, in input
    pixels with pixel k spanning [k, k + 1]); NaN outside the STN's region of interest.

    ``theta`` (2, 3) maps ROI coordinates in [-1, 1] to input coordinates (align_corners=False),
    exactly as the exported graph samples the ROI.
    """
    stack = np.asarray(cam, np.float32)
    s = stack.shape[-1]
    a, t = np.asarray(theta, np.float64)[:, :2], np.asarray(theta, np.float64)[:, 2]
    xy = np.stack(
        [np.ravel(u) * 2.0 / input_size - 1 - t[0], np.ravel(v) * 2.0 / input_size - 1 - t[1]]
    )
    shape = (stack.shape[0], *np.shape(u))
    try:
        roi = np.linalg.solve(a, xy)
    except np.linalg.LinAlgError:
        return np.full(shape, np.nan, np.float32)
    # ROI normalised coords -> CAM cell coordinates (cell centres at (2c + 1) / S - 1).
    ci = np.clip(((roi[0] + 1) * s - 1) / 2, 0, s - 1)
    cj = np.clip(((roi[1] + 1) * s - 1) / 2, 0, s - 1)
    i0 = np.minimum(np.floor(ci).astype(np.int64), max(s - 2, 0))
    j0 = np.minimum(np.floor(cj).astype(np.int64), max(s - 2, 0))
    fi, fj = (ci - i0).astype(np.float32), (cj - j0).astype(np.float32)
    i1, j1 = np.minimum(i0 + 1, s - 1), np.minimum(j0 + 1, s - 1)
    out = (
        stack[:, j0, i0] * ((1 - fi) * (1 - fj))
        + stack[:, j0, i1] * (fi * (1 - fj))
        + stack[:, j1, i0] * ((1 - fi) * fj)
        + stack[:, j1, i1] * (fi * fj)
    )
    inside = (np.abs(roi[0]) <= 1) & (np.abs(roi[1]) <= 1)
    out[:, ~inside] = np.nan
    return out.reshape(shape)


def cam_to_input(cam: np.ndarray, theta: np.ndarray, input_size: int) -> np.ndarray:
    """Bilinear resize of (S, S) maps computed on the STN's region of interest onto the
    (input_size, input_size) input grid (pixel centres); NaN outside the region.
    ``cam`` may be one map (S, S) or a stack (K, S, S) sharing one warp."""
    cam = np.asarray(cam, np.float32)
    stack = cam if cam.ndim == 3 else cam[None]
    centres = np.arange(input_size) + 0.5
    u, v = np.meshgrid(centres, centres)
    out = sample_cams(stack, theta, u, v, input_size)
    return out if cam.ndim == 3 else out[0]


def resize_bilinear(cam: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize with cell-centre alignment (no warp): the paper's first step."""
    s0, s1 = cam.shape
    j = ((np.arange(shape[0]) + 0.5) * s0 / shape[0]) - 0.5
    i = ((np.arange(shape[1]) + 0.5) * s1 / shape[1]) - 0.5
    jj, ii = np.meshgrid(j, i, indexing="ij")
    return ndimage.map_coordinates(np.asarray(cam, np.float64), [jj, ii], order=1, mode="nearest")


def normalise_255(m: np.ndarray) -> np.ndarray:
    """Min-max to [0, 255], NaN (outside the ROI) kept as NaN."""
    lo, hi = np.nanmin(m), np.nanmax(m)
    if not np.isfinite(lo) or hi <= lo:
        return np.where(np.isnan(m), np.nan, 0.0)
    return (m - lo) / (hi - lo) * 255.0


def boxes_from_map(
    m: np.ndarray, low: float = LOW, high: float = HIGH, min_area: int = 4
) -> list[CamBox]:
    """One box per connected region of ``low <= normalised value <= high``.

    ``m`` is already at input resolution (after ``cam_to_input`` or ``resize_bilinear``).
    Boxes are (u0, v0, u1, v1) pixel edges; regions smaller than ``min_area`` pixels (single-
    pixel slivers of the threshold band) are dropped.
    """
    norm = normalise_255(m)
    keep = np.nan_to_num(norm, nan=-1.0)
    mask = (keep >= low) & (keep <= high)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    boxes = []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        region = labels[sl] == k
        if region.sum() < min_area:
            continue
        score = float(np.nanmean(norm[sl][region]) / 255.0)
        boxes.append(
            CamBox(
                float(sl[1].start), float(sl[0].start), float(sl[1].stop), float(sl[0].stop), score
            )
        )
    boxes.sort(key=lambda b: -b.score)
    return boxes


def to_unit(m: np.ndarray) -> np.ndarray:
    """A map scaled to [0, 1] for display (NaN -> 0)."""
    return np.nan_to_num(normalise_255(m) / 255.0, nan=0.0).astype(np.float32)
