"""The window/level dialog: the shown series' intensity histogram (pyqtgraph's
``HistogramLUTWidget``) with the window as a draggable region, and the presets.

Moving the region sets the view's window live; a preset or a mouse drag in the view moves the
region. The histogram is ``app.viewstate.windowing.intensity_histogram`` (log counts, so the
bone and soft-tissue peaks of a CT are not flattened by air).
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets
from PySide6.QtCore import Qt

from app.viewstate.windowing import intensity_histogram


def _target_area(window):
    """The view area the reader is on: the one holding the focused view, else the first."""
    areas = [a for a in window.visible_view_areas() if a.series is not None]
    focus = QtWidgets.QApplication.focusWidget()
    for area in areas:
        if focus is not None and any(v is focus for v in area.views.values()):
            return area
    return areas[0] if areas else None


class WindowLevelDialog(QtWidgets.QDialog):
    def __init__(self, area, parent=None) -> None:
        import pyqtgraph as pg

        super().__init__(parent)
        self.area = area
        self.series = None  # the series whose histogram and presets are shown
        self.resize(560, 360)
        self.hist = pg.HistogramLUTWidget(orientation="horizontal")
        self.hist.item.gradient.hide()  # the view keeps its own grey ramp; no colour map here
        self.caption = QtWidgets.QLabel()
        self.presets = QtWidgets.QListWidget()
        self.presets.itemClicked.connect(self._on_preset)
        self.presets.itemActivated.connect(self._on_preset)
        self.readout = QtWidgets.QLabel()
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addWidget(self.hist, 1)
        layout.addWidget(self.readout)
        layout.addWidget(QtWidgets.QLabel("Presets"))
        layout.addWidget(self.presets)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._syncing = False
        self._ensure_series()
        self.sync_from_view()
        self.hist.item.sigLevelsChanged.connect(self._on_levels)
        area.window_changed.connect(self.sync_from_view)

    def _ensure_series(self) -> None:
        """Histogram and presets of the series the area shows now (it may have changed since
        the dialog opened)."""
        series = self.area.series
        if series is None or series is self.series:
            return
        self.series = series
        unit = "HU" if (series.modality or "").upper() == "CT" else "raw values"
        self.setWindowTitle(f"Window/level: {series.modality} {series.description}")
        self.caption.setText(f"Histogram of {unit} (log counts); drag the region or its edges "
                             "to set the window")  # fmt: skip
        centres, counts = intensity_histogram(series)
        self.hist.item.plot.setData(centres, np.log10(1.0 + counts))
        step = float(centres[1] - centres[0]) if len(centres) > 1 else 1.0
        self.hist.item.setHistogramRange(float(centres[0] - step), float(centres[-1] + step))
        self.presets.clear()
        for n, (name, (c, w)) in enumerate(self.area.presets.items()):
            key = f"{n + 1}: " if n < 9 else ""
            item = QtWidgets.QListWidgetItem(f"{key}{name}  (L {c:g} / W {w:g})")
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.presets.addItem(item)

    def changeEvent(self, ev) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(ev)
        if ev.type() == QtCore.QEvent.Type.ActivationChange and self.isActiveWindow():
            self._ensure_series()  # back from the main window, where another series may show
            self.sync_from_view()

    def sync_from_view(self) -> None:
        """The view's window changed (a drag, a preset key): move the region to it."""
        w = self.area.window
        if w is None or self._syncing:
            return
        self._ensure_series()
        self._syncing = True
        try:
            self.hist.item.setLevels(w.low, w.high)
        finally:
            self._syncing = False
        self._readout()

    def _on_levels(self, _item=None) -> None:
        if self._syncing or self.area.window is None:
            return
        lo, hi = self.hist.item.getLevels()
        self._syncing = True
        try:
            self.area.set_window((lo + hi) / 2, max(hi - lo, 1e-6))
        finally:
            self._syncing = False
        self._readout()

    def _on_preset(self, item) -> None:
        self.area.apply_preset(item.data(Qt.ItemDataRole.UserRole))
        self.sync_from_view()

    def _readout(self) -> None:
        w = self.area.window
        self.readout.setText(f"L {w.center:.0f}  W {w.width:.0f}  ({w.low:.0f} to {w.high:.0f})")

    def done(self, r: int) -> None:
        try:
            self.area.window_changed.disconnect(self.sync_from_view)
        except (RuntimeError, TypeError):
            pass  # the area went first
        super().done(r)


def open_window_level_dialog(window) -> WindowLevelDialog | None:
    area = _target_area(window)
    if area is None:
        window.statusBar().showMessage("Window/level: open a study first", 5000)
        return None
    dialog = WindowLevelDialog(area, window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog
