"""Image <-> network input for both views (numpy only: training and the adapter share it).

A radiograph goes in as bone-bright pixels of any size and pixel spacing. It is normalised by its
own percentiles (so 12-bit DICOM, 8-bit JPEG and a MONOCHROME1 film read the same), then
letterboxed: scaled so its longer physical side fills the network's square input, anchored at
the top-left, the rest zero. ``Letterbox`` remembers the placement so predicted maps go back
onto the radiograph's own pixel grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def normalise(pixels: np.ndarray) -> np.ndarray:
    """Bone-bright float32 in about [0, 1]: the 1st..99th percentile range of the image."""
    arr = np.asarray(pixels, np.float32)
    lo, hi = np.percentile(arr[:: max(1, arr.shape[0] // 256), :: max(1, arr.shape[1] // 256)],
                           (1.0, 99.0))  # fmt: skip
    return np.clip((arr - lo) / max(float(hi - lo), 1e-6), -0.5, 1.5)


def _axis_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The resampling of one axis written as a (n_out, n_in) matrix: the definition ``resize``
    computes faster and is tested against. A box average over f = n_in // n_out pixels
    (anti-aliasing, so a 640-row film and a 320-row phantom reach the network alike), then
    linear interpolation with pixel centres aligned (as align_corners=False)."""
    f = max(1, n_in // n_out)
    m = n_in // f
    box = np.zeros((m, n_in), np.float32)
    box[np.arange(m).repeat(f), np.arange(m * f)] = 1.0 / f
    x = np.clip((np.arange(n_out, dtype=np.float64) + 0.5) * m / n_out - 0.5, 0, m - 1)
    i0 = np.floor(x).astype(np.int64)
    i1 = np.minimum(i0 + 1, m - 1)
    lin = np.zeros((n_out, m), np.float32)
    rows = np.arange(n_out)
    lin[rows, i0] += (1 - (x - i0)).astype(np.float32)  # one (row, col) pair per row each time
    lin[rows, i1] += (x - i0).astype(np.float32)
    return lin @ box


def _box_down(arr: np.ndarray, fr: int, fc: int) -> np.ndarray:
    """Average fr x fc blocks of the last two axes, dropping the remainder (as ``_axis_matrix``)."""
    if fr <= 1 and fc <= 1:
        return arr
    h, w = arr.shape[-2] // fr * fr, arr.shape[-1] // fc * fc
    a = arr[..., :h, :w]
    return a.reshape(*a.shape[:-2], h // fr, fr, w // fc, fc).mean(axis=(-3, -1))


def resize(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample the last two axes to ``shape`` as ``_axis_matrix`` does (box filter when
    shrinking by 2x or more, then linear), by block means and gathers: cheaper than the dense
    matrices on a whole image."""
    arr = np.asarray(arr, np.float32)
    rows, cols = shape
    arr = _box_down(arr, max(1, arr.shape[-2] // rows), max(1, arr.shape[-1] // cols))
    h, w = arr.shape[-2:]

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.clip((np.arange(n_out, dtype=np.float64) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        i0 = np.floor(x).astype(np.int64)
        return i0, np.minimum(i0 + 1, n_in - 1), (x - i0).astype(np.float32)

    r0, r1, wr = axis(h, rows)
    c0, c1, wc = axis(w, cols)
    top = arr[..., r0, :] * (1 - wr)[:, None] + arr[..., r1, :] * wr[:, None]
    return top[..., c0] * (1 - wc) + top[..., c1] * wc


@dataclass(frozen=True)
class Letterbox:
    """Where a (rows, cols) radiograph sits in the size x size network input."""

    rows: int
    cols: int
    size: int
    used_rows: int  # input rows covered by the image (from the top)
    used_cols: int

    @classmethod
    def fit(cls, rows: int, cols: int, size: int, spacing: tuple[float, float] = (1.0, 1.0)):
        """The placement for an image of ``rows`` x ``cols`` pixels of (row, col) ``spacing`` mm."""
        h_mm, w_mm = rows * spacing[0], cols * spacing[1]
        scale = size / max(h_mm, w_mm)
        used_r = min(size, max(1, math.floor(h_mm * scale + 0.5)))
        used_c = min(size, max(1, math.floor(w_mm * scale + 0.5)))
        return cls(rows, cols, size, used_r, used_c)

    def to_input(self, image: np.ndarray) -> np.ndarray:
        """(..., rows, cols) -> (..., size, size), zero outside the image."""
        out = np.zeros((*image.shape[:-2], self.size, self.size), np.float32)
        out[..., : self.used_rows, : self.used_cols] = resize(
            image, (self.used_rows, self.used_cols)
        )
        return out

    def to_image(self, maps: np.ndarray) -> np.ndarray:
        """(..., size, size) -> (..., rows, cols): the image's part, back at its own size."""
        part = np.asarray(maps, np.float32)[..., : self.used_rows, : self.used_cols]
        return resize(part, (self.rows, self.cols))


def network_input(
    pixels: np.ndarray, size: int, spacing=(1.0, 1.0)
) -> tuple[np.ndarray, Letterbox]:
    """A bone-bright radiograph -> (size, size) float32 network input and its placement."""
    box = Letterbox.fit(*pixels.shape[-2:], size, spacing)
    return box.to_input(normalise(pixels)), box


def _linear_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weight of linear interpolation along one axis (centres aligned)."""
    x = np.clip((np.arange(n_out, dtype=np.float64) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    i0 = np.floor(x).astype(np.int64)
    return i0, np.minimum(i0 + 1, n_in - 1), (x - i0).astype(np.float32)


def masks_to_image(probs: np.ndarray, box: Letterbox, threshold: float = 0.5) -> np.ndarray:
    """(K, size, size) probabilities -> (K, rows, cols) bool masks on the radiograph's grid:
    the probabilities resampled as in ``to_image``, then thresholded. Each map is interpolated
    only over the output pixels whose interpolation reaches an input pixel at or above the
    threshold (a structure covers a small part of the film); elsewhere the result is certainly
    below it (a weighted mean of values below the threshold).
    """
    if box.used_rows > box.rows or box.used_cols > box.cols:  # shrinking: box filter needed
        return box.to_image(probs) >= threshold
    part = np.asarray(probs, np.float32)[:, : box.used_rows, : box.used_cols]
    r0, r1, wr = _linear_axis(box.used_rows, box.rows)
    c0, c1, wc = _linear_axis(box.used_cols, box.cols)
    out = np.zeros((len(part), box.rows, box.cols), bool)
    for k, p in enumerate(part):
        hot = p >= threshold
        if not hot.any():
            continue
        rr, cc = np.nonzero(hot.any(1))[0], np.nonzero(hot.any(0))[0]
        o = np.nonzero((r1 >= rr[0]) & (r0 <= rr[-1]))[0]
        q = np.nonzero((c1 >= cc[0]) & (c0 <= cc[-1]))[0]
        a, b, u, v = o[0], o[-1] + 1, q[0], q[-1] + 1
        w = wr[a:b, None]
        top = p[r0[a:b]] * (1 - w) + p[r1[a:b]] * w
        block = top[:, c0[u:v]] * (1 - wc[u:v]) + top[:, c1[u:v]] * wc[u:v]
        out[k, a:b, u:v] = block >= threshold
    return out
