"""The label-map editor: tools acting on one label-map layer's array, every change undoable.

``LabelEditor`` edits the ``LabelMapOverlay``'s array in place (the views draw that same array)
and records one sparse ``Diff`` per stroke or operation in its ``History``. Positions come in as
world (LPS) points with the view plane's normal, so the same calls serve a radiograph, every
CT/MR orientation and a layer on another grid than the image. Listeners hear ``("changed",
box)`` after each dab, undo or redo, with the index box (k, j, i slices) that changed, so a view
redraws only when its slice was touched.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import numpy as np

from app.editing import tools
from app.editing.brush import BrushShape, covered
from app.editing.history import Diff, History
from app.findings.types import LabelMapOverlay
from app.study.geometry import ImageVolume

Box = tuple[slice, slice, slice]
ChangeListener = Callable[[str, "Box | None"], None]
MIN_RADIUS_VOXELS = 0.5


class Tool(StrEnum):
    BRUSH = "brush"
    ERASER = "eraser"
    FILL = "fill"


def empty_labels(image: ImageVolume, name: str = "New mask") -> LabelMapOverlay:
    """A new empty label map on a series' grid (uint8: 255 labels; widened when needed)."""
    zeros = np.zeros(image.shape, dtype=np.uint8)
    return LabelMapOverlay(name, image=image.with_array(zeros), labels={1: (name, (255, 0, 0))})


def box_of(shape: tuple[int, ...], flat_idx: np.ndarray) -> Box | None:
    if flat_idx.size == 0:
        return None
    k, j, i = np.unravel_index(flat_idx, shape)
    return (
        slice(int(k.min()), int(k.max()) + 1),
        slice(int(j.min()), int(j.max()) + 1),
        slice(int(i.min()), int(i.max()) + 1),
    )


