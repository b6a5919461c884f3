"""Menu entries for the keys a view handles itself (arrows, Page Up/Down, Home/End, the preset
digits, I, Space, R, Esc): View > Navigate lists them with their keys, and choosing one from the
menu does it to the view that has the focus (else the first view on screen).

Their shortcuts are shown, not grabbed: a WidgetShortcut on a menu entry is live only while the
menu has the focus, so a key pressed in a view still reaches the view, which knows which of its
planes to move.
"""

from __future__ import annotations

from PySide6 import QtWidgets
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

# (title, keys, what the focused view does: a scroll by n slices or a view key action)
NAVIGATION = (
    ("&Next slice", ("Up", "Right"), 1),
    ("&Previous slice", ("Down", "Left"), -1),
    ("10 slices &on", ("PgUp",), 10),
    ("10 slices &back", ("PgDown",), -10),
    ("&First slice", ("Home",), "home"),
    ("&Last slice", ("End",), "end"),
    ("&Clear the ruler", ("Esc",), "clear_ruler"),
)


def view_key(action: QAction, *keys: str) -> QAction:
    """Show ``keys`` on ``action`` without taking them from the views (see the module doc)."""
    action.setShortcuts([QKeySequence(k) for k in keys])
    action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
    return action


def focused_view(window):
    """(area, view name) of the view with the keyboard focus, else the first view on screen."""
    areas = []
    for area in window.visible_view_areas():
        areas += [area, *getattr(area, "guests", [])]
    focus = QtWidgets.QApplication.focusWidget()
    for area in areas:
        for name, view in area.views.items():
            if view is focus:
                return area, name
    for area in areas:
        if area.views:
            return area, next(iter(area.views))
    return None


def _do(window, what) -> None:
    found = focused_view(window)
    if found is None:
        return
    area, name = found
    if isinstance(what, int):
        area.scroll(name, what)
    elif what == "clear_ruler":
        area.views[name].set_ruler(None, None)
    else:
        area._on_key(name, what)  # the same path as the key pressed in the view


def install_view_keys(window) -> QtWidgets.QMenu:
    from app.ui.layout_actions import menu_named

    menu = menu_named(window, "View").addMenu("&Navigate")
    for title, keys, what in NAVIGATION:
        act = QAction(title, window)
        act.triggered.connect(lambda _=False, w=what: _do(window, w))
        menu.addAction(view_key(act, *keys))
    return menu
