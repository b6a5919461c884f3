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


def _box_down(arr: np.ndarray, f: int) -> np.ndarray:
    """Average f x f blocks (the last axes), dropping the remainder: anti-aliasing before a
    bilinear step, so a 640-row film and a 320-row phantom reach the network alike."""
    if f <= 1:
        return arr
    h, w = arr.shape[-2] // f * f, arr.shape[-1] // f * f
    a = arr[..., :h, :w]
    return a.reshape(*a.shape[:-2], h // f, f, w // f, f).mean(axis=(-3, -1))


def resize(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of the last two axes (pixel centres aligned, as align_corners=False);
    downsampling by 2x or more is box-filtered first."""
    arr = np.asarray(arr, np.float32)
    rows, cols = shape
    f = int(min(arr.shape[-2] / rows, arr.shape[-1] / cols))
    arr = _box_down(arr, f)
    h, w = arr.shape[-2:]

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = (np.arange(n_out, dtype=np.float64) + 0.5) * n_in / n_out - 0.5
        x = np.clip(x, 0, n_in - 1)
        i0 = np.floor(x).astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (x - i0).astype(np.float32)

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
