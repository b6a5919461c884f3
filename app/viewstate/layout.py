"""Layouts of the view area (1x1, 1x2, 2x2, 1+2), what each cell shows, and the hanging
protocol that picks a layout for a task. Plain data, no Qt: ``app.ui.layouts`` lays widgets out
from these answers.

A cell shows one plane of one series. The shown series comes first: a volume's three planes
(the acquisition plane first, so the large cell of 1+2 holds it), then the study's other
series (their acquisition plane), so 1x2 on a spine study is the AP beside the lateral and 1x2 on
an MR study with two sagittal series puts them side by side. A cell left over stays empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.study.model import Series
from app.viewstate.planes import ORIENTATIONS


@dataclass(frozen=True)
class Cell:
    """A rectangle of the layout's grid (row, column, and how many of each it spans)."""

    row: int
    col: int
    rows: int = 1
    cols: int = 1


@dataclass(frozen=True)
class Layout:
    name: str  # "1x2": the settings key and the menu's short name
    title: str  # what the menu says
    cells: tuple[Cell, ...]  # in filling order
    col_stretch: tuple[int, ...]  # relative widths of the grid's columns
    row_stretch: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.cells)

    def fractions(self) -> list[tuple[float, float, float, float]]:
        """Each cell as (x0, y0, x1, y1) fractions of the area: what a test checks the drawn
        views against."""
        cx = np.concatenate([[0.0], np.cumsum(self.col_stretch)]) / sum(self.col_stretch)
        ry = np.concatenate([[0.0], np.cumsum(self.row_stretch)]) / sum(self.row_stretch)
        return [
            (
                float(cx[c.col]),
                float(ry[c.row]),
                float(cx[c.col + c.cols]),
                float(ry[c.row + c.rows]),
            )  # fmt: skip
            for c in self.cells
        ]


LAYOUTS: dict[str, Layout] = {
    "1x1": Layout("1x1", "1 x 1", (Cell(0, 0),), (1,), (1,)),
    "1x2": Layout("1x2", "1 x 2 (side by side)", (Cell(0, 0), Cell(0, 1)), (1, 1), (1,)),
    "2x2": Layout("2x2", "2 x 2", (Cell(0, 0), Cell(0, 1), Cell(1, 0), Cell(1, 1)), (1, 1), (1, 1)),
    # one large cell on the left, two stacked on the right (the viewer's MPR since 0.1)
    "1+2": Layout(
        "1+2",
        "1 + 2 (one large, two small)",
        (Cell(0, 0, 2, 1), Cell(0, 1), Cell(1, 1)),
        (3, 2),
        (1, 1),
    ),  # fmt: skip
}
DEFAULT_LAYOUT = "1+2"


def layout_named(name: str) -> Layout:
    """The layout called ``name``; an unknown name (an old settings file) gives the default."""
    return LAYOUTS.get(str(name), LAYOUTS[DEFAULT_LAYOUT])


def acquisition_first(volume) -> tuple[str, ...]:
    """The three orientations with the one the slices were acquired in first (the large view):
    a sagittal MR opens on its sagittal slices, an axial CT on axial ones."""
    axis = int(np.argmax(np.abs(volume.direction[:, 2])))
    first = ("sagittal", "coronal", "axial")[axis]
    return (first, *[o for o in ORIENTATIONS if o != first])


def planes_of(series: Series) -> tuple[str, ...]:
    return ("native",) if series.image.is_2d else acquisition_first(series.image)


def displayable(series: Series) -> bool:
    """A series a cell can show on its own (a label map is drawn over its image instead)."""
    return series.kind != "labelmap"


@dataclass(frozen=True)
class CellView:
    """What one cell shows: one plane of one series."""

    series: Series
    plane: str  # "axial", "sagittal", "coronal" or "native"


def plan_cells(
    layout: Layout, shown: Series, study_series: Sequence[Series] = ()
) -> list[CellView | None]:
    """What each cell of ``layout`` shows (None: nothing), in the layout's cell order.

    ``study_series`` is the study's series in the order they should fill the cells (a task's
    slot order: AP before lateral); the shown series keeps its place among them when it is a
    radiograph, and a volume's planes come first."""
    others = [s for s in study_series if s is not shown and displayable(s)]
    if shown.image.is_2d:
        ordered = list(study_series) if any(s is shown for s in study_series) else [shown]
        ordered = [s for s in ordered if s is shown or any(s is o for o in others)]
        views = [CellView(s, planes_of(s)[0]) for s in ordered]
        if len(views) > layout.size:  # the shown one always gets a cell
            views = views[: layout.size]
            if not any(v.series is shown for v in views):
                views[-1] = CellView(shown, "native")
    else:
        mine = [CellView(shown, p) for p in planes_of(shown)]
        theirs = [CellView(s, planes_of(s)[0]) for s in others]
        # side by side: the next series beside this one (T1 beside T2), else a second plane
        views = [mine[0], *theirs, *mine[1:]] if layout.size == 2 else [*mine, *theirs]
    views = views[: layout.size]
    return views + [None] * (layout.size - len(views))


def hanging_layout(spec) -> str:
    """The layout a task's study opens in: the task's own ``layout`` if it declares one, else
    from its image inputs: two radiographs side by side (1x2), three or more in 2x2, a volume
    in MPR with the acquisition plane large (1+2: axial CT, sagittal MR), a radiograph 1x1.

    ``spec`` is an ``app.engine.task.TaskSpec`` (read by its fields: this layer does not import
    the engine)."""
    declared = getattr(spec, "layout", "")
    if declared in LAYOUTS:
        return declared
    images = [s for s in spec.slots if not s.is_mask]
    if len(images) >= 3:
        return "2x2"
    if len(images) == 2:
        return "1x2"
    if images and "volume" in images[0].kinds:
        return "1+2"
    return "1x1"


def layout_for_panes(n: int, preferred: str) -> Layout:
    """A layout with room for ``n`` inputs: the preferred one if it has room, else the smallest
    that has."""
    chosen = layout_named(preferred)
    if chosen.size >= n:
        return chosen
    return min((lo for lo in LAYOUTS.values() if lo.size >= n), key=lambda lo: lo.size,
               default=LAYOUTS["2x2"])  # fmt: skip


def links_scroll(a: Series | None, b: Series | None) -> bool:
    """Linked scrolling joins two volumes of one study (their slices follow one world point);
    a radiograph has no slices to follow."""
    return a is not None and b is not None and not a.image.is_2d and not b.image.is_2d


def links_window(a: Series | None, b: Series | None) -> bool:
    """Linked window/level joins series of the same modality (a CT window means nothing on MR)."""
    if a is None or b is None:
        return False
    return (a.modality or "").upper() == (b.modality or "").upper()
