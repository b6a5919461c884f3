"""The coarse-to-fine coding of CCF-Net (paper section 2.2 and 2.5), numpy only.

Shared by training (targets), the adapter and the evaluation (decoding), so what is trained is
exactly what is read back. Points are (x, y) = (column, row) in network-input pixels, with pixel
k's centre at coordinate k. Cell i of a stride-S map covers pixels i*S .. i*S + S - 1, so its
centre is ``t(i) = i*S + (S - 1)/2`` (the paper's t(z) = (z - 0.5) * S for 1-based z, in
pixel-edge coordinates).

- coarse map: H_k(i, j) = exp(-|t(i, j) - p_k|^2 / (2 sigma^2)), scaled so its peak is 1;
- fine maps: F^X_k = (x_k - t(i)) / S and F^Y_k = (y_k - t(j)) / S (the public code's sign:
  decoding adds the offset);
- category map: C_k = 1 everywhere when object k is diseased, else 0;
- decoding: (i, j) = argmax H_k, p_k = t(i, j) + S * F_k(i, j), probability C_k(i, j).

Also the resampling of a slice onto the square network input (numpy bilinear, zero outside).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRIDE = 16
TAU = 0.6  # offsets and categories are trained where H >= tau (paper: Omega_k)


def cell_centres(n_cells: int, stride: int = STRIDE) -> np.ndarray:
    return np.arange(n_cells) * stride + (stride - 1) / 2.0


def encode(
    points: np.ndarray,
    diseased: np.ndarray,
    map_size: int,
    sigma: float,
    stride: int = STRIDE,
) -> dict[str, np.ndarray]:
    """Targets for K objects: ``points`` (K, 2) x, y (NaN: not annotated), ``diseased`` (K,)
    0/1 (negative: unknown). Returns heatmap/offset_x/offset_y/category (K, M, M) and the masks
    ``present`` (K,) and ``class_known`` (K,)."""
    pts = np.asarray(points, np.float64)
    k = len(pts)
    c = cell_centres(map_size, stride)
    gx, gy = np.meshgrid(c, c)  # (row j, column i)
    present = np.all(np.isfinite(pts), axis=1)
    heat = np.zeros((k, map_size, map_size), np.float32)
    offx = np.zeros_like(heat)
    offy = np.zeros_like(heat)
    for n in np.flatnonzero(present):
        x, y = pts[n]
        d2 = (gx - x) ** 2 + (gy - y) ** 2
        h = np.exp(-d2 / (2 * sigma**2))
        heat[n] = h / max(h.max(), 1e-12)  # peak 1, so Omega is never empty
        offx[n] = (x - gx) / stride
        offy[n] = (y - gy) / stride
    lab = np.asarray(diseased, np.float32)
    cat = np.broadcast_to(np.clip(lab, 0, 1)[:, None, None], heat.shape).astype(np.float32)
    return {
        "heatmap": heat,
        "offset_x": offx,
        "offset_y": offy,
        "category": cat,
        "present": present.astype(np.float32),
        "class_known": (present & (lab >= 0)).astype(np.float32),
    }


def decode(
    heatmap: np.ndarray,
    offset_x: np.ndarray,
    offset_y: np.ndarray,
    category: np.ndarray,
    stride: int = STRIDE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per object (K, M, M maps, category as probabilities): points (K, 2) x, y in input pixels,
    disease probability (K,), peak heat (K,)."""
    k, m, w = heatmap.shape
    flat = heatmap.reshape(k, -1).argmax(axis=1)
    j, i = np.unravel_index(flat, (m, w))
    idx = np.arange(k)
    x = cell_centres(w, stride)[i] + stride * offset_x[idx, j, i]
    y = cell_centres(m, stride)[j] + stride * offset_y[idx, j, i]
    return (
        np.stack([x, y], axis=1).astype(np.float64),
        category[idx, j, i].astype(np.float64),
        heatmap[idx, j, i].astype(np.float64),
    )


@dataclass(frozen=True)
class InputFrame:
    """The square network input over a slice: slice (col, row) = a * (x, y) + b, per axis.

    The input covers the larger of the slice's two fields of view (mm), centred, so pixels stay
    square in mm whatever the slice's shape and spacing; ``mm_per_px`` is its pixel size.
    """

    size: int
    a_col: float
    b_col: float
    a_row: float
    b_row: float
    mm_per_px: float

    @classmethod
    def fit(cls, shape: tuple[int, int], spacing: tuple[float, float], size: int) -> InputFrame:
        rows, cols = shape
        dr, dc = spacing
        side = max(rows * dr, cols * dc)
        s = side / size
        centre = (size - 1) / 2.0
        a_c, a_r = s / dc, s / dr
        return cls(
            size, a_c, (cols - 1) / 2.0 - a_c * centre, a_r, (rows - 1) / 2.0 - a_r * centre, s
        )

    def to_slice(self, pts: np.ndarray) -> np.ndarray:
        p = np.asarray(pts, np.float64)
        return np.stack(
            [self.a_col * p[..., 0] + self.b_col, self.a_row * p[..., 1] + self.b_row], -1
        )

    def to_input(self, pts: np.ndarray) -> np.ndarray:
        p = np.asarray(pts, np.float64)
        return np.stack(
            [(p[..., 0] - self.b_col) / self.a_col, (p[..., 1] - self.b_row) / self.a_row], -1
        )

    def resample(self, image: np.ndarray) -> np.ndarray:
        """Bilinear samples of ``image`` (rows, cols) on the input grid, 0 outside."""
        img = np.asarray(image, np.float32)
        u = np.arange(self.size, dtype=np.float64)
        cols = self.a_col * u + self.b_col
        rows = self.a_row * u + self.b_row
        return _bilinear(img, rows[:, None], cols[None, :])


def _bilinear(img: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    h, w = img.shape
    r, c = np.broadcast_arrays(r, c)
    r0, c0 = np.floor(r).astype(int), np.floor(c).astype(int)
    fr, fc = (r - r0).astype(np.float32), (c - c0).astype(np.float32)
    out = np.zeros(r.shape, np.float32)
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            rr, cc = r0 + dr, c0 + dc
            ok = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            out += np.where(ok, img[np.clip(rr, 0, h - 1), np.clip(cc, 0, w - 1)], 0) * wr * wc
    return out


def normalise(image: np.ndarray) -> np.ndarray:
    """Intensity to about 0..1 by the 1st and 99.5th percentiles of the non-background pixels
    (MR signal has no absolute scale)."""
    img = np.asarray(image, np.float32)
    fg = img[img > 0]
    if fg.size < 16:
        return np.zeros_like(img)
    lo, hi = np.percentile(fg, [1.0, 99.5])
    return np.clip((img - lo) / max(float(hi - lo), 1e-6), -0.5, 1.5).astype(np.float32)
