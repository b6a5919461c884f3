"""The keyboard shortcut sheet (Help > Keyboard shortcuts, F1 or ?): every action of the menus
and toolbars with its keys, read from the window's QActions when it opens, so the sheet cannot
drift from what the keys do."""

from __future__ import annotations

from PySide6 import QtWidgets
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

SHEET_KEYS = ("F1", "?")
MOUSE_HELP = (
    ("Mouse", "Change window/level", "left drag"),
    ("Mouse", "Move the crosshair (volumes)", "left click"),
    ("Mouse", "Zoom", "right drag"),
    ("Mouse", "Pan", "middle drag"),
    ("Mouse", "Scroll slices", "wheel"),
)


def _title(action: QAction) -> str:
    return action.text().replace("&&", "\0").replace("&", "").replace("\0", "&")


def _keys(action: QAction) -> str:
    return ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())


def collect_actions(window: QtWidgets.QMainWindow) -> list[tuple[str, str, str]]:
    """(where, action, keys) for every action in the menu bar (submenus walked) and every
    toolbar action that no menu holds, in menu order."""
    rows: list[tuple[str, str, str]] = []
    seen: set[int] = set()

    def walk(menu: QtWidgets.QMenu, path: str) -> None:
        for act in menu.actions():
            if act.isSeparator():
                continue
            sub = act.menu()
            if sub is not None:
                walk(sub, f"{path} > {_title(act)}")
                continue
            seen.add(id(act))
            rows.append((path, _title(act), _keys(act)))

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu(), _title(top))
    for bar in window.findChildren(QtWidgets.QToolBar):
        for act in bar.actions():
            if id(act) not in seen and not act.isSeparator() and _title(act):
                rows.append((f"Toolbar {bar.windowTitle()}", _title(act), _keys(act)))
    return rows


class ShortcutSheet(QtWidgets.QDialog):
    """A table of the actions and their keys, filtered as one types."""

    def __init__(self, window: QtWidgets.QMainWindow) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(640, 720)
        self.rows = collect_actions(window) + list(MOUSE_HELP)
        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("Filter (an action or a key)")
        self.filter.textChanged.connect(self._apply_filter)
        self.only_keys = QtWidgets.QCheckBox("Only actions with a shortcut")
        self.only_keys.toggled.connect(lambda _: self._apply_filter(self.filter.text()))
        self.table = QtWidgets.QTableWidget(len(self.rows), 3)
        self.table.setHorizontalHeaderLabels(["Menu", "Action", "Shortcut"])
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        for r, row in enumerate(self.rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QtWidgets.QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        close = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.only_keys)
        layout.addWidget(self.table)
        layout.addWidget(close)

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for r, row in enumerate(self.rows):
            hit = not needle or any(needle in cell.lower() for cell in row)
            self.table.setRowHidden(r, not hit or (self.only_keys.isChecked() and not row[2]))

    def visible_rows(self) -> list[tuple[str, str, str]]:
        return [row for r, row in enumerate(self.rows) if not self.table.isRowHidden(r)]


def open_shortcut_sheet(window) -> ShortcutSheet:
    sheet = ShortcutSheet(window)
    sheet.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    sheet.show()
    window.shortcut_sheet = sheet
    return sheet


def install_shortcut_sheet(window) -> QAction:
    from app.ui.layout_actions import menu_named

    act = QAction("&Keyboard shortcuts...", window)
    act.setShortcuts([QKeySequence(k) for k in SHEET_KEYS])
    act.triggered.connect(lambda: open_shortcut_sheet(window))
    help_menu = menu_named(window, "Help")
    first = help_menu.actions()[0] if help_menu.actions() else None
    help_menu.insertAction(first, act)
    window.shortcut_sheet_action = act
    return act
