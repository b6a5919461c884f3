"""Side detection and per-femur crops (numpy + scipy only: shared by training and the adapter).

An AP radiograph with both hips is cut into two halves, as in the paper's data preparation; by
the radiological convention the image's left half is the patient's RIGHT femur. A single-hip
radiograph is one side; which one comes from the DICOM laterality when the file says, else from
where the pelvis lies (the midline, sacrum and pubis are medial to the hip joint).

Every crop is a square window, resized to the network input and histogram-equalised (the paper's
pre-processing). Right femurs are mirrored so the network always sees a femur in the same
orientation (head toward the crop's left edge, like a patient-left femur on an AP view).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

BILATERAL_MIN_ASPECT = 1.1  # width / height at or above which an AP film shows both hips
# Mirror correlation of an AP pelvis: 0.61-0.82 on the real paediatric films in
# shared/data/real/radoss_ddh_xray, 0.78-0.93 on phantoms; a hip film: 0.49 (real RG2), < 0.15
# on single-hip phantoms.
BILATERAL_MIN_SYMMETRY = 0.55


@dataclass
class SideCrop:
    side: str  # "right" or "left" (patient side)
    window: tuple[int, int, int]  # (row0, col0, size) of the square window in the image
    mirrored: bool  # True when the crop was flipped left-right (right femurs)
    pixels: np.ndarray  # (input_size, input_size) float32, equalised, network-ready

    def to_image(self, u: np.ndarray, v: np.ndarray, input_size: int):
        """Crop pixel coordinates (u = column, v = row, in input pixels) -> image (col, row)."""
        r0, c0, size = self.window
        scale = size / input_size
        if self.mirrored:
            u = input_size - np.asarray(u, float)
        return c0 + np.asarray(u, float) * scale, r0 + np.asarray(v, float) * scale


@dataclass
class Layout:
    view: str  # "bilateral" or "single"
    sides: tuple[str, ...]
    how: str  # how the side(s) were decided, for the provenance text


def detect_layout(image: np.ndarray, laterality: str = "") -> Layout:
    """Decide bilateral vs single hip, and for a single hip which side it is.

    A DICOM laterality of R or L means one hip (B means both). Otherwise a landscape film, or
    one that is left-right symmetric (an AP pelvis is; a hip film, with the pelvis on one side
    and the thigh on the other, is not), shows both hips.
    """
    rows, cols = image.shape
    lat = (laterality or "").strip().upper()[:1]
    if lat in ("L", "R"):
        return Layout("single", ("left" if lat == "L" else "right",), "DICOM laterality tag")
    if lat == "B":
        return Layout("bilateral", ("right", "left"), "DICOM laterality tag (both)")
    if cols / rows >= BILATERAL_MIN_ASPECT:
        return Layout("bilateral", ("right", "left"), "both hips (landscape AP pelvis)")
    symmetry = mirror_symmetry(image)
    if symmetry >= BILATERAL_MIN_SYMMETRY:
        return Layout(
            "bilateral", ("right", "left"), f"both hips (left-right symmetry {symmetry:.2f})"
        )
    return Layout("single", (single_hip_side(image),), "medial bone-mass heuristic")


def mirror_symmetry(image: np.ndarray, size: int = 64) -> float:
    """Correlation of the (downsampled, equalised) film with its left-right mirror."""
    img = np.asarray(image, np.float32)
    a = equalise(
        ndimage.zoom(img, (size / img.shape[0], size / img.shape[1]), order=1, prefilter=False)
        if max(img.shape) < 4 * size
        else resize_rect(img, size)
    )
    b = a[:, ::-1]
    if a.std() == 0:
        return 0.0
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def resize_rect(img: np.ndarray, size: int) -> np.ndarray:
    """Block-average then bilinear to (size, size) ignoring aspect (for symmetry only)."""
    f = max(1, min(img.shape) // (2 * size))
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    small = img[:h, :w].reshape(h, w // f, f).sum(-1).reshape(h // f, f, w // f).sum(1)
    return ndimage.zoom(
        small, (size / small.shape[0], size / small.shape[1]), order=1, prefilter=False
    )


def single_hip_side(image: np.ndarray) -> str:
    """Patient side of a single-hip AP film: the half holding more pelvis/sacrum is medial.

    Uses the upper half (pelvis level) and leaves out the outer fifth on both sides, where
    collimator edges and skin folds sit. Medial on the image left means the hip is on the
    image right of the midline, i.e. the patient's LEFT hip.
    """
    img = _normalise(np.asarray(image, np.float32))
    rows, cols = img.shape
    upper = img[: rows // 2, cols // 5 : cols - cols // 5]
    bone = upper > np.percentile(upper, 60)
    mid = upper.shape[1] // 2
    left_mass, right_mass = bone[:, :mid].sum(), bone[:, mid:].sum()
    return "left" if left_mass >= right_mass else "right"


def side_windows(shape: tuple[int, int], layout: Layout) -> dict[str, tuple[int, int, int]]:
    """Square windows (row0, col0, size) for each side: its half (or the whole single-hip film),
    as tall as it is wide, centred on the image's middle row."""
    rows, cols = shape
    out = {}
    if layout.view == "bilateral":
        half = cols // 2
        spans = {"right": (0, half), "left": (cols - half, half)}
    else:
        spans = {layout.sides[0]: (0, cols)}
    for side, (c0, width) in spans.items():
        size = min(width, rows)
        c0 += (width - size) // 2
        r0 = (rows - size) // 2
        out[side] = (r0, c0, size)
    return out


