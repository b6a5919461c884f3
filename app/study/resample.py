"""Slice-axis geometry of a stack of parallel slices: order, step, tilt, gaps, resampling.

Given each slice's ImagePositionPatient and the shared orientation, ``plan_stack`` decides the
slice order (by position along the slice normal, never file name or InstanceNumber), the
measured step vector (which is *not* the normal under gantry tilt), and whether the slices sit
on a regular grid. When they do not (a gap, variable spacing), the stack is resampled to a
regular grid along the slice axis by linear interpolation (``resample_slices``) and the plan
carries a warning that says so: a gap is never squeezed silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TILT_DEGREES_MIN = 0.1  # below this the step is taken as the normal (position rounding)
MAX_RESAMPLE_GROWTH = 4  # refuse to resample to more than 4x the slice count (and > 1024)


class StackError(ValueError):
    """The slices cannot be put on a regular grid (reason in the message)."""


@dataclass
class StackPlan:
    order: np.ndarray  # indices of the input slices, in slice-axis order (duplicates removed)
    origin: np.ndarray  # LPS position of the first slice's first voxel
    step_dir: np.ndarray  # unit LPS vector along increasing k
    spacing: float  # mm between output slices along step_dir
    positions_t: np.ndarray  # distance of each ordered slice from the first, along step_dir
    grid_t: np.ndarray | None = None  # output positions when resampling is needed, else None
    duplicates: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def n_out(self) -> int:
        return len(self.order) if self.grid_t is None else len(self.grid_t)


def slice_normal(orientation: np.ndarray) -> np.ndarray:
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:6], float)
    normal = np.cross(row, col)
    norm = np.linalg.norm(normal)
    if norm < 1e-6:
        raise StackError("ImageOrientationPatient rows and columns are parallel")
    return normal / norm


def _common_step(gaps: np.ndarray) -> float:
    """The smallest step that occurs often (>= 2 times and >= 10%), else the median step."""
    rounded = np.round(gaps / 0.05) * 0.05
    values, counts = np.unique(rounded, return_counts=True)
    common = values[(counts >= 2) & (counts >= 0.1 * len(gaps))]
    if len(common):
        target = common.min()
        return float(np.mean(gaps[np.abs(rounded - target) < 1e-6]))
    return float(np.median(gaps))


def plan_stack(
    positions: np.ndarray, orientation: np.ndarray, fallback_spacing: float = 1.0
) -> StackPlan:
    """Order, step and regularity of slices at ``positions`` (n, 3) LPS mm."""
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    normal = slice_normal(orientation)
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    # Duplicates: the same place twice (checked by position, not only along the normal).
    keep = [int(order[0])]
    for idx in order[1:]:
        if np.linalg.norm(positions[idx] - positions[keep[-1]]) < 0.01:
            continue
        keep.append(int(idx))
    duplicates = len(order) - len(keep)
    order = np.array(keep, dtype=int)
    warnings: list[str] = []
    if duplicates:
        warnings.append(
            f"{duplicates} slice(s) repeat the position of another slice: kept one per position"
        )
    pts = positions[order]
    if len(pts) == 1:
        return StackPlan(
            order, pts[0], normal, float(fallback_spacing), np.zeros(1), None, duplicates, warnings
        )
    span = pts[-1] - pts[0]
    length = float(np.linalg.norm(span))
    step_dir = span / length
    tilt = float(np.degrees(np.arccos(np.clip(abs(step_dir @ normal), 0.0, 1.0))))
    if tilt < TILT_DEGREES_MIN:
        step_dir = normal
    else:
        warnings.append(
            f"gantry tilt {tilt:.1f} deg: slices step {tilt:.1f} deg off the image normal; "
            "kept as a sheared grid (direction column k is the measured step)"
        )
    rel = pts - pts[0]
    t = rel @ step_dir
    off_line = float(np.max(np.linalg.norm(rel - np.outer(t, step_dir), axis=1)))
    if off_line > 0.1:
        warnings.append(
            f"slice positions are up to {off_line:.2f} mm off a straight line; "
            "geometry follows the first and last slices"
        )
    gaps = np.diff(t)
    if np.any(gaps <= 0):
        raise StackError("slice positions do not increase along the slice axis")
    mean_gap = t[-1] / (len(t) - 1)
    deviation = float(np.max(np.abs(t - mean_gap * np.arange(len(t)))))
    if deviation <= max(0.06, 0.05 * mean_gap):
        return StackPlan(order, pts[0], step_dir, float(mean_gap), t, None, duplicates, warnings)
    step = _common_step(gaps)
    count = int(round(t[-1] / step))
    step = t[-1] / count  # land exactly on the last slice
    n_out = count + 1
    if n_out > MAX_RESAMPLE_GROWTH * len(t) and n_out > 1024:
        raise StackError(
            f"slice spacing too irregular to resample ({gaps.min():.2f}-{gaps.max():.2f} mm "
            f"between {len(t)} slices would need {n_out} slices)"
        )
    warnings.append(
        f"non-uniform slice spacing ({gaps.min():.2f}-{gaps.max():.2f} mm, largest gap "
        f"{gaps.max():.2f} mm): resampled to a regular {step:.3f} mm grid by linear "
        f"interpolation along the slice axis ({len(t)} -> {n_out} slices)"
    )
    grid = np.arange(n_out) * step
    return StackPlan(order, pts[0], step_dir, float(step), t, grid, duplicates, warnings)


def resample_slices(stack: np.ndarray, t: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``stack`` (n, ...) sampled at ``t`` onto ``grid`` along axis 0."""
    out = np.empty((len(grid),) + stack.shape[1:], dtype=stack.dtype)
    upper = np.clip(np.searchsorted(t, grid, side="right"), 1, len(t) - 1)
    lower = upper - 1
    weight = (grid - t[lower]) / (t[upper] - t[lower])
    integer = np.issubdtype(stack.dtype, np.integer)
    for n, (lo, hi, w) in enumerate(zip(lower, upper, weight, strict=True)):
        if w <= 1e-6:
            out[n] = stack[lo]
        elif w >= 1 - 1e-6:
            out[n] = stack[hi]
        else:
            mixed = stack[lo].astype(np.float32) * np.float32(1 - w)
            mixed += stack[hi].astype(np.float32) * np.float32(w)
            out[n] = np.rint(mixed) if integer else mixed
    return out
