"""The measurements panel: one row per measurement (name, value, unit, area, slice); Delete removes
the selected rows, a double-click jumps to the measurement."""

from __future__ import annotations

from PySide6 import QtWidgets
from PySide6.QtCore import Qt, Signal

from app.viewstate.measurements import Measurement, MeasurementList

COLUMNS = ("Name", "Value", "Unit", "Area mm²", "Slice")


def value_cell(m: Measurement) -> str:
    if m.stats is not None:
        s = m.stats
        if s.n_pixels == 0:
            return "no pixels inside"
        return f"{s.mean:.1f} ± {s.sd:.1f} SD"
    return f"{m.value:.1f}"


class MeasurementPanel(QtWidgets.QWidget):
    jump_requested = Signal(object)  # the Measurement double-clicked

    def __init__(self, measurements: MeasurementList, parent=None) -> None:
        super().__init__(parent)
        self.measurements = measurements
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.cellDoubleClicked.connect(self._on_double_click)
        self.delete_button = QtWidgets.QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected measurements (Delete)")
        self.delete_button.clicked.connect(self.delete_selected)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.table)
        layout.addWidget(self.delete_button)
        self._rows: list[Measurement] = []
        measurements.subscribe(lambda what, m: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        self._rows = list(self.measurements)
        self.table.setRowCount(len(self._rows))
        for r, m in enumerate(self._rows):
            area = f"{m.stats.area_mm2:.1f}" if m.stats is not None else ""
            cells = (m.name, value_cell(m), m.unit, area, f"{m.view} {m.slice_index}")
            for c, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                pixels = f" ({m.stats.n_pixels} pixels)" if m.stats is not None else ""
                item.setToolTip(m.text() + pixels)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()

    def rows(self) -> list[tuple[str, ...]]:
        """The table as text (what a reader sees; tests read it)."""
        return [
            tuple(self.table.item(r, c).text() for c in range(len(COLUMNS)))
            for r in range(self.table.rowCount())
        ]

    def delete_selected(self) -> None:
        chosen = sorted({i.row() for i in self.table.selectedIndexes()})
        for m in [self._rows[r] for r in chosen if r < len(self._rows)]:
            self.measurements.remove(m)

    def _on_double_click(self, row: int, _col: int) -> None:
        if 0 <= row < len(self._rows):
            self.jump_requested.emit(self._rows[row])

    def keyPressEvent(self, ev) -> None:  # noqa: N802
        if ev.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_selected()
        else:
            super().keyPressEvent(ev)
