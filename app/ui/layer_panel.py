"""Layer list: one row per overlay layer (show/hide, opacity, order, remove) with a legend of
label names and colours for label maps, and for a heatmap its label, a threshold slider and its
colour scale. It edits the plain ``LayerList``; views listen to it."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Qt

from app.findings.types import HeatmapOverlay
from app.viewstate.compose import is_signed, scale_strip
from app.viewstate.layers import Layer, LayerList


def scale_pixmap(overlay: HeatmapOverlay, layer: Layer, width: int, height: int) -> QtGui.QPixmap:
    """The map's colour scale as drawn (``scale_strip``), low values on the left."""
    rgb = scale_strip(overlay.value_range, overlay.colormap, layer.threshold, width, height)
    rgb = np.ascontiguousarray(rgb.transpose(1, 0, 2))
    image = QtGui.QImage(rgb.data, width, height, 3 * width, QtGui.QImage.Format.Format_RGB888)
    return QtGui.QPixmap.fromImage(image.copy())


class LayerRow(QtWidgets.QWidget):
    def __init__(self, layers: LayerList, layer: Layer, parent=None) -> None:
        super().__init__(parent)
        self.layers = layers
        self.layer = layer
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(2, 2, 2, 2)
        row = QtWidgets.QHBoxLayout()
        self.check = QtWidgets.QCheckBox(layer.name)
        self.check.setChecked(layer.visible)
        on = f", on input {layer.slot}" if layer.slot else ""
        self.check.setToolTip(f"{layer.kind} from {layer.source or 'user'}{on}")
        self.check.toggled.connect(lambda on: layers.set_visible(layer.id, on))
        # a long name (a SHAP map's settings) is clipped, not widening the list: on hover in full
        self.check.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred
        )
        self.check.setToolTip(f"{layer.name}: {self.check.toolTip()}")
        self.opacity = QtWidgets.QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(int(round(layer.opacity * 100)))
        self.opacity.setMaximumWidth(70)
        self.opacity.setToolTip("Opacity")
        self.opacity.valueChanged.connect(lambda v: layers.set_opacity(layer.id, v / 100.0))
        up = QtWidgets.QToolButton(text="▲", toolTip="Draw above the next layer")
        down = QtWidgets.QToolButton(text="▼", toolTip="Draw below the previous layer")
        remove = QtWidgets.QToolButton(text="✕", toolTip="Remove layer")
        up.clicked.connect(lambda: self._move(+1))
        down.clicked.connect(lambda: self._move(-1))
        remove.clicked.connect(lambda: layers.remove(layer.id))
        row.addWidget(self.check, 1)
        row.addWidget(self.opacity)
        for b in (up, down, remove):
            row.addWidget(b)
        outer.addLayout(row)
        self.threshold: QtWidgets.QSlider | None = None
        self.scale: QtWidgets.QLabel | None = None
        self.heatmap_row: QtWidgets.QWidget | None = None
        if layer.kind == "heatmap" and isinstance(layer.overlay, HeatmapOverlay):
            # shown while the map is: a result brings a map per class, most of them hidden
            self.heatmap_row = QtWidgets.QWidget()
            self.heatmap_row.setLayout(self._heatmap_row(layer.overlay))
            self.heatmap_row.setVisible(layer.visible)
            outer.addWidget(self.heatmap_row)
        if layer.kind == "labelmap":
            chips = " ".join(
                f"<span style='color: rgb{tuple(c)}'>&#9632;</span>&nbsp;{name}"
                for _, (name, c) in sorted(layer.label_table().items())
            )
            legend = QtWidgets.QLabel(chips)
            legend.setWordWrap(True)
            outer.addWidget(legend)

    def _heatmap_row(self, overlay: HeatmapOverlay) -> QtWidgets.QHBoxLayout:
        """What the map explains, its threshold slider and its colour scale, under its name."""
        layer = self.layer
        row = QtWidgets.QHBoxLayout()
        row.setContentsMargins(22, 0, 0, 0)
        lo, hi = overlay.value_range
        what = f"map of {overlay.label}" if overlay.label else "map"
        signed = " (signed: blue against the finding, red for it)"
        label = QtWidgets.QLabel(what)
        label.setToolTip(f"{layer.name}: values {lo:.3g} to {hi:.3g}"
                         + (signed if is_signed(overlay.value_range) else ""))  # fmt: skip
        label.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred
        )
        row.addWidget(label, 1)
        row.addWidget(QtWidgets.QLabel("threshold"))
        self.threshold = QtWidgets.QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 100)
        self.threshold.setValue(int(round(layer.threshold * 100)))
        self.threshold.setMaximumWidth(70)
        on = "|value|" if is_signed(overlay.value_range) else "value"
        self.threshold.setToolTip(f"Not drawn where the {on} is below this part of the scale")
        self.threshold.valueChanged.connect(
            lambda v: self.layers.set_threshold(layer.id, v / 100.0)
        )
        row.addWidget(self.threshold)
        self.scale = QtWidgets.QLabel()
        self.scale.setToolTip(f"{lo:.3g} (left) to {hi:.3g} (right), as drawn")
        row.addWidget(self.scale)
        self._draw_scale()
        return row

    def _draw_scale(self) -> None:
        if self.scale is not None and isinstance(self.layer.overlay, HeatmapOverlay):
            self.scale.setPixmap(scale_pixmap(self.layer.overlay, self.layer, 60, 10))

    def _move(self, delta: int) -> None:
        order = [la.id for la in self.layers]
        index = order.index(self.layer.id)
        self.layers.move(self.layer.id, index + delta)

    def sync(self) -> None:
        for widget, value in ((self.check, self.layer.visible),):
            widget.blockSignals(True)
            widget.setChecked(value)
            widget.blockSignals(False)
        self.opacity.blockSignals(True)
        self.opacity.setValue(int(round(self.layer.opacity * 100)))
        self.opacity.blockSignals(False)
        if self.heatmap_row is not None:
            self.heatmap_row.setVisible(self.layer.visible)
        if self.threshold is not None:
            self.threshold.blockSignals(True)
            self.threshold.setValue(int(round(self.layer.threshold * 100)))
            self.threshold.blockSignals(False)
            self._draw_scale()


