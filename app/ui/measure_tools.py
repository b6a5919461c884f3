"""The measuring tools on the views: angle (three clicks), Cobb angle (two lines, four clicks),
ellipse and rectangle ROIs (drag, or two clicks); the ruler's lines are kept as lengths.

``install_measurements(window)`` adds the Measure menu (each tool with its shortcut), the
Measurements dock, the window/level dialog and the DICOM tag browser to the main window. An
event filter on the application sees the views' mouse: while a tool is on, the left button
places points (right-drag zoom, middle-drag pan and the wheel still reach the view); a ruler
drag that ends is turned into a Length measurement. The geometry is
``app.viewstate.measurements`` (Qt-free, tested headless); drawing is ``measure_draw``.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence

from app.ui.measure_draw import MeasureOverlay
from app.ui.measure_panel import MeasurementPanel
from app.ui.slice_view import SliceView
from app.viewstate.measurements import (
    POINTS_NEEDED,
    ROI_KINDS,
    TITLES,
    Measurement,
    MeasurementList,
    measure,
    world_of,
)

# tool -> (menu title, shortcut); A/O are free of the view's keys (R ruler, I invert, 1-9
# presets) and of the mask editor's (B, E, F)
TOOL_KEYS = {
    "angle": ("&Angle", "A"),
    "cobb": ("&Cobb angle", "Shift+A"),
    "ellipse": ("&Ellipse ROI", "O"),
    "rectangle": ("Rec&tangle ROI", "Shift+O"),
}
_SLOP_PX = 4


class MeasureTools(QtCore.QObject):
    """The active tool, the points placed so far, and the views' overlays."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.measurements = MeasurementList()
        self.tool: str | None = None
        # points placed so far: (area, view name, depth, plane-mm points)
        self._pending: tuple[object, str, float, list[tuple[float, float]]] | None = None
        self._press_xy: QtCore.QPointF | None = None
        self.measurements.subscribe(self._on_changed)
        QtWidgets.QApplication.instance().installEventFilter(self)

    # ---- which view is where ---------------------------------------------------------
    def areas(self) -> list:
        """The areas on screen, with the areas of other series a layout shows beside them."""
        out = []
        for area in self.window.visible_view_areas():
            out += [area, *getattr(area, "guests", [])]
        return out

    def where(self, view: SliceView) -> tuple[object, str] | None:
        for area in self.areas():
            for name, v in area.views.items():
                if v is view:
                    return area, name
        return None

    def overlay(self, view: SliceView) -> MeasureOverlay:
        ov = getattr(view, "_measure_overlay", None)
        if ov is None:
            ov = MeasureOverlay(view, self.where, self.measurements)
            view._measure_overlay = ov
        return ov

    def redraw(self) -> None:
        for area in self.areas():
            for view in area.views.values():
                self.overlay(view).invalidate()
                view.render()

    def _on_changed(self, _what: str, _m) -> None:
        self.redraw()

    # ---- tools -------------------------------------------------------------------------
    def set_tool(self, tool: str | None) -> None:
        self.cancel()
        self.tool = tool
        if tool is not None:  # one left-button tool at a time
            for area in self.areas():
                if any(v.ruler_mode for v in area.views.values()):
                    area.set_ruler_mode(False)
            editor = getattr(self.window, "mask_editor", None)
            if editor is not None and editor.editor is not None:
                editor.stop()  # its edits stay in the journal and the layer
        self.window.statusBar().showMessage(self._hint(), 8000)

    def _hint(self) -> str:
        if self.tool is None:
            return "Measuring off"
        n = POINTS_NEEDED[self.tool]
        how = "drag, or click two corners" if self.tool in ROI_KINDS else f"click {n} points"
        if self.tool == "cobb":
            how = "click the two ends of one endplate, then of the other"
        return f"{TITLES[self.tool]}: {how}; Esc cancels"

    def cancel(self) -> None:
        if self._pending is not None:
            area, name, _, _ = self._pending
            self._pending = None
            if name in area.views:
                ov = self.overlay(area.views[name])
                ov.pending = None
                area.views[name].render()

    # ---- events --------------------------------------------------------------------------
    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 - Qt's name
        if not isinstance(obj, SliceView):
            return False
        kind = ev.type()
        if kind == QEvent.Type.Show:
            self.overlay(obj)
            return False
        if kind == QEvent.Type.MouseButtonRelease and obj.ruler_mode:
            QtCore.QTimer.singleShot(0, lambda v=obj: self._keep_ruler(v))
            return False
        if self.tool is None:
            return False
        escape = kind in (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride) and (
            ev.key() == Qt.Key.Key_Escape
        )
        if escape and self._pending:
            if kind == QEvent.Type.ShortcutOverride:
                ev.accept()  # the key is ours while points are pending, not a menu shortcut's
            else:
                self.cancel()
            return True
        left = getattr(ev, "button", lambda: None)() == Qt.MouseButton.LeftButton
        if kind == QEvent.Type.MouseButtonPress and left:
            return self._press(obj, ev.position())
        if kind == QEvent.Type.MouseMove and self._pending is not None:
            self._move(obj, ev.position())
            return bool(ev.buttons() & Qt.MouseButton.LeftButton)
        if kind == QEvent.Type.MouseButtonRelease and left:
            return self._release(obj, ev.position())
        if kind == QEvent.Type.MouseButtonDblClick and left:
            return True  # not a window/level reset nor a crosshair jump while measuring
        return False

    def _press(self, view: SliceView, pos) -> bool:
        where = self.where(view)
        if where is None or where[0].cross is None:
            return False
        area, name = where
        view.setFocus()
        depth = area.cross.depth(name)
        xy = view.to_plane_mm(pos)
        p = self._pending
        if p is None or p[0] is not area or p[1] != name or abs(p[2] - depth) > 1e-6:
            self.cancel()  # another view or another slice: start again there
            self._pending = (area, name, depth, [xy])
        else:
            p[3].append(xy)
        self._press_xy = pos
        self._after_point(view)
        return True

    def _move(self, view: SliceView, pos) -> None:
        area, name, _, pts = self._pending
        if area.views.get(name) is not view:
            return
        ov = self.overlay(view)
        ov.pending = (self.tool, np.array([*pts, view.to_plane_mm(pos)]))
        view.render()

    def _release(self, view: SliceView, pos) -> bool:
        if self._pending is None or self.tool not in ROI_KINDS or self._press_xy is None:
            return self._pending is not None
        d = pos - self._press_xy
        if abs(d.x()) + abs(d.y()) > _SLOP_PX and len(self._pending[3]) == 1:
            self._pending[3].append(view.to_plane_mm(pos))  # a drag: the second corner
            self._after_point(view)
        return True

    def _after_point(self, view: SliceView) -> None:
        area, name, depth, pts = self._pending
        if len(pts) < POINTS_NEEDED[self.tool]:
            self.overlay(view).pending = (self.tool, np.array(pts))
            view.render()
            return
        self._pending = None
        self.overlay(view).pending = None
        self.add(area, name, depth, self.tool, pts)

    def add(self, area, name: str, depth: float, kind: str, pts) -> Measurement:
        """A measurement from plane-mm points on one view of an area (its value computed)."""
        plane = area.cross.planes[name]
        world = [world_of(plane, depth, x, y) for x, y in pts]
        series = area.series
        m = measure(kind, world, plane, series.image, series.modality, series.series_uid,
                    area.cross.slice_index(name) + 1)  # fmt: skip
        self.measurements.add(m)
        self.window.statusBar().showMessage(f"{m.name}: {m.text()}", 10000)
        return m

    def _keep_ruler(self, view: SliceView) -> None:
        """A ruler drag ended: keep its line as a Length measurement (drawn by the overlay)."""
        pts = view.ruler_points()
        where = self.where(view)
        if len(pts) != 2 or where is None or where[0].cross is None:
            return
        if view.ruler_length_mm() < 2 * view.mm_per_screen_pixel():
            view.set_ruler(None, None)  # a click, not a line
            return
        area, name = where
        view.set_ruler(None, None)
        self.add(area, name, area.cross.depth(name), "length", pts)

    # ---- jumping to a measurement -----------------------------------------------------------
    def jump_to(self, m: Measurement) -> None:
        win = self.window
        shown = next((a for a in self.areas() if a.series is not None
                      and a.series.series_uid == m.series_uid), None)  # fmt: skip
        if shown is None:
            from app.ui.slot_actions import SERIES_ROLE

            for n in range(win.browser.count()):
                series = win.browser.item(n).data(SERIES_ROLE)
                if series is not None and series.series_uid == m.series_uid:
                    win.browser.setCurrentRow(n)
                    shown = win.view_area
                    break
        if shown is None:
            win.statusBar().showMessage(f"{m.name}: its series is not loaded", 8000)
            return
        shown.centre_on(m.centre())
        win.statusBar().showMessage(f"{m.name}: {m.text()}", 8000)


