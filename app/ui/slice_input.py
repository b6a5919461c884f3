"""What a ``SliceView`` does with the mouse and keys, as OHIF and 3D Slicer users expect: left
drag for window/level (a click without a drag picks a point), right drag zooms, middle drag pans,
the wheel and arrow keys scroll, number keys pick a preset; and the ruler a left drag draws in
ruler mode. The view reports each of these through its signals, in plane millimetres.

A mixin of ``SliceView``: Qt delivers the events to the one widget, and the viewer reaches the
ruler as the view's (``view.ruler_mode``, ``view.ruler_length_mm()``).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6 import QtCore
from PySide6.QtCore import Qt
from vtkmodules.vtkRenderingCore import vtkRenderer

from app.ui.vtk_props import line_actor, polydata, text_actor

_CLICK_SLOP_PX = 3  # a press that moves less than this is a click, not a drag


class SliceInteraction:
    """Mouse, keys and the ruler of a view; the signals (``clicked``, ``hovered``...), camera
    moves and ``to_plane_mm`` are the view's own."""

    renderer: vtkRenderer

    def _build_interaction(self) -> None:
        self.ruler_mode = False
        self._drag_button: Qt.MouseButton | None = None
        self._press_pos: QtCore.QPointF | None = None
        self._last_pos: QtCore.QPointF | None = None
        self._moved = False
        self._ruler: list[np.ndarray] = []
        self.ruler_mapper, self.ruler_actor = line_actor(self.renderer)
        self.ruler_text = text_actor(self.renderer, 14, (1.0, 1.0, 0.4))
        self.ruler_text.GetPositionCoordinate().SetCoordinateSystemToWorld()
        self.ruler_text.VisibilityOff()

    # ---- ruler ----------------------------------------------------------------
    def _update_ruler(self) -> None:
        if len(self._ruler) != 2:
            self.ruler_actor.VisibilityOff()
            self.ruler_text.VisibilityOff()
            return
        a, b = self._ruler
        self.ruler_mapper.SetInputData(polydata([(np.array([a, b]), (255, 255, 100), False)], 0.7))
        self.ruler_actor.VisibilityOn()
        self.ruler_text.SetInput(f"{self.ruler_length_mm():.1f} mm")
        self.ruler_text.GetPositionCoordinate().SetValue(float(b[0]), float(b[1]), 0.7)
        self.ruler_text.VisibilityOn()

    def ruler_length_mm(self) -> float:
        """Length in mm; plane axes are orthonormal in world space, so plane mm are world mm."""
        if len(self._ruler) != 2:
            return 0.0
        return float(np.linalg.norm(self._ruler[1] - self._ruler[0]))

    def ruler_points(self) -> list[tuple[float, float]]:
        """The ruler's two ends in plane mm (none while no ruler is drawn)."""
        return [(float(p[0]), float(p[1])) for p in self._ruler]

    def set_ruler(self, a: tuple[float, float] | None, b: tuple[float, float] | None) -> None:
        self._ruler = [] if a is None or b is None else [np.array(a), np.array(b)]
        self._update_ruler()
        self.render()

    # ---- Qt events (not passed to VTK's own interactor: we define the behaviour) -----
    def mousePressEvent(self, ev) -> None:  # noqa: N802
        self.setFocus()
        self._drag_button = ev.button()
        self._press_pos = ev.position()
        self._last_pos = ev.position()
        self._moved = False
        if self.ruler_mode and ev.button() == Qt.MouseButton.LeftButton:
            p = self.to_plane_mm(ev.position())
            self.set_ruler(p, p)

    def mouseMoveEvent(self, ev) -> None:  # noqa: N802
        pos = ev.position()
        self.hovered.emit(*self.to_plane_mm(pos))
        if self._drag_button is None or self._last_pos is None:
            return
        dx, dy = pos.x() - self._last_pos.x(), pos.y() - self._last_pos.y()
        total = pos - self._press_pos
        if abs(total.x()) + abs(total.y()) > _CLICK_SLOP_PX:
            self._moved = True
        self._last_pos = pos
        if self._drag_button == Qt.MouseButton.LeftButton:
            if self.ruler_mode and self._ruler:
                self.set_ruler(tuple(self._ruler[0]), self.to_plane_mm(pos))
            elif self._moved:
                self.window_drag.emit(dx, dy)
        elif self._drag_button == Qt.MouseButton.RightButton:
            self.zoom(math.exp(-dy * 0.01))
            self.render()
            self.zoomed.emit()
        elif self._drag_button == Qt.MouseButton.MiddleButton:
            self.pan_pixels(dx, dy)
            self.render()

    def mouseReleaseEvent(self, ev) -> None:  # noqa: N802
        if (
            self._drag_button == Qt.MouseButton.LeftButton
            and not self._moved
            and not self.ruler_mode
        ):
            self.clicked.emit(*self.to_plane_mm(ev.position()))
        self._drag_button = None

    def wheelEvent(self, ev) -> None:  # noqa: N802
        steps = ev.angleDelta().y() // 120 or (1 if ev.angleDelta().y() > 0 else -1)
        if ev.angleDelta().y() != 0:
            self.scroll_requested.emit(int(steps))

    def keyPressEvent(self, ev) -> None:  # noqa: N802
        key = ev.key()
        scroll = {
            Qt.Key.Key_Up: 1,
            Qt.Key.Key_Down: -1,
            Qt.Key.Key_Right: 1,
            Qt.Key.Key_Left: -1,
            Qt.Key.Key_PageUp: 10,
            Qt.Key.Key_PageDown: -10,
        }
        if key in scroll:
            self.scroll_requested.emit(scroll[key])
        elif key == Qt.Key.Key_Home:
            self.key_action.emit("home")
        elif key == Qt.Key.Key_End:
            self.key_action.emit("end")
        elif Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            self.key_action.emit(f"preset:{key - Qt.Key.Key_1}")
        elif key == Qt.Key.Key_I:
            self.key_action.emit("invert")
        elif key == Qt.Key.Key_Space:
            self.key_action.emit("reset")
        elif key == Qt.Key.Key_R:
            self.key_action.emit("ruler")
        elif key == Qt.Key.Key_Escape:
            self.set_ruler(None, None)
        else:
            ev.ignore()

    def keyReleaseEvent(self, ev) -> None:  # noqa: N802
        ev.ignore()

    def enterEvent(self, ev) -> None:  # noqa: N802
        pass

    def leaveEvent(self, ev) -> None:  # noqa: N802
        pass
