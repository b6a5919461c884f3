"""Mouse painting on the views through the editing model, and redrawing what changed.

An event filter on each ``SliceView`` of the areas on screen: while editing, the left button
paints (Ctrl held erases, the fill tool fills), Shift+wheel sizes the brush; everything else
(right-drag zoom, middle-drag pan, wheel scroll) still reaches the view. Positions go from
screen to plane millimetres (``SliceView.to_plane_mm``) to world LPS (the view's plane and
depth), so painting is the same in a radiograph and in every CT/MR orientation.

After each dab the changed box is redrawn in place in the pixels the view already shows
(``app.editing.view_patch``); a view with a redraw pending gets a normal update instead.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore, QtWidgets
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeySequence

from app.editing.editor import LabelEditor, Tool
from app.editing.keys import KeyMap, dispatch
from app.editing.view_patch import patch_view
from app.ui.slice_view import SliceView
from app.ui.view_area import ViewArea
from app.viewstate.layers import Layer


class EditorCanvas(QtCore.QObject):
    """Turns mouse events on the views into calls on a ``LabelEditor``."""

    def __init__(self, keys: KeyMap, areas: Callable[[], list[ViewArea]], parent=None) -> None:
        super().__init__(parent)
        self.keys = keys
        self.areas = areas  # the view areas on screen, asked each time
        self.editor: LabelEditor | None = None
        self.layer: Layer | None = None
        self._painting: tuple[ViewArea, str] | None = None
        # a key of the table pressed on a view: the owner dispatches it (and updates its menu)
        self.on_action: Callable[[str], None] = lambda action: dispatch(self.editor, action)

    # ---- attach ---------------------------------------------------------------------
    def attach(self, editor: LabelEditor, layer: Layer) -> None:
        self.detach()
        self.editor, self.layer = editor, layer
        editor.subscribe(self._on_changed)
        # on the application, not on each view: a re-run or another layout builds new views
        QtWidgets.QApplication.instance().installEventFilter(self)

    def detach(self) -> None:
        if self.editor is not None:
            if self._painting is not None:
                self.editor.end_stroke()
            self.editor.unsubscribe(self._on_changed)
        app = QtWidgets.QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self._painting = None
        self.editor = self.layer = None

    def _area_of(self, view: SliceView) -> tuple[ViewArea, str] | None:
        for area in self.areas():
            for name, v in area.views.items():
                if v is view:
                    return area, name
        return None

    # ---- events -----------------------------------------------------------------------
    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 - Qt's name
        if self.editor is None or not isinstance(obj, SliceView):
            return False
        kind = ev.type()
        if kind == QEvent.Type.KeyPress:
            # the same table as the menu's shortcuts: a view with focus gets the key first
            action = self.keys.action_for(QKeySequence(ev.keyCombination()).toString())
            if action is None or "wheel" in action:
                return False
            self.on_action(action)
            return True
        if kind == QEvent.Type.MouseButtonPress and ev.button() == Qt.MouseButton.LeftButton:
            return self._press(obj, ev)
        if kind == QEvent.Type.MouseMove and self._painting is not None:
            area, name = self._painting
            self.editor.continue_stroke(self._world(area, name, obj, ev.position()))
            obj.hovered.emit(*obj.to_plane_mm(ev.position()))
            return True
        if kind == QEvent.Type.MouseButtonRelease and self._painting is not None:
            self._painting = None
            self.editor.end_stroke()
            return True
        if kind == QEvent.Type.Wheel and ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            delta = ev.angleDelta().y() or ev.angleDelta().x()  # Qt may turn Shift into x
            action = self.keys.action_for("Shift+Wheel")
            if action and delta:
                dispatch(self.editor, action, 1 if delta > 0 else -1)
            return True
        return False

    def _press(self, view: SliceView, ev) -> bool:
        if view.ruler_mode:
            return False
        where = self._area_of(view)
        if where is None or where[0].cross is None:
            return False
        area, name = where
        view.setFocus()
        xyz = self._world(area, name, view, ev.position())
        normal = area.cross.planes[name].normal
        erase = bool(ev.modifiers() & _modifier(self.keys.erase_modifier))
        if self.editor.tool == Tool.FILL:
            self.editor.fill(xyz, normal, erase=erase)
            return True
        self.editor.begin_stroke(xyz, normal, erase=erase)
        self._painting = (area, name)
        return True

    @staticmethod
    def _world(area: ViewArea, name: str, view: SliceView, pos):
        plane = area.cross.planes[name]
        x, y = view.to_plane_mm(pos)
        return plane.world(y / plane.spacing[0], x / plane.spacing[1], area.cross.depth(name))

    # ---- redraw -----------------------------------------------------------------------
    def _on_changed(self, _what: str, box) -> None:
        lut = None if self.layer is None else self.layer._lut
        if lut is not None and self.editor is not None and self.editor.label >= len(lut):
            self.layer._lut = None  # a new label value needs a colour (the table is cached)
        for area in self.areas():
            if self.layer is None or self.layer not in area.drawn_layers():
                continue
            for name, view in area.views.items():
                self._redraw(area, name, view, box)

    def _redraw(self, area: ViewArea, name: str, view: SliceView, box) -> None:
        rgb = getattr(view, "_rgb_ref", None)
        pending = name in area._dirty_pixels or name in area._composed
        if box is None or rgb is None or view.plane is None or pending or self.editor is None:
            area.request_update({name})
            return
        done = patch_view(rgb, area.series.image, area.window, view.plane, area.cross.depth(name),
                          area.drawn_layers(), self.editor.image, box)  # fmt: skip
        if done is not None:
            view.image_data.Modified()  # VTK shares the array: only tell it to look again
            view.render()


def _modifier(name: str) -> Qt.KeyboardModifier:
    return {
        "Ctrl": Qt.KeyboardModifier.ControlModifier,
        "Shift": Qt.KeyboardModifier.ShiftModifier,
        "Alt": Qt.KeyboardModifier.AltModifier,
        "Meta": Qt.KeyboardModifier.MetaModifier,
    }.get(name, Qt.KeyboardModifier.ControlModifier)