def _action(window, menu, title: str, slot, key: str = "", checkable: bool = False) -> QAction:
    act = QAction(title, window)
    if key:
        act.setShortcut(QKeySequence(key))
    act.setCheckable(checkable)
    act.triggered.connect(slot)
    menu.addAction(act)
    return act


def _view_menu(window) -> QtWidgets.QMenu:
    for act in window.menuBar().actions():
        if act.menu() is not None and act.text().replace("&", "") == "View":
            return act.menu()
    return window.menuBar().addMenu("&View")


def install_measurements(window) -> MeasureTools:
    """The Measure menu, the Measurements dock, the window/level dialog and the tag browser."""
    tools = MeasureTools(window)
    window.measure_tools = tools
    window.measurements = tools.measurements
    panel = MeasurementPanel(tools.measurements)
    panel.jump_requested.connect(tools.jump_to)
    tools.panel = panel
    dock = QtWidgets.QDockWidget("Measurements", window)
    dock.setObjectName("Measurements")
    dock.setWidget(panel)
    panel.setMinimumWidth(230)  # name, value and unit readable without scrolling
    dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

    m = window.menuBar().addMenu("&Measure")
    group = QActionGroup(window)
    group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
    tools.actions = {}
    for tool, (title, key) in TOOL_KEYS.items():
        act = _action(window, m, title, lambda on, t=tool: tools.set_tool(t if on else None),
                      key, checkable=True)  # fmt: skip
        group.addAction(act)
        tools.actions[tool] = act
    m.addSeparator()
    _action(window, m, "&Delete selected measurements", panel.delete_selected, "Ctrl+Del")
    _action(window, m, "Delete &all measurements", tools.measurements.clear, "Ctrl+Shift+Del")

    from app.ui.tag_browser import open_tag_browser
    from app.ui.wl_dialog import open_window_level_dialog

    v = _view_menu(window)
    v.addSeparator()
    _action(window, v, "&Window/level and histogram...",
            lambda: open_window_level_dialog(window), "W")  # fmt: skip
    _action(window, v, "DICOM &tags of the shown image...", lambda: open_tag_browser(window),
            "Ctrl+I")  # fmt: skip
    return tools