class LabelEditor:
    """Brush, eraser, fill, threshold paint, island removal and slice interpolation on a layer."""

    def __init__(
        self,
        overlay: LabelMapOverlay,
        intensity: ImageVolume | None = None,
        max_steps: int = 100,
        history: History | None = None,
    ) -> None:
        if overlay.image is None:
            raise ValueError(f"label map '{overlay.name}' has no image")
        arr = overlay.image.array
        fine = arr.flags.writeable and arr.flags.c_contiguous
        if not np.issubdtype(arr.dtype, np.integer) or not fine:
            # a model may hand out a read-only or float map; the editor works on its own copy
            overlay.image.array = np.array(arr, dtype=np.int32 if arr.dtype.kind == "f" else None)
        self.overlay = overlay
        self.intensity = intensity
        # a recovered layer brings its own history (its undo stack survives the crash)
        self.history = history or History(overlay.image.array, max_steps)
        if self.history.data is not overlay.image.array:
            raise ValueError("the history must be over the layer's own array")
        self.tool = Tool.BRUSH
        self.label = min((v for v in overlay.labels if v > 0), default=1)
        spacing = min(overlay.image.spacing[1:])
        self.radius_mm = 5.0 * spacing
        self.sphere = False  # 3D brush
        self.intensity_range: tuple[float, float] | None = None
        self.threshold_paint = False  # brush paints only where the intensity lies in the range
        self._listeners: list[ChangeListener] = []
        self._stroke: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._stroke_value = 0
        self._stroke_normal: np.ndarray | None = None
        self._last: np.ndarray | None = None
        self._same_grid: bool | None = None

    # ---- state ------------------------------------------------------------
    @property
    def image(self) -> ImageVolume:
        assert self.overlay.image is not None
        return self.overlay.image

    @property
    def data(self) -> np.ndarray:
        return self.image.array

    @property
    def voxel_mm(self) -> float:
        return float(min(self.image.spacing[1:]))

    def subscribe(self, fn: ChangeListener) -> None:
        self._listeners.append(fn)

    def unsubscribe(self, fn: ChangeListener) -> None:
        self._listeners = [f for f in self._listeners if f != fn]

    def _changed(self, box: Box | None) -> None:
        for fn in list(self._listeners):
            fn("changed", box)

    def set_label(
        self, value: int, name: str = "", rgb: tuple[int, int, int] | None = None
    ) -> None:
        """Choose the value painted; a new value gets a table entry, and a value the array's
        type cannot hold widens the array (the history follows it)."""
        value = int(value)
        if value <= 0:
            raise ValueError("label values start at 1 (0 is background)")
        if value > np.iinfo(self.data.dtype).max:
            wide = self.data.astype(np.int32)
            self.image.array = wide
            self.history.data = wide
        if value not in self.overlay.labels or name or rgb:
            from app.findings.colormaps import label_colour

            old = self.overlay.labels.get(value, (f"label {value}", label_colour(value)))
            self.overlay.labels[value] = (name or old[0], tuple(rgb or old[1]))
        self.label = value

    def set_radius(self, radius_mm: float) -> None:
        self.radius_mm = float(max(radius_mm, MIN_RADIUS_VOXELS * self.voxel_mm))

    def grow(self, steps: int = 1) -> None:
        """Brush size up (or down, negative) by one voxel per step (``[`` and ``]``)."""
        self.set_radius(self.radius_mm + steps * self.voxel_mm)

    # ---- brush and eraser ---------------------------------------------------
    def begin_stroke(self, xyz, normal=None, erase: bool = False) -> None:
        """Start a stroke at a world point on the plane with ``normal`` (Ctrl held: ``erase``)."""
        self._stroke = []
        self._stroke_value = 0 if (erase or self.tool == Tool.ERASER) else self.label
        self._stroke_normal = None if self.sphere or normal is None else np.asarray(normal, float)
        self._last = np.asarray(xyz, dtype=float)
        self._paint_segment(self._last, self._last)

    def continue_stroke(self, xyz) -> None:
        if self._stroke is None:
            return
        point = np.asarray(xyz, dtype=float)
        if self._stroke_normal is not None:
            # keep the stroke on the plane it began on, whatever the picking returned
            n = self._stroke_normal / np.linalg.norm(self._stroke_normal)
            point = point - ((point - self._last) @ n) * n
        self._paint_segment(self._last, point)
        self._last = point

    def end_stroke(self) -> Diff | None:
        if self._stroke is None:
            return None
        parts, self._stroke = self._stroke, None
        if not parts:
            return None
        idx = np.concatenate([p[0] for p in parts])
        old = np.concatenate([p[1] for p in parts])
        new = np.full(idx.shape, self._stroke_value, dtype=self.data.dtype)
        label = "eraser" if self._stroke_value == 0 else "brush"
        diff = Diff.from_changes(idx, old, new, label)
        self.history.record(diff)
        return diff

    def _paint_segment(self, a: np.ndarray, b: np.ndarray) -> None:
        hit = covered(self.image, a, b, BrushShape(self.radius_mm, self._stroke_normal))
        if hit is None:
            return
        box, mask = hit
        if self.threshold_paint and self.intensity_range is not None:
            mask &= tools.in_range(self._intensity_box(box), self.intensity_range)
        view = self.data[box]
        mask &= view != self._stroke_value
        local = np.flatnonzero(mask)
        if local.size == 0:
            return
        kk, jj, ii = np.unravel_index(local, mask.shape)
        flat = np.ravel_multi_index(
            (kk + box[0].start, jj + box[1].start, ii + box[2].start), self.data.shape
        )
        assert self._stroke is not None
        self._stroke.append((flat, view[kk, jj, ii].copy()))
        view[kk, jj, ii] = self._stroke_value
        self._changed(box)

    # ---- intensity-driven tools ---------------------------------------------
    def _intensity_box(self, box: Box) -> np.ndarray:
        if self.intensity is None:
            raise ValueError("this tool needs the image's intensities; none was given")
        if self._same_grid is None:
            self._same_grid = tools.same_grid(self.image, self.intensity)
        return tools.intensity_on(self.image, self.intensity, box, self._same_grid)

    def fill(self, xyz, normal=None, erase: bool = False, three_d: bool = False) -> Diff | None:
        """Flood fill from ``xyz``: the connected voxels whose intensity lies in
        ``intensity_range`` (or, without a range, that share the seed's label), on the view's
        slice of the label map, or in 3D."""
        seed = tools.seed_index(self.image, xyz)
        if seed is None:
            return None
        axis = None if three_d or normal is None else tools.slice_axis(self.image, normal)
        box = tools.slab(self.data.shape, seed, axis)
        if self.intensity_range is not None:
            allowed = tools.in_range(self._intensity_box(box), self.intensity_range)
        else:
            allowed = self.data[box] == self.data[seed]
        region = tools.component_at(
            allowed, tuple(s - b.start for s, b in zip(seed, box, strict=True))
        )
        value = 0 if (erase or self.tool == Tool.ERASER) else self.label
        return self._write(box, region, value, "fill")

    def _write(self, box: Box, mask: np.ndarray, value: int, label: str) -> Diff | None:
        view = self.data[box]
        mask = mask & (view != value)
        local = np.flatnonzero(mask)
        if local.size == 0:
            return None
        kk, jj, ii = np.unravel_index(local, mask.shape)
        flat = np.ravel_multi_index(
            (kk + box[0].start, jj + box[1].start, ii + box[2].start), self.data.shape
        )
        old = view[kk, jj, ii].copy()
        view[kk, jj, ii] = value
        diff = Diff.from_changes(flat, old, np.full(flat.shape, value, self.data.dtype), label)
        self.history.record(diff)
        self._changed(box)
        return diff

    # ---- whole-label operations ---------------------------------------------
    def remove_islands(self, min_voxels: int) -> Diff | None:
        """Clear the current label's connected pieces smaller than ``min_voxels``."""
        full = self._everything()
        return self._clear(tools.small_islands(self.data == self.label, min_voxels), full)

    def keep_largest(self) -> Diff | None:
        """Clear every piece of the current label but the largest."""
        full = self._everything()
        return self._clear(tools.all_but_largest(self.data == self.label), full, "keep largest")

    def _everything(self) -> Box:
        return tuple(slice(0, n) for n in self.data.shape)  # type: ignore[return-value]

    def _clear(self, mask: np.ndarray, box: Box, label: str = "remove islands") -> Diff | None:
        return self._write(box, mask, 0, label)

    def interpolate(self, axis: int = 0) -> Diff | None:
        """Fill the empty slices between slices holding the current label (shape-based
        interpolation of signed distances); voxels of other labels are left alone."""
        add = tools.interpolate_slices(self.data == self.label, axis, self.image.spacing)
        add &= self.data == 0
        return self._write(self._everything(), add, self.label, "interpolate")

    # ---- undo ---------------------------------------------------------------
    def undo(self) -> Diff | None:
        diff = self.history.undo()
        if diff is not None:
            self._changed(box_of(self.data.shape, diff.indices()))
        return diff

    def redo(self) -> Diff | None:
        diff = self.history.redo()
        if diff is not None:
            self._changed(box_of(self.data.shape, diff.indices()))
        return diff