class LayerPanel(QtWidgets.QWidget):
    """Top of the list = drawn on top."""

    def __init__(self, layers: LayerList, parent=None) -> None:
        super().__init__(parent)
        self.layers = layers
        self.rows: dict[int, LayerRow] = {}
        self.items: dict[int, QtWidgets.QListWidgetItem] = {}
        self._rebuild_pending = False
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QtWidgets.QLabel("<b>Layers</b>"))
        self.list = QtWidgets.QListWidget()
        layout.addWidget(self.list, 1)
        layers.subscribe(self._on_change)

    def _on_change(self, what: str, layer: Layer | None) -> None:
        if what == "changed" and layer is not None and layer.id in self.rows:
            row = self.rows[layer.id]
            row.sync()
            item = self.items.get(layer.id)
            if item is not None:  # a heatmap's threshold row comes and goes with the map
                item.setSizeHint(row.sizeHint())
        elif not self._rebuild_pending:
            # a result adds several layers at once: rebuild the rows once, on the next turn
            self._rebuild_pending = True
            QtCore.QTimer.singleShot(0, self.rebuild)

    def rebuild(self) -> None:
        self._rebuild_pending = False
        self.list.clear()
        self.rows = {}
        self.items = {}
        for layer in reversed(list(self.layers)):
            row = LayerRow(self.layers, layer)
            item = QtWidgets.QListWidgetItem(self.list)
            item.setSizeHint(row.sizeHint())
            self.list.setItemWidget(item, row)
            self.rows[layer.id] = row
            self.items[layer.id] = item
