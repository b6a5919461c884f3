"""Display planes in patient (LPS) space and resampling of any volume onto them.

A view shows a plane through the patient. The plane's pixel grid is defined in world millimetres
(``origin``, ``col_axis``, ``row_axis``, spacing), so any layer, whatever its own grid, is sampled
through world coordinates: a label map made on the CT grid and a heatmap on a coarser grid both
land where they belong, and a gantry-tilted (sheared) volume is shown without distortion.

Row 0 of a resliced array is the *bottom* of the screen for the VTK views (``row_axis`` points up
on screen), which is also what a VTK image expects, so no flip is needed when drawing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from app.study.geometry import ImageVolume

# Screen axes in LPS for each orientation: (screen right, screen up, slice normal).
# Radiological convention: patient right on screen left in axial and coronal (so +L to the right),
# anterior up in axial, superior up in sagittal/coronal, anterior on the left in sagittal.
ORIENTATION_AXES: dict[str, tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]] = {
    "axial": ((1, 0, 0), (0, -1, 0), (0, 0, 1)),
    "coronal": ((1, 0, 0), (0, 0, 1), (0, -1, 0)),
    "sagittal": ((0, 1, 0), (0, 0, 1), (1, 0, 0)),
}
ORIENTATIONS = ("axial", "sagittal", "coronal")
_AXIS_TOL = 1e-3


@dataclass
class PlaneGrid:
    """A pixel grid on a family of parallel planes; ``depth`` picks one plane of the family.

    world(row, col, depth) = origin + col * spacing[1] * col_axis + row * spacing[0] * row_axis
                             + depth * normal
    ``origin`` has no component along ``normal``.
    """

    orientation: str
    origin: np.ndarray
    col_axis: np.ndarray
    row_axis: np.ndarray
    normal: np.ndarray
    spacing: tuple[float, float]  # (row spacing, column spacing) in mm
    shape: tuple[int, int]  # (rows, columns)
    depth_range: tuple[float, float]
    depth_step: float

    def world(self, row: float, col: float, depth: float) -> np.ndarray:
        return (
            self.origin
            + col * self.spacing[1] * self.col_axis
            + row * self.spacing[0] * self.row_axis
            + depth * self.normal
        )

    def to_plane(self, xyz: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> (..., 3) (row, col, depth) in this grid (fractional)."""
        d = np.asarray(xyz, dtype=float) - self.origin
        return np.stack(
            [
                d @ self.row_axis / self.spacing[0],
                d @ self.col_axis / self.spacing[1],
                d @ self.normal,
            ],
            axis=-1,
        )

    def depth_of(self, xyz: np.ndarray) -> float:
        return float(np.asarray(xyz, dtype=float) @ self.normal)

    def clamp_depth(self, depth: float) -> float:
        lo, hi = self.depth_range
        return float(min(max(depth, lo), hi))

    def snap_depth(self, depth: float) -> float:
        """Nearest slice position (on the reference grid) inside the range."""
        lo, _ = self.depth_range
        n = round((depth - lo) / self.depth_step) if self.depth_step > 0 else 0
        return self.clamp_depth(lo + n * self.depth_step)

    @property
    def n_slices(self) -> int:
        lo, hi = self.depth_range
        return int(round((hi - lo) / self.depth_step)) + 1 if self.depth_step > 0 else 1

    @property
    def extent_mm(self) -> tuple[float, float]:
        """(width, height) of the grid in mm, pixel centre to pixel centre."""
        return ((self.shape[1] - 1) * self.spacing[1], (self.shape[0] - 1) * self.spacing[0])

    def decimated(self, factor: int) -> PlaneGrid:
        """The same plane sampled every ``factor`` pixels (level of detail for big images);
        plane millimetres are unchanged, so primitives and the camera stay valid."""
        if factor <= 1:
            return self
        rows, cols = self.shape
        return PlaneGrid(
            self.orientation,
            self.origin,
            self.col_axis,
            self.row_axis,
            self.normal,
            (self.spacing[0] * factor, self.spacing[1] * factor),
            ((rows - 1) // factor + 1, (cols - 1) // factor + 1),
            self.depth_range,
            self.depth_step,
        )

    def edge_letters(self) -> dict[str, str]:
        """Orientation letter at each screen edge (left/right/top/bottom)."""
        from app.study.geometry import direction_letter

        return {
            "right": direction_letter(self.col_axis),
            "left": direction_letter(-self.col_axis),
            "top": direction_letter(self.row_axis),
            "bottom": direction_letter(-self.row_axis),
        }


def _corners(volume: ImageVolume) -> np.ndarray:
    nk, nj, ni = volume.shape
    ijk = np.array([[i, j, k] for i in (0, ni - 1) for j in (0, nj - 1) for k in (0, nk - 1)])
    return volume.index_to_world(ijk.astype(float))


def _spacing_along(volume: ImageVolume, axis: np.ndarray) -> float:
    """Voxel step of the volume axis most aligned with ``axis``, projected on it."""
    steps = volume.direction * volume.spacing_ijk[np.newaxis, :]  # columns: world step of i, j, k
    proj = np.abs(axis @ steps)
    sizes = np.array(volume.shape[::-1])
    proj[sizes <= 1] = 0.0  # a single-slice axis has no meaningful step
    n = int(np.argmax(np.abs(axis @ volume.direction) * (sizes > 1)))
    return float(proj[n]) if proj[n] > 1e-6 else float(min(volume.spacing))


def plane_for(volume: ImageVolume, orientation: str) -> PlaneGrid:
    """The patient-aligned plane family of ``orientation`` covering ``volume``."""
    right, up, normal = (np.array(v, dtype=float) for v in ORIENTATION_AXES[orientation])
    corners = _corners(volume)
    u, v, d = corners @ right, corners @ up, corners @ normal
    su, sv = _spacing_along(volume, right), _spacing_along(volume, up)
    sd = _spacing_along(volume, normal)
    ncol = int(round((u.max() - u.min()) / su)) + 1
    nrow = int(round((v.max() - v.min()) / sv)) + 1
    origin = u.min() * right + v.min() * up
    return PlaneGrid(
        orientation,
        origin,
        right,
        up,
        normal,
        (sv, su),
        (nrow, ncol),
        (float(d.min()), float(d.max())),
        sd,
    )


def native_plane(volume: ImageVolume) -> PlaneGrid:
    """The volume's own slice grid, shown as stored: column i to the right, row j downward.

    Used for radiographs and plain images, which are read in their acquisition frame.
    """
    di, dj, dk = (volume.direction[:, n] for n in range(3))
    nk, nj, ni = volume.shape
    sk, sj, si = volume.spacing
    normal = np.cross(di, dj)
    normal /= np.linalg.norm(normal)
    up = -dj
    bottom_left = volume.index_to_world(np.array([0.0, nj - 1.0, 0.0]))
    origin = bottom_left - (bottom_left @ normal) * normal
    depths = _corners(volume) @ normal
    return PlaneGrid(
        "native",
        origin,
        di.copy(),
        up,
        normal,
        (sj, si),
        (nj, ni),
        (float(depths.min()), float(depths.max())),
        sk if nk > 1 else 1.0,
    )


def _single_axis(step: np.ndarray) -> int | None:
    nz = np.abs(step) > _AXIS_TOL
    return int(np.argmax(nz)) if nz.sum() == 1 else None


def _run_slice(idx: np.ndarray) -> slice:
    """The slice selecting evenly spaced indices (any integer step, either direction)."""
    step = 1 if len(idx) == 1 else int(idx[1] - idx[0])
    stop = int(idx[-1]) + (1 if step > 0 else -1)
    return slice(int(idx[0]), None if stop < 0 else stop, step)


def reslice(
    volume: ImageVolume,
    plane: PlaneGrid,
    depth: float,
    order: int = 0,
    fill: float = 0.0,
    out_dtype: np.dtype | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Sample ``volume`` on ``plane`` at ``depth``; returns (array (rows, cols[, c]), valid mask).

    The mask is None when every pixel fell inside the volume. Nearest neighbour (order 0) for
    label maps; order 1 for images on grids that do not line up with the plane.
    """
    inv = np.linalg.inv(volume.affine_lps())
    m, t = inv[:3, :3], inv[:3, 3]
    p0 = m @ plane.world(0, 0, depth) + t  # fractional (i, j, k) of pixel (0, 0)
    dcol = m @ (plane.col_axis * plane.spacing[1])
    drow = m @ (plane.row_axis * plane.spacing[0])
    nrow, ncol = plane.shape
    arr = volume.array
    size_ijk = np.array(volume.shape[::-1])
    ac, ar = _single_axis(dcol), _single_axis(drow)
    if ac is not None and ar is not None and ac != ar:
        # Fast path: the plane runs along two voxel axes (possibly flipped, possibly another
        # spacing): two 1-D index vectors and one fancy-index take, no per-pixel coordinates.
        aw = 3 - ac - ar
        w = int(round(p0[aw]))
        cols = np.rint(p0[ac] + np.arange(ncol) * dcol[ac]).astype(np.intp)
        rows = np.rint(p0[ar] + np.arange(nrow) * drow[ar]).astype(np.intp)
        cvalid = (cols >= 0) & (cols < size_ijk[ac])
        rvalid = (rows >= 0) & (rows < size_ijk[ar])
        dtype = out_dtype or arr.dtype
        out_shape = (nrow, ncol) + arr.shape[3:]
        if not (0 <= w < size_ijk[aw]) or not cvalid.any() or not rvalid.any():
            return np.full(out_shape, fill, dtype=dtype), np.zeros((nrow, ncol), bool)
        integral = all(
            abs(s - round(s)) < _AXIS_TOL and round(s) != 0 for s in (dcol[ac], drow[ar])
        )
        if integral and cvalid.all() and rvalid.all():
            # plain strided view: no gather at all (the common case: a layer on the same grid)
            sl = arr[(slice(None),) * (2 - aw) + (w,)]
            rem = sorted(2 - n for n in (0, 1, 2) if n != aw)
            rsl, csl = _run_slice(rows), _run_slice(cols)
            if rem.index(2 - ar) == 0:
                out = sl[rsl, csl]
            else:
                out = np.swapaxes(sl[csl, rsl], 0, 1)
            if out_dtype is not None and out.dtype != out_dtype:
                out = out.astype(out_dtype)
            return out, None
        np.clip(cols, 0, size_ijk[ac] - 1, out=cols)
        np.clip(rows, 0, size_ijk[ar] - 1, out=rows)
        # array axes are (k, j, i): ijk axis n is array axis 2 - n
        sl = arr[(slice(None),) * (2 - aw) + (w,)]  # a view: 2-D (+ channels), array order
        rem = sorted(2 - n for n in (0, 1, 2) if n != aw)  # remaining array axes
        # after the take, the remaining axes keep their relative order
        r_ax = rem.index(2 - ar)
        if r_ax == 0:
            out = sl[rows[:, None], cols[None, :]]
        else:
            out = sl[cols[None, :], rows[:, None]]
        if out_dtype is not None and out.dtype != out_dtype:
            out = out.astype(out_dtype)
        if cvalid.all() and rvalid.all():
            return out, None
        valid = rvalid[:, None] & cvalid[None, :]
        out[~valid] = fill
        return out, valid
    # General path (oblique or sheared grids): per-pixel coordinates through world space.
    rr, cc = np.mgrid[0:nrow, 0:ncol].astype(np.float32)
    coords_ijk = p0[:, None, None] + dcol[:, None, None] * cc + drow[:, None, None] * rr
    coords_kji = coords_ijk[::-1]
    valid = np.all((coords_ijk > -0.5) & (coords_ijk < size_ijk[:, None, None] - 0.5), axis=0)
    data = arr if arr.ndim == 3 else None
    if data is not None:
        out = ndimage.map_coordinates(
            data, coords_kji, order=order, mode="nearest", output=out_dtype or data.dtype
        )
    else:
        out = np.stack(
            [
                ndimage.map_coordinates(arr[..., c], coords_kji, order=order, mode="nearest")
                for c in range(arr.shape[3])
            ],
            axis=-1,
        )
        if out_dtype is not None:
            out = out.astype(out_dtype)
    if valid.all():
        return out, None
    out[~valid] = fill
    return out, valid


def sample_at(volume: ImageVolume, xyz: np.ndarray) -> float | None:
    """Nearest voxel value at a world point, or None outside the volume."""
    ijk = np.rint(volume.world_to_index(np.asarray(xyz, dtype=float))).astype(int)
    nk, nj, ni = volume.shape
    i, j, k = ijk
    if not (0 <= i < ni and 0 <= j < nj and 0 <= k < nk):
        return None
    v = volume.array[k, j, i]
    return float(np.mean(v)) if np.ndim(v) else float(v)
