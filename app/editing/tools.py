"""Array helpers behind the editor's tools (plain NumPy/SciPy, no state)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from app.study.geometry import ImageVolume

Box = tuple[slice, slice, slice]
_GRID_TOL = 1e-4


def same_grid(a: ImageVolume, b: ImageVolume) -> bool:
    return (
        a.shape == b.shape
        and np.allclose(a.spacing, b.spacing, atol=_GRID_TOL)
        and np.allclose(a.origin, b.origin, atol=_GRID_TOL)
        and np.allclose(a.direction, b.direction, atol=_GRID_TOL)
    )


def intensity_on(labels: ImageVolume, image: ImageVolume, box: Box, same: bool) -> np.ndarray:
    """The image's intensities at the label voxels of ``box`` (nearest; NaN off the image)."""
    if same:
        values = image.array[box]
        return values.mean(axis=-1) if values.ndim == 4 else values
    kk, jj, ii = np.meshgrid(*(np.arange(s.start, s.stop) for s in _concrete(box, labels.shape)),
                             indexing="ij")  # fmt: skip
    xyz = labels.index_to_world(np.stack([ii, jj, kk], axis=-1).astype(float))
    ijk = np.rint(image.world_to_index(xyz)).astype(np.int64)
    out = np.full(kk.shape, np.nan)
    inside = np.all((ijk >= 0) & (ijk < np.array(image.shape[::-1])), axis=-1)
    arr = image.array if image.array.ndim == 3 else image.array.mean(axis=-1)
    out[inside] = arr[ijk[inside][:, 2], ijk[inside][:, 1], ijk[inside][:, 0]]
    return out


def _concrete(box: Box, shape: tuple[int, ...]) -> Box:
    return tuple(slice(*s.indices(n)[:2]) for s, n in zip(box, shape[:3], strict=True))  # type: ignore[return-value]


def in_range(values: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    lo, hi = sorted(value_range)
    return (values >= lo) & (values <= hi)


def seed_index(volume: ImageVolume, xyz) -> tuple[int, int, int] | None:
    """(k, j, i) of the voxel holding a world point, or None outside the volume."""
    i, j, k = np.rint(volume.world_to_index(np.asarray(xyz, dtype=float))).astype(int)
    nk, nj, ni = volume.shape
    if not (0 <= k < nk and 0 <= j < nj and 0 <= i < ni):
        return None
    return int(k), int(j), int(i)


def slice_axis(volume: ImageVolume, normal) -> int:
    """The array axis (0 = k, 1 = j, 2 = i) most nearly along a view's normal."""
    along = np.abs(volume.direction.T @ np.asarray(normal, dtype=float))  # i, j, k
    return 2 - int(np.argmax(along))


def slab(shape: tuple[int, ...], seed: tuple[int, int, int], axis: int | None) -> Box:
    """The one-voxel slab through ``seed`` across ``axis`` (everything when axis is None)."""
    box = [slice(0, n) for n in shape[:3]]
    if axis is not None:
        box[axis] = slice(seed[axis], seed[axis] + 1)
    return tuple(box)  # type: ignore[return-value]


def component_at(mask: np.ndarray, seed: tuple[int, ...]) -> np.ndarray:
    """The connected part of ``mask`` (face connectivity) holding ``seed``; empty if off."""
    if not mask[seed]:
        return np.zeros_like(mask)
    labelled, _ = ndimage.label(mask)
    return labelled == labelled[seed]


def _pieces(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labelled, n = ndimage.label(mask)
    sizes = np.bincount(labelled.ravel(), minlength=n + 1)
    sizes[0] = 0
    return labelled, sizes


def small_islands(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    """The connected pieces of ``mask`` with fewer than ``min_voxels`` voxels."""
    labelled, sizes = _pieces(mask)
    small = (sizes < min_voxels) & (sizes > 0)
    return small[labelled]


def all_but_largest(mask: np.ndarray) -> np.ndarray:
    labelled, sizes = _pieces(mask)
    if sizes.max(initial=0) == 0:
        return np.zeros_like(mask)
    drop = sizes > 0
    drop[int(np.argmax(sizes))] = False
    return drop[labelled]


def _signed_distance(mask2d: np.ndarray, sampling: tuple[float, float]) -> np.ndarray:
    """Negative inside, positive outside (mm)."""
    outside = ndimage.distance_transform_edt(~mask2d, sampling=sampling)
    inside = ndimage.distance_transform_edt(mask2d, sampling=sampling)
    return outside - inside


def interpolate_slices(mask: np.ndarray, axis: int, spacing) -> np.ndarray:
    """Voxels to add on the empty slices between non-empty ones along ``axis``: linear
    interpolation of the two neighbours' signed distance maps (shape-based interpolation)."""
    moved = np.moveaxis(mask, axis, 0)
    add = np.zeros_like(moved)
    sampling = tuple(float(s) for i, s in enumerate(spacing) if i != axis)
    filled = np.flatnonzero(moved.reshape(moved.shape[0], -1).any(axis=1))
    for a, b in zip(filled[:-1], filled[1:], strict=True):
        if b - a < 2:
            continue
        both = moved[a] | moved[b]
        rows = np.flatnonzero(both.any(axis=1))
        cols = np.flatnonzero(both.any(axis=0))
        margin = 2  # room for the distance maps to cross zero at the shapes' edges
        r0, r1 = max(rows[0] - margin, 0), min(rows[-1] + margin + 1, both.shape[0])
        c0, c1 = max(cols[0] - margin, 0), min(cols[-1] + margin + 1, both.shape[1])
        da = _signed_distance(moved[a, r0:r1, c0:c1], sampling)
        db = _signed_distance(moved[b, r0:r1, c0:c1], sampling)
        for z in range(a + 1, b):
            w = (z - a) / (b - a)
            add[z, r0:r1, c0:c1] = (1 - w) * da + w * db < 0
    return np.moveaxis(add, 0, axis)
