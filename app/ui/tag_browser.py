"""The DICOM tag browser: the shown image's header as a tree (sequences expandable) with a
filter box. The reading is ``app.study.header_dump`` (no Qt); this is only the dialog."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets
from PySide6.QtCore import Qt

from app.study.header_dump import TagRow, file_at_slice, read_header

COLUMNS = ("Tag", "Name", "VR", "Value")


def shown_file(window) -> str:
    """The file behind the image on screen: for a stack of one-slice files, the slice at the
    crosshair of the first view area on screen."""
    areas = window.visible_view_areas()
    area = next((a for a in areas if a.series is not None), None)
    if area is None:
        return ""
    series = area.series
    paths = list(series.source_paths)
    if len(paths) > 1 and area.cross is not None:
        return file_at_slice(paths, area.cross.point, series.image.direction[:, 2])
    return paths[0] if paths else ""


class TagBrowser(QtWidgets.QDialog):
    def __init__(self, path: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Tags: {Path(path).name}" if path else "Tags")
        self.resize(820, 640)
        self.path = path
        self.rows: list[TagRow] = []
        self.summary = QtWidgets.QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("Filter: tag, name or value (e.g. 0010, Patient, CT)")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.apply_filter)
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setUniformRowHeights(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.filter)
        layout.addWidget(self.tree)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.load()

    def load(self) -> None:
        if not self.path:
            self.summary.setText("No image is shown: open a study first.")
            return
        try:
            what, self.rows = read_header(self.path)
        except ValueError as exc:
            self.summary.setText(f"Cannot show the header: {exc}")
            return
        self.summary.setText(f"{what}: {self.path}")
        self.apply_filter(self.filter.text())

    def apply_filter(self, text: str) -> None:
        self.tree.clear()
        self._add(self.tree, [r for r in self.rows if not text or r.matches(text)], text)
        if text:
            self.tree.expandAll()
        for c in range(3):
            self.tree.resizeColumnToContents(c)

    def _add(self, parent, rows: list[TagRow], text: str) -> None:
        for row in rows:
            item = QtWidgets.QTreeWidgetItem([row.tag, row.name, row.vr, row.value])
            item.setToolTip(3, row.value)
            if isinstance(parent, QtWidgets.QTreeWidget):
                parent.addTopLevelItem(item)
            else:
                parent.addChild(item)
            for n, seq_item in enumerate(row.items):
                kept = [r for r in seq_item if not text or r.matches(text)] or seq_item
                child = QtWidgets.QTreeWidgetItem(["", f"item {n + 1}", "", ""])
                item.addChild(child)
                self._add(child, kept, text)

    def visible_rows(self) -> list[tuple[str, ...]]:
        """Every row of the tree, depth first, as text (tests read it)."""
        out: list[tuple[str, ...]] = []

        def walk(item) -> None:
            out.append(tuple(item.text(c) for c in range(len(COLUMNS))))
            for n in range(item.childCount()):
                walk(item.child(n))

        for n in range(self.tree.topLevelItemCount()):
            walk(self.tree.topLevelItem(n))
        return out


def open_tag_browser(window) -> TagBrowser:
    dialog = TagBrowser(shown_file(window), window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog
