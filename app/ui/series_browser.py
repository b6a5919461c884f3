"""The series browser: one thumbnail per loaded series; which series to show first."""

from __future__ import annotations

import os

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.study.model import LoadResult, Series
from app.ui.slot_actions import SERIES_ROLE

LABEL_ROLE = SERIES_ROLE + 1  # the item's own text, without the slot it was assigned to
ERRORS_ROLE = SERIES_ROLE + 6  # LoadError list of the "not loaded" item
MAX_LISTED = 30


def primary_series(result: LoadResult) -> Series | None:
    """The series to show first: the largest volume, else the first image."""
    series = result.all_series()
    volumes = [s for s in series if s.kind == "volume" and not s.image.is_2d]
    if volumes:
        return max(volumes, key=lambda s: int(np.prod(s.shape)))
    return series[0] if series else None


class SeriesBrowser(QtWidgets.QListWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
        self.setIconSize(QtCore.QSize(96, 96))
        self.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
        self.setMovement(QtWidgets.QListView.Movement.Static)
        self.setWordWrap(True)
        self.setGridSize(QtCore.QSize(120, 140))

    def add_series(self, series: Series, thumb: np.ndarray | None) -> QtWidgets.QListWidgetItem:
        dims = "x".join(str(n) for n in series.shape[::-1] if n > 1)
        text = f"{series.modality} {dims}\n{series.description[:30]}"
        item = QtWidgets.QListWidgetItem(text)
        item.setData(LABEL_ROLE, text)
        if thumb is not None:
            t = np.ascontiguousarray(thumb)
            img = QtGui.QImage(t.data, t.shape[1], t.shape[0], t.shape[1],
                               QtGui.QImage.Format.Format_Grayscale8).copy()  # fmt: skip
            item.setIcon(QtGui.QIcon(QtGui.QPixmap.fromImage(img)))
        item.setData(SERIES_ROLE, series)
        item.setToolTip(
            f"{series.description}\n{series.modality} {series.kind}, spacing "
            + ", ".join(f"{s:.2f}" for s in series.spacing_mm)
            + " mm"
            + ("\n" + "\n".join(series.warnings) if series.warnings else "")
        )
        self.addItem(item)
        return item

    def add_unreadable(self, errors: list) -> QtWidgets.QListWidgetItem:
        """One item for the files that did not load, each named with its reason (tooltip); it is
        not a series and cannot be chosen."""
        item = QtWidgets.QListWidgetItem(f"{len(errors)} file(s)\nnot loaded")
        warning = QtWidgets.QStyle.StandardPixmap.SP_MessageBoxWarning
        item.setIcon(self.style().standardIcon(warning))
        shown = [f"{os.path.basename(e.path) or e.path}: {e.reason}" for e in errors[:MAX_LISTED]]
        more = [f"... and {len(errors) - MAX_LISTED} more"] if len(errors) > MAX_LISTED else []
        item.setToolTip("\n".join(["Not loaded:", *shown, *more]))
        item.setData(ERRORS_ROLE, list(errors))
        item.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled)
        self.addItem(item)
        return item

    def mark_assignments(self, roles: dict[int, list[str]]) -> None:
        """Add "as <slot> (<task>)" under each series the user assigned (by series identity)."""
        for n in range(self.count()):
            item = self.item(n)
            series = item.data(SERIES_ROLE)
            base = item.data(LABEL_ROLE) or item.text()
            marks = roles.get(id(series), [])
            item.setText(base + ("\nas " + ", ".join(marks) if marks else ""))
