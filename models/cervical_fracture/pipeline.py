"""NumPy pre- and post-processing shared by training, evaluation and the adapter.

Everything here is numpy only, so the adapter (numpy + onnxruntime) and the training code (torch)
see exactly the same inputs.

Stage 1 works on a *working grid*: axis-aligned with the study's own voxel axes (same direction
matrix), resampled to ``SLICE_MM`` between slices and ``PIXEL_MM`` in-plane, cropped to
``WORK_SIZE`` x ``WORK_SIZE`` around the body. Because the grids share axes, every mapping is
separable (one index table per axis): fast on a 300 x 512 x 512 study, and exactly invertible for
bringing the label map back to the study's geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

from app.study.geometry import ImageVolume
from models.cervical_fracture.labels import OTHER_SPINE, VERTEBRAE

N_CLASSES = 9  # background, C1..C7, other spine
HU_WINDOW = (-500.0, 1300.0)  # bone window (centre 400, width 1800) mapped to [0, 1]
SLICE_MM = 1.5
PIXEL_MM = 1.6
WORK_SIZE = 96
CROP_SIZE = 64  # stage-2 crop (demo); the paper resizes crops to a fixed square as well
SEQ_SLICES = 24  # slices picked per vertebra (paper)
SEQ_LEN = 8  # 24 slices -> 8 stacked 2.5D 3-channel images (paper)
SLICE_SHARE = 0.5  # a slice joins a vertebra's list when its pixel share exceeds this (paper)
TOP_N = 5  # patient_overall over the top-N vertebrae (paper's final choice, Table 4.3/5.1)
BOX_MARGIN = 0.1  # fraction of the box size added on each side before cropping
SPECK_SHARE = 0.01  # pieces of a vertebra's mask below this share are stray voxels


def window(hu: np.ndarray) -> np.ndarray:
    lo, hi = HU_WINDOW
    return np.clip((np.asarray(hu, dtype=np.float32) - lo) / (hi - lo), 0.0, 1.0)


# ---- separable resampling -------------------------------------------------------------------
@dataclass
class AxisMap:
    """Working index n sits at study index ``start + n * step`` along one axis."""

    start: float
    step: float
    count: int

    def positions(self) -> np.ndarray:
        return self.start + np.arange(self.count) * self.step

    def nearest_working(self, n_study: int) -> tuple[np.ndarray, np.ndarray]:
        """For each study index: its nearest working index and whether it is inside the grid."""
        idx = np.round((np.arange(n_study) - self.start) / self.step).astype(np.int64)
        valid = (idx >= 0) & (idx < self.count)
        return np.clip(idx, 0, self.count - 1), valid


@dataclass
class WorkingGrid:
    axes: tuple[AxisMap, AxisMap, AxisMap]  # (k, j, i)
    study_shape: tuple[int, int, int]

    def to_study_index(self, kji: np.ndarray) -> np.ndarray:
        """Working (k, j, i) indices (..., 3) to fractional study (k, j, i) indices."""
        kji = np.asarray(kji, dtype=float)
        start = np.array([a.start for a in self.axes])
        step = np.array([a.step for a in self.axes])
        return start + kji * step


def _resample_axis(arr: np.ndarray, axis: int, amap: AxisMap, fill: float) -> np.ndarray:
    """Linear interpolation along one axis; box-filtered first when downsampling."""
    if amap.step > 1.5:
        arr = uniform_filter1d(arr, size=int(round(amap.step)), axis=axis, mode="nearest")
    pos = amap.positions()
    n = arr.shape[axis]
    lo = np.floor(pos).astype(np.int64)
    frac = (pos - lo).astype(np.float32)
    valid = (pos >= -0.5) & (pos <= n - 0.5)
    a = np.take(arr, np.clip(lo, 0, n - 1), axis=axis)
    b = np.take(arr, np.clip(lo + 1, 0, n - 1), axis=axis)
    shape = [1] * arr.ndim
    shape[axis] = -1
    out = a + (b - a) * frac.reshape(shape)
    if not valid.all():
        sl = [slice(None)] * arr.ndim
        sl[axis] = ~valid
        out[tuple(sl)] = fill
    return out


def body_center_ji(hu: np.ndarray) -> tuple[float, float]:
    """Centre (row, column) of the patient's body (HU > -300) over a subsample of slices."""
    sub = hu[:: max(1, hu.shape[0] // 24), ::4, ::4]
    mask = sub > -300
    if not mask.any():
        return (hu.shape[1] - 1) / 2, (hu.shape[2] - 1) / 2
    _, jj, ii = np.nonzero(mask)
    return float(jj.mean() * 4), float(ii.mean() * 4)


def make_working_grid(ct: ImageVolume) -> WorkingGrid:
    dk, dj, di = ct.spacing
    nk, nj, ni = ct.shape
    cj, ci = body_center_ji(ct.array)
    step_k = SLICE_MM / dk
    count_k = max(1, int(np.floor((nk - 1) / step_k)) + 1)
    start_k = ((nk - 1) - (count_k - 1) * step_k) / 2
    axes = []
    for c, d in ((cj, dj), (ci, di)):
        step = PIXEL_MM / d
        axes.append(AxisMap(c - (WORK_SIZE - 1) / 2 * step, step, WORK_SIZE))
    return WorkingGrid((AxisMap(start_k, step_k, count_k), axes[0], axes[1]), ct.shape)


def to_working(ct: ImageVolume, grid: WorkingGrid) -> np.ndarray:
    """The study CT on the working grid, windowed to [0, 1] (float32, (K, 96, 96))."""
    arr = ct.array.astype(np.float32, copy=False)
    arr = _resample_axis(arr, 0, grid.axes[0], -1024.0)
    arr = _resample_axis(arr, 1, grid.axes[1], -1024.0)
    arr = _resample_axis(arr, 2, grid.axes[2], -1024.0)
    return window(arr)


def labels_to_working(labels: np.ndarray, grid: WorkingGrid) -> np.ndarray:
    """Nearest-neighbour label map on the working grid (training targets)."""
    out = labels
    for axis, amap in enumerate(grid.axes):
        idx = np.clip(np.round(amap.positions()).astype(np.int64), 0, labels.shape[axis] - 1)
        valid = (amap.positions() >= -0.5) & (amap.positions() <= labels.shape[axis] - 0.5)
        out = np.take(out, idx, axis=axis)
        if not valid.all():
            sl = [slice(None)] * 3
            sl[axis] = ~valid
            out = out.copy()
            out[tuple(sl)] = 0
    return out


def labels_to_study(work_labels: np.ndarray, grid: WorkingGrid) -> np.ndarray:
    """Working-grid labels back on the study's own voxel grid (nearest neighbour)."""
    out = work_labels
    for axis, amap in enumerate(grid.axes):
        idx, valid = amap.nearest_working(grid.study_shape[axis])
        out = np.take(out, idx, axis=axis)
        if not valid.all():
            sl = [slice(None)] * 3
            sl[axis] = ~valid
            out[tuple(sl)] = 0
    return np.ascontiguousarray(out)


def stage1_inputs(work: np.ndarray) -> np.ndarray:
    """(K, 3, H, W): each slice with its two neighbours as channels (edges repeated)."""
    padded = np.concatenate([work[:1], work, work[-1:]], axis=0)
    return np.stack([padded[:-2], padded[1:-1], padded[2:]], axis=1).astype(np.float32)


# ---- stage-1 post-processing ----------------------------------------------------------------
MIN_COMPONENT_VOXELS = 20
MAX_COMPONENT_MM = 22.0  # a subaxial vertebra is 12-17 mm tall; taller means merged levels
SKIP_PENALTY = 4.0  # log-likelihood cost of a level with no component (a missed vertebra)


def _ordered_assignment(logq: np.ndarray) -> list[int]:
    """Labels for components sorted superior -> inferior: C3..C7 strictly in order, then
    any number of "other spine" (8). ``logq`` is (n, 6) log-probabilities of C3..C7 and 8.

    A Viterbi pass over states 0..5 (= C3..C7, other); a component may skip levels at a cost.
    """
    n = len(logq)
    n_states = 6
    score = np.full((n, n_states), -np.inf)
    back = np.zeros((n, n_states), dtype=np.int64)
    for s in range(n_states):
        score[0, s] = logq[0, s] - SKIP_PENALTY * min(s, 5)
    for i in range(1, n):
        for s in range(n_states):
            best, arg = -np.inf, 0
            for prev in range(n_states):
                if prev < s:
                    skipped = max(0, min(s, 5) - prev - 1)
                    cand = score[i - 1, prev] - SKIP_PENALTY * skipped
                elif prev == s == 5:  # several thoracic / other components in a row
                    cand = score[i - 1, prev]
                else:
                    continue
                if cand > best:
                    best, arg = cand, prev
            score[i, s] = best + logq[i, s]
            back[i, s] = arg
    states = [int(np.argmax(score[-1]))]
    for i in range(n - 1, 0, -1):
        states.append(int(back[i, states[-1]]))
    states = states[::-1]
    return [3 + st if st < 5 else OTHER_SPINE for st in states]


def _split_tall(idx: np.ndarray, k: np.ndarray, max_slices: int) -> list[np.ndarray]:
    """Split a component taller than one vertebra at its thinnest interior slice (a disc that
    a fracture fragment or blur bridged), recursively."""
    k0, k1 = int(k.min()), int(k.max())
    if k1 - k0 + 1 <= max_slices or k1 - k0 < 6:
        return [idx]
    area = np.bincount(k - k0)
    cut = k0 + 3 + int(np.argmin(area[3:-3]))
    upper, lower = k >= cut, k < cut
    return _split_tall(idx[lower], k[lower], max_slices) + _split_tall(
        idx[upper], k[upper], max_slices
    )


def labels_from_probs(
    probs: np.ndarray,
    superior_is_high_k: bool,
    ordered: bool = True,
    slice_mm: float = SLICE_MM,
) -> np.ndarray:
    """Label map (K, H, W) uint8 from stage-1 probabilities (K, 9, H, W).

    ``ordered`` adds our anatomical post-processing (not in the paper): a 2.5D network sees one
    slice at a time and cannot tell C4 from C5 reliably, but the spine below C2 falls apart into
    one connected component per vertebra (discs are soft tissue), and those run C3, C4, ... C7,
    then thoracic, from top to bottom. Components taller than one vertebra are split at their
    thinnest slice; fragments within another component's slices join it; then each vertebra
    below the network's C2 gets one level, chosen jointly by a Viterbi pass over their mean class
    probabilities under that order. C1, C2 and the skull base keep the voxel-wise labels.
    """
    from scipy.ndimage import label as connected_components

    raw = np.argmax(probs, axis=1).astype(np.uint8)
    if not ordered:
        return raw
    comps, n = connected_components(raw > 0)
    if n == 0:
        return raw
    sign = 1.0 if superior_is_high_k else -1.0
    c2_k = np.nonzero(raw == 2)[0]
    c2_level = float(c2_k.mean()) * sign if len(c2_k) >= MIN_COMPONENT_VOXELS else np.inf
    plane = raw.shape[1] * raw.shape[2]
    fg = np.flatnonzero(raw > 0)
    comp_of = comps.ravel()[fg]
    order = np.argsort(comp_of, kind="stable")
    bounds = np.searchsorted(comp_of[order], np.arange(1, n + 2))
    pflat = probs.transpose(1, 0, 2, 3).reshape(N_CLASSES, -1)
    max_slices = int(round(MAX_COMPONENT_MM / slice_mm))
    units: list[np.ndarray] = []
    for c in range(n):
        idx = fg[order[bounds[c] : bounds[c + 1]]]
        k = idx // plane
        mean = pflat[:, idx].mean(axis=1)
        if int(np.argmax(mean[1:])) + 1 not in (3, 4, 5, 6, 7, 8):
            continue
        if float(k.mean()) * sign >= c2_level:
            continue
        units += _split_tall(idx, k, max_slices)
    # fragments lying within a bigger unit's slices belong to that vertebra; specks alone are no
    # vertebra and keep their voxel-wise label
    groups: list[list[np.ndarray]] = []
    for u in sorted(units, key=len, reverse=True):
        ku = u // plane
        for g in groups:
            kg = g[0] // plane
            lo, hi = max(ku.min(), kg.min()), min(ku.max(), kg.max())
            if hi - lo + 1 >= 0.5 * (ku.max() - ku.min() + 1):
                g.append(u)
                break
        else:
            if len(u) >= MIN_COMPONENT_VOXELS:
                groups.append([u])
    if not groups:
        return raw
    members = [np.concatenate(g) for g in groups]
    members.sort(key=lambda m: -float((m // plane).mean()) * sign)  # superior first
    q = np.stack([pflat[[3, 4, 5, 6, 7, 8]][:, m].sum(axis=1) for m in members])
    q = q / np.maximum(q.sum(axis=1, keepdims=True), 1e-9)
    out = raw.copy()
    flat = out.reshape(-1)
    for m, lab in zip(members, _ordered_assignment(np.log(q + 1e-4)), strict=True):
        flat[m] = lab
    return out


@dataclass
class VertebraRegion:
    name: str
    label: int
    voxels: int  # on the working grid
    slices_work: np.ndarray  # working slice indices whose share passes SLICE_SHARE
    box_work: tuple[int, int, int, int]  # (j0, i0, j1, i1) inclusive-exclusive, working grid


def drop_specks(mask: np.ndarray, share: float = SPECK_SHARE) -> np.ndarray:
    """The mask without connected pieces smaller than ``share`` of its voxels.

    Stage 1 leaves a few stray voxels with a vertebra's label far from it (typically on the hyoid
    or mandible, in front of C2-C3). Taken into the box, one such voxel widened C3's crop by up to
    26 mm, so stage 2 saw a field of view it was never trained on (its training boxes come from
    truth label maps, which have no such specks) and called intact vertebrae fractured. Real
    separate pieces of a vertebra (a process tip cut off by the 1.6 mm grid, a fracture
    fragment) measured 20-500 voxels, 1-25% of the vertebra; the specks 1-9 voxels, < 1%.
    """
    from scipy.ndimage import label as connected_components

    comps, n = connected_components(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(comps.ravel())[1:]
    keep = np.nonzero(sizes >= share * sizes.sum())[0] + 1
    if len(keep) == 0:
        return mask
    return np.isin(comps, keep)


def vertebra_regions(labels: np.ndarray, min_voxels: int = 30) -> dict[str, VertebraRegion]:
    """Per-vertebra slice lists (paper: share > 50% of the vertebra's largest slice) and boxes,
    both from the vertebra's mask without stray specks (``drop_specks``)."""
    out = {}
    for n, name in enumerate(VERTEBRAE, start=1):
        mask = labels == n
        count = int(mask.sum())
        if count < min_voxels:
            continue
        mask = drop_specks(mask)
        per_slice = mask.sum(axis=(1, 2)).astype(np.float64)
        share = per_slice / per_slice.max()
        slices = np.nonzero(share > SLICE_SHARE)[0]
        _, jj, ii = np.nonzero(mask[slices])
        box = (int(jj.min()), int(ii.min()), int(jj.max()) + 1, int(ii.max()) + 1)
        out[name] = VertebraRegion(name, n, count, slices, box)
    return out


def pick_slices(slice_list: np.ndarray, n: int = SEQ_SLICES) -> np.ndarray:
    """n evenly spaced picks from a slice list; short lists repeat slices evenly (paper)."""
    idx = np.round(np.linspace(0, len(slice_list) - 1, n)).astype(np.int64)
    return np.asarray(slice_list)[idx]


def study_slices_for(region: VertebraRegion, grid: WorkingGrid) -> np.ndarray:
    """Study slice indices whose nearest working slice is in the vertebra's list."""
    idx, valid = grid.axes[0].nearest_working(grid.study_shape[0])
    keep = valid & np.isin(idx, region.slices_work)
    found = np.nonzero(keep)[0]
    if len(found) == 0:  # thick study slices: fall back to the nearest study slices
        pos = grid.axes[0].start + region.slices_work * grid.axes[0].step
        found = np.unique(np.clip(np.round(pos), 0, grid.study_shape[0] - 1).astype(np.int64))
    return found


def study_box_for(region: VertebraRegion, grid: WorkingGrid) -> tuple[float, float, float, float]:
    """(j0, i0, j1, i1) of the vertebra in study voxel indices (fractional, exclusive end)."""
    j0, i0, j1, i1 = region.box_work
    aj, ai = grid.axes[1], grid.axes[2]
    return (
        aj.start + (j0 - 0.5) * aj.step,
        ai.start + (i0 - 0.5) * ai.step,
        aj.start + (j1 - 0.5) * aj.step,
        ai.start + (i1 - 0.5) * ai.step,
    )


def crop_slices(
    hu: np.ndarray,
    slices: np.ndarray,
    box: tuple[float, float, float, float],
    size: int = CROP_SIZE,
    margin: float = BOX_MARGIN,
) -> np.ndarray:
    """(len(slices), size, size) windowed crops of the study slices, resized bilinearly."""
    j0, i0, j1, i1 = box
    hj, hi = (j1 - j0) * margin, (i1 - i0) * margin
    j0, j1, i0, i1 = j0 - hj, j1 + hj, i0 - hi, i1 + hi
    sub = hu[np.asarray(slices)].astype(np.float32, copy=False)
    sj = (j1 - j0) / size
    si = (i1 - i0) / size
    sub = _resample_axis(sub, 1, AxisMap(j0 + sj / 2 - 0.5, sj, size), -1024.0)
    sub = _resample_axis(sub, 2, AxisMap(i0 + si / 2 - 0.5, si, size), -1024.0)
    return window(sub)


def stage2_sequence(crops: np.ndarray) -> np.ndarray:
    """(24, H, W) crops -> (8, 3, H, W): consecutive triplets become 2.5D 3-channel images."""
    n = crops.shape[0]
    return crops.reshape(n // 3, 3, *crops.shape[1:]).astype(np.float32)


def patient_probability(per_vertebra: np.ndarray, top_n: int = TOP_N) -> float:
    """1 - prod(1 - p) over the top-N vertebra probabilities (paper eq. 4.4)."""
    p = np.sort(np.asarray(per_vertebra, dtype=np.float64))[::-1][:top_n]
    return float(1.0 - np.prod(1.0 - p))


def superior_is_high_k(ct: ImageVolume) -> bool:
    return bool(ct.direction[2, 2] >= 0)
