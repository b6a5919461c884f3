"""What readers expect of any viewer, installed on the main window in one call: layouts and
hanging protocols with linked views (``layout_actions``), cine (``cine``), the view keys in the
menus (``view_keys``), menu entries for the panel buttons, the shortcut sheet
(``shortcut_sheet``), and the window's geometry, docks and panel sizes kept in QSettings.

Opening by drag and drop and the recent-studies list live with the rest of opening
(``opening``); the layout, link, cine rate and the user's window presets persist through the
window's one QSettings.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets
from PySide6.QtGui import QAction, QKeySequence

from app.ui.cine import install_cine
from app.ui.layout_actions import install_layouts, menu_named
from app.ui.shortcut_sheet import install_shortcut_sheet
from app.ui.user_presets import ask_preset
from app.ui.view_keys import install_view_keys

# button-only actions of the panels, given a menu entry: (menu, title, key, button attribute)
PANEL_ACTIONS = (
    ("Task", "&Analyse with the chosen task", "Ctrl+Return", ("findings", "run_button")),
    ("Task", "&Cancel analysis or explanation", "Ctrl+.", ("findings", "cancel_button")),
    ("Task", "&Explain the selected finding", "Ctrl+Shift+X", ("findings", "explain_button")),
    ("File", "Sign &off the impression", "", ("impression", "sign_button")),
)
# File menu entries main.py builds without keys: (title without "&", key)
FILE_KEYS = {
    "Open folder...": "Ctrl+Shift+O",
    "Open from PACS...": "Ctrl+Shift+P",
    "Save viewer state...": "Ctrl+S",
    "Restore viewer state...": "Ctrl+Shift+R",
    "Save screenshot...": "Ctrl+Shift+S",
}


def _panel_actions(window) -> None:
    """A menu entry for each panel button: it clicks the button, so the panel's own checks
    (a task chosen, nothing running) hold for the key as for the mouse."""
    for menu_title, title, key, (panel, attr) in PANEL_ACTIONS:
        button = getattr(getattr(window, panel, None), attr, None)
        if button is None:
            continue
        act = QAction(title, window)
        if key:
            act.setShortcut(QKeySequence(key))
        act.triggered.connect(lambda _=False, b=button: b.isEnabled() and b.click())
        menu = menu_named(window, menu_title)
        first = menu.actions()[0] if menu.actions() else None
        menu.insertAction(first, act)
        if menu_title == "Task" and first is not None:
            menu.insertSeparator(first)


def _file_keys(window) -> None:
    for act in menu_named(window, "File").actions():
        key = FILE_KEYS.get(act.text().replace("&", ""))
        if key and act.shortcut().isEmpty():
            act.setShortcut(QKeySequence(key))


def _help_last(window) -> None:
    """Menus installed after Help (Mask, Measure) go before it: Help stays the last menu."""
    help_action = menu_named(window, "Help").menuAction()
    bar = window.menuBar()
    bar.removeAction(help_action)
    bar.addAction(help_action)


# ---- window geometry, docks and panel sizes -------------------------------------------------
def _side_splitter(window) -> QtWidgets.QSplitter | None:
    dock = window.findChild(QtWidgets.QDockWidget, "Findings")
    widget = dock.widget() if dock is not None else None
    return widget if isinstance(widget, QtWidgets.QSplitter) else None


def save_window_state(window) -> None:
    s = window.settings
    s.setValue("window/geometry", window.saveGeometry())
    s.setValue("window/state", window.saveState())
    side = _side_splitter(window)
    if side is not None:
        s.setValue("window/side_panels", side.saveState())
    s.sync()


def restore_window_state(window) -> None:
    s = window.settings
    for key, restore in (("window/geometry", window.restoreGeometry),
                         ("window/state", window.restoreState)):  # fmt: skip
        value = s.value(key)
        if isinstance(value, QtCore.QByteArray) and not value.isEmpty():
            restore(value)
    side, value = _side_splitter(window), s.value("window/side_panels")
    if side is not None and isinstance(value, QtCore.QByteArray) and not value.isEmpty():
        side.restoreState(value)


class _CloseWatcher(QtCore.QObject):
    """Saves the window's state when it is closed (the window's own closeEvent stays as is)."""

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802
        if ev.type() == QtCore.QEvent.Type.Close and obj is self.parent():
            save_window_state(obj)
        return False


def install_viewer_habits(window) -> None:
    install_layouts(window)
    install_cine(window)
    view = menu_named(window, "View")
    install_view_keys(window)
    save_preset = QAction("Save window as &preset...", window)
    save_preset.triggered.connect(lambda: ask_preset(window))
    actions = view.actions()
    after = actions.index(window.preset_menu.menuAction()) + 1
    view.insertAction(actions[after] if after < len(actions) else None, save_preset)
    _panel_actions(window)
    _file_keys(window)
    install_shortcut_sheet(window)
    _help_last(window)
    restore_window_state(window)
    window.installEventFilter(_CloseWatcher(window))
