"""Which voxels a brush covers, in world (LPS) millimetres, whatever the label map's grid.

A dab is a circle on the view's plane (2D: the voxels the plane passes through) or a sphere (3D).
A stroke from the previous mouse position to the next covers the *capsule* between them (every
point within the radius of the segment), so a fast stroke leaves no gaps between dabs (an OHIF
complaint) and costs one voxel test per segment, not one per interpolated dab.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.study.geometry import ImageVolume


@dataclass(frozen=True)
class BrushShape:
    radius_mm: float
    normal: np.ndarray | None = None  # the view plane's normal; None: a sphere (3D)


def _box(volume: ImageVolume, lo_xyz: np.ndarray, hi_xyz: np.ndarray) -> tuple[slice, ...] | None:
    """Index box (k, j, i slices) holding the world box [lo, hi], clipped to the volume."""
    corners = np.array(
        [[x, y, z] for x in (lo_xyz[0], hi_xyz[0]) for y in (lo_xyz[1], hi_xyz[1])
         for z in (lo_xyz[2], hi_xyz[2])]
    )  # fmt: skip
    ijk = volume.world_to_index(corners)
    lo = np.floor(ijk.min(axis=0)).astype(int)
    hi = np.ceil(ijk.max(axis=0)).astype(int) + 1
    shape_ijk = np.array(volume.shape[::-1])
    lo = np.clip(lo, 0, shape_ijk)
    hi = np.clip(hi, 0, shape_ijk)
    if np.any(hi <= lo):
        return None
    return (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))


def half_thickness(volume: ImageVolume, normal: np.ndarray) -> float:
    """Half of a voxel's extent along ``normal``: a voxel lies on the plane when its centre is
    closer than this (exactly one slice for a plane along the grid)."""
    steps = volume.direction * volume.spacing_ijk[np.newaxis, :]  # columns: i, j, k steps in mm
    return 0.5 * float(np.abs(np.asarray(normal, dtype=float) @ steps).sum())


def covered(
    volume: ImageVolume, a: np.ndarray, b: np.ndarray, shape: BrushShape
) -> tuple[tuple[slice, ...], np.ndarray] | None:
    """Voxels within ``radius`` of the segment a-b (a dab when a == b): (box, boolean mask in
    the box), or None when the brush misses the volume."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    r = float(shape.radius_mm)
    pad = r + float(volume.spacing_ijk.max())
    box = _box(volume, np.minimum(a, b) - pad, np.maximum(a, b) + pad)
    if box is None:
        return None
    kk, jj, ii = np.meshgrid(*(np.arange(s.start, s.stop) for s in box), indexing="ij")
    xyz = volume.index_to_world(np.stack([ii, jj, kk], axis=-1).astype(float))
    d = xyz - a
    ab = b - a
    if shape.normal is not None:
        n = np.asarray(shape.normal, dtype=float)
        n = n / np.linalg.norm(n)
        off = d @ n
        on_plane = np.abs(off) < half_thickness(volume, n) * (1 - 1e-6) + 1e-9
        d = d - off[..., None] * n  # distances measured in the plane
        ab = ab - (ab @ n) * n
    else:
        on_plane = True
    length2 = float(ab @ ab)
    t = np.clip((d @ ab) / length2, 0.0, 1.0) if length2 > 0 else np.zeros(d.shape[:-1])
    dist2 = ((d - t[..., None] * ab) ** 2).sum(axis=-1)
    mask = (dist2 <= r * r) & on_plane
    if not mask.any():
        return None
    return box, mask