def crop_sides(
    image: np.ndarray, input_size: int, laterality: str = "", layout: Layout | None = None
) -> tuple[Layout, list[SideCrop]]:
    """The per-femur network inputs of a radiograph (2-D, bone bright)."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D radiograph, got shape {image.shape}")
    layout = layout or detect_layout(image, laterality)
    crops = []
    for side, (r0, c0, size) in side_windows(image.shape, layout).items():
        window = image[r0 : r0 + size, c0 : c0 + size]
        mirrored = side == "right"
        pixels = prepare(window, input_size)
        if mirrored:
            pixels = pixels[:, ::-1]
        crops.append(SideCrop(side, (r0, c0, size), mirrored, np.ascontiguousarray(pixels)))
    return layout, crops


def resize(window: np.ndarray, size: int) -> np.ndarray:
    """Area-average down by an integer factor, then bilinear to exactly ``size`` square."""
    w = np.asarray(window, np.float32)
    factor = max(1, min(w.shape) // (2 * size))
    if factor > 1:
        h, v = (w.shape[0] // factor) * factor, (w.shape[1] // factor) * factor
        # Sum along rows first (contiguous), then columns: much faster than mean(axis=(1, 3)).
        w = w[:h, :v].reshape(h, v // factor, factor).sum(-1)
        w = w.reshape(h // factor, factor, v // factor).sum(1) / (factor * factor)
    zoom = (size / w.shape[0], size / w.shape[1])
    out = ndimage.zoom(w, zoom, order=1, prefilter=False, grid_mode=True, mode="nearest")
    return out[:size, :size]


def equalise(img: np.ndarray, bins: int = 256) -> np.ndarray:
    """Histogram equalisation to [0, 1] (the paper's pre-processing)."""
    lo, hi = float(img.min()), float(img.max())
    if hi <= lo:
        return np.zeros_like(img, np.float32)
    q = ((img - lo) / (hi - lo) * (bins - 1)).astype(np.int32)
    cdf = np.cumsum(np.bincount(q.ravel(), minlength=bins)).astype(np.float32)
    cdf = (cdf - cdf[0]) / max(cdf[-1] - cdf[0], 1.0)
    return cdf[q]


def prepare(window: np.ndarray, input_size: int) -> np.ndarray:
    """Window -> network input: resize, equalise, centre (float32, roughly zero mean)."""
    return ((equalise(resize(window, input_size)) - 0.5) / 0.29).astype(np.float32)


def _normalise(img: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(img, [1, 99])
    return np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)
