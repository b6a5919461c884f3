"""Widgets in a layout's cells, and the link that makes views of one study scroll and window
together. What goes in which cell is decided in ``app.viewstate.layout``; this module only
places widgets and forwards moves.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from app.study.model import Series
from app.viewstate.layout import (
    CellView,
    Layout,
    layout_named,
    links_scroll,
    links_window,
    plan_cells,
)

EMPTY_CELL_TEXT = "(empty: no further series or plane to show)"


class ViewGrid(QtWidgets.QWidget):
    """A QGridLayout that takes a ``Layout``: widgets go in its cells with its stretches."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.grid = QtWidgets.QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        self.layout_shown: Layout | None = None
        self._empty: list[QtWidgets.QLabel] = []

    def arrange(self, layout: Layout, widgets: list[QtWidgets.QWidget | None]) -> None:
        """Put ``widgets[n]`` in cell n (None: an empty cell that says so). Widgets already in
        the grid and not given again are only taken out (their owner deletes them)."""
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None and item.widget() not in widgets:
                item.widget().hide()
        for label in self._empty:
            label.setParent(None)
            label.deleteLater()
        self._empty = []
        for n in range(3):  # a previous layout's stretches must not linger
            self.grid.setColumnStretch(n, 0)
            self.grid.setRowStretch(n, 0)
        for n, stretch in enumerate(layout.col_stretch):
            self.grid.setColumnStretch(n, stretch)
        for n, stretch in enumerate(layout.row_stretch):
            self.grid.setRowStretch(n, stretch)
        for cell, widget in zip(layout.cells, widgets, strict=False):
            if widget is None:
                widget = QtWidgets.QLabel(EMPTY_CELL_TEXT)
                widget.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
                widget.setStyleSheet("background: #202020; color: #808080;")
                self._empty.append(widget)
            # equal size hints, so that the stretches alone share the room out
            widget.setSizePolicy(
                QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Ignored
            )
            self.grid.addWidget(widget, cell.row, cell.col, cell.rows, cell.cols)
            widget.show()
        self.layout_shown = layout


class ViewLinker(QtCore.QObject):
    """Linked scrolling and window/level between view areas (OHIF's "link", on by default):
    a scroll in one volume moves every other volume of the study to the same world point, so
    their slices of the same plane follow; a window change is copied to the areas of the same
    modality. Areas are ``ViewArea`` objects (their ``moved`` and ``window_changed`` signals)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.enabled = True
        self.areas: list = []
        self._busy = False

    def set_areas(self, areas: list) -> None:
        for area in self.areas:
            try:
                area.moved.disconnect(self._on_moved)
                area.window_changed.disconnect(self._on_window)
            except (RuntimeError, TypeError):  # already gone with its widget
                pass
        self.areas = list(areas)
        for area in self.areas:
            area.moved.connect(self._on_moved)
            area.window_changed.connect(self._on_window)

    def _others(self, source):
        return [a for a in self.areas if a is not source and a.series is not None]

    def _on_moved(self, _view: str = "") -> None:
        source = self.sender()
        if not self.enabled or self._busy or source is None or source.cross is None:
            return
        for area in self._others(source):
            if area.cross is not None and links_scroll(source.series, area.series):
                area.cross.set_point(source.cross.point)
                area.request_update()

    def _on_window(self) -> None:
        source = self.sender()
        if not self.enabled or self._busy or source is None or source.window is None:
            return
        for area in self._others(source):
            if area.window is not None and links_window(source.series, area.series):
                area.window.center = source.window.center
                area.window.width = source.window.width
                area.window.invert = source.window.invert
                area.request_update()


def make_guests(host, cells: list[CellView]) -> list[tuple[object, list]]:
    """One guest ``ViewArea`` per other series the host's layout shows: its own window and
    crosshair, the layers of its series, its views placed in the host's grid. Returns (guest,
    its new views) pairs; the host's previous guests are released."""
    for guest in host.guests:
        guest.shutdown()
        guest._drop_views()
        guest.setParent(None)
        guest.deleteLater()
    host.guests, made = [], []
    others: list[Series] = []
    for cv in cells:  # each other series once, in cell order (by identity: no hashing)
        if not any(cv.series is o for o in others):
            others.append(cv.series)
    for series in others:
        what = " ".join(p for p in (series.modality, series.description) if p)
        guest = type(host)(
            host.layers,
            host,
            layer_filter=lambda la, uid=series.series_uid: la.series_uid == uid,
            title=what or series.series_uid,
        )
        guest.hide()  # only its views show, in the host's grid
        guest.status.connect(host.status)
        views = guest._show(series, [cv for cv in cells if cv.series is series])
        host.guests.append(guest)
        made.append((guest, views))
    return made


def cell_widget(host, cv: CellView | None):
    """The view that shows ``cv``: the host's own or one of its guests'."""
    if cv is None:
        return None
    area = (
        host if cv.series is host.series else next(g for g in host.guests if g.series is cv.series)
    )
    return area.views[cv.plane]


class GridPlacement:
    """A ``ViewArea``'s layout: which of its planes and which guest series go in which cell
    (a mixin: it uses the area's ``grid``, ``views``, ``guests``, ``linker``, ``_show`` and
    ``_start``)."""

    def set_layout(self, name: str) -> None:
        """Lay the shown series out anew; its crosshair and window are kept."""
        self.layout_name = layout_named(name).name
        if self.series is None:
            return
        point = None if self.cross is None else self.cross.point.copy()
        window = self.window
        self.set_series(self.series)
        if point is not None:
            self.cross.set_point(point)
        if window is not None:
            self.window = window
        self.request_update()

    def set_series(self, series: Series, study_series: list[Series] | None = None) -> None:
        """Show ``series`` in this area's layout; ``study_series`` (the study's series in the
        order cells take them) fill the cells its own planes leave."""
        if study_series is not None:
            self.study_series = list(study_series)
        self._placeholder.hide()
        plan = plan_cells(layout_named(self.layout_name), series, self.study_series)
        fresh = self._show(series, [cv for cv in plan if cv is not None and cv.series is series])
        guests = make_guests(
            self, [cv for cv in plan if cv is not None and cv.series is not series]
        )
        self.grid.arrange(layout_named(self.layout_name), [cell_widget(self, cv) for cv in plan])
        self._start(fresh)
        for guest, views in guests:
            guest._start(views)
        self.linker.set_areas([self, *self.guests])
