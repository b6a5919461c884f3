"""Redraw only the part of a view a dab changed (Qt-free): the editor reports the index box it
touched; this maps the box onto the view's plane and recomposes that rectangle alone.

Composing a whole 512x512 view (reslice, window, labels) costs more than the issue's 16 ms
budget for a dab on this machine; a 10-voxel dab touches a 21x21 patch. The rectangle is grown
by a margin so the label edges (drawn where a neighbour differs) come out as in a full redraw,
and ``compose_view`` itself draws it: one composition, whether whole or in part.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from app.study.geometry import ImageVolume
from app.viewstate.compose import compose_view
from app.viewstate.layers import Layer
from app.viewstate.planes import PlaneGrid
from app.viewstate.windowing import WindowLevel

Box = tuple[slice, slice, slice]
# A changed pixel can change the edge status of its 4-neighbours, and an edge is computed from
# a pixel's own 4-neighbours: so the patch reaches two pixels beyond the change (one more for
# rounding) and only its interior, one pixel in, is pasted.
GROW, TRIM = 3, 1


def plane_rect(plane: PlaneGrid, labels: ImageVolume, box: Box) -> tuple[int, int, int, int] | None:
    """(r0, r1, c0, c1) of the view pixels covering an index box of ``labels`` (grown by GROW)."""
    ks, js, is_ = (range(s.start, s.stop) for s in box)
    corners = np.array([[i, j, k] for i in (is_[0] - 0.5, is_[-1] + 0.5)
                        for j in (js[0] - 0.5, js[-1] + 0.5) for k in (ks[0], ks[-1])])  # fmt: skip
    rc = plane.to_plane(labels.index_to_world(corners))[:, :2]
    r0, c0 = np.floor(rc.min(axis=0)).astype(int) - GROW
    r1, c1 = np.ceil(rc.max(axis=0)).astype(int) + GROW + 1
    r0, c0 = max(r0, 0), max(c0, 0)
    r1, c1 = min(r1, plane.shape[0]), min(c1, plane.shape[1])
    if r1 <= r0 or c1 <= c0:
        return None
    return int(r0), int(r1), int(c0), int(c1)


def sub_plane(plane: PlaneGrid, rect: tuple[int, int, int, int]) -> PlaneGrid:
    r0, r1, c0, c1 = rect
    origin = plane.origin + r0 * plane.spacing[0] * plane.row_axis
    origin = origin + c0 * plane.spacing[1] * plane.col_axis
    return replace(plane, origin=origin, shape=(r1 - r0, c1 - c0))


def patch_view(
    rgb: np.ndarray,
    base: ImageVolume,
    window: WindowLevel,
    plane: PlaneGrid,
    depth: float,
    layers: list[Layer],
    labels: ImageVolume,
    box: Box,
) -> tuple[int, int, int, int] | None:
    """Recompose the part of ``rgb`` (a view's composed pixels) that ``box`` changed; returns
    the rectangle redrawn, None when the box is not on this view."""
    rect = plane_rect(plane, labels, box)
    if rect is None:
        return None
    if plane.n_slices > 1:
        # a view shows one plane: skip a change whose voxels all lie off it
        ks, js, is_ = ((s.start - 0.5, s.stop - 0.5) for s in box)
        corners = np.array([[i, j, k] for i in is_ for j in js for k in ks])
        depths = plane.to_plane(labels.index_to_world(corners))[:, 2]
        if depth < depths.min() - 1e-6 or depth > depths.max() + 1e-6:
            return None
    r0, r1, c0, c1 = rect
    part = compose_view(base, window, sub_plane(plane, rect), depth, layers)
    # interior only: at the patch's own border the label edges are unknown
    a0, a1 = (TRIM if r0 > 0 else 0), (r1 - r0) - (TRIM if r1 < plane.shape[0] else 0)
    b0, b1 = (TRIM if c0 > 0 else 0), (c1 - c0) - (TRIM if c1 < plane.shape[1] else 0)
    rgb[r0 + a0 : r0 + a1, c0 + b0 : c0 + b1] = part.rgb[a0:a1, b0:b1]
    return rect
