"""Network inputs from a radiograph and a mask, and maps back to the image (numpy only).

Shared by training (``data.py``) and the adapter, so the network sees the same inputs in both.
The image is padded to a square at its bottom and right (pixel (0, 0) stays where it is, so a map
on the square grid maps back to the image by a scale alone), area-resampled to the network's
size and normalised by its own percentiles.
"""

from __future__ import annotations

import numpy as np


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of exact area resampling: output cell k averages input span
    [k * n_in / n_out, (k + 1) * n_in / n_out), counting partly covered pixels by their overlap."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    px = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, px + 1) - np.maximum(lo, px), 0.0, None)
    return (overlap / overlap.sum(1, keepdims=True)).astype(np.float32)


def linear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of linear interpolation between cell centres (edges clamped)."""
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0, n_in - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    t = (pos - i0).astype(np.float32)
    m = np.zeros((n_out, n_in), np.float32)
    m[np.arange(n_out), i0] += 1 - t
    m[np.arange(n_out), i1] += t
    return m


def pad_square(arr: np.ndarray, value: float) -> np.ndarray:
    rows, cols = arr.shape
    side = max(rows, cols)
    out = np.full((side, side), value, np.float32)
    out[:rows, :cols] = arr
    return out


def resize_area(arr: np.ndarray, size: int) -> np.ndarray:
    """Square ``arr`` -> (size, size) by area averaging."""
    n = arr.shape[0]
    if n % size == 0:  # whole blocks: a reshape, no matrix product (BLAS threads stall under load)
        k = n // size
        return arr.astype(np.float32).reshape(size, k, size, k).mean((1, 3))
    m = area_matrix(n, size)
    return m @ arr.astype(np.float32) @ m.T


def normalise(img: np.ndarray) -> np.ndarray:
    """Bone-bright pixels -> [0, 1] between the 1st and 99.5th percentiles."""
    lo, hi = np.percentile(img, (1.0, 99.5))
    return np.clip((img - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0).astype(np.float32)


def image_input(image: np.ndarray, size: int) -> np.ndarray:
    """A bone-bright 2-D radiograph -> (size, size) float32 in [0, 1]."""
    image = np.asarray(image, np.float32)
    return normalise(resize_area(pad_square(image, float(image.min())), size))


def mask_input(mask: np.ndarray, size: int) -> np.ndarray:
    """A binary mask on the image grid -> (size, size) fraction of each cell inside the mask."""
    return np.clip(resize_area(pad_square((np.asarray(mask) > 0).astype(np.float32), 0.0), size),
                   0.0, 1.0)  # fmt: skip


def _lerp_axis(m: np.ndarray, n_out: int, axis: int, keep: int | None = None) -> np.ndarray:
    """Linear interpolation along ``axis`` onto ``n_out`` cells spanning the same extent (cell
    centres, edges clamped); ``keep`` takes only the first cells. Indexing, not a matrix
    product: BLAS threads stall when the CPU is shared."""
    n_in = m.shape[axis]
    pos = np.clip((np.arange(keep or n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    shape = [1, 1]
    shape[axis] = -1
    t = (pos - i0).astype(np.float32).reshape(shape)
    return np.take(m, i0, axis) * (1 - t) + np.take(m, i1, axis) * t


def to_image_grid(m: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A map on the padded square's (h, w) grid -> (rows, cols) on the image, linearly."""
    side = max(rows, cols)
    m = _lerp_axis(np.asarray(m, np.float32), side, 0, rows)
    return _lerp_axis(m, side, 1, cols)


def upsample(m: np.ndarray, size: int) -> np.ndarray:
    """A square map -> (size, size), linearly (for smoother displayed maps)."""
    return _lerp_axis(_lerp_axis(np.asarray(m, np.float32), size, 0), size, 1)
