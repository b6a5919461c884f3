"""Layer list: one row per overlay layer (show/hide, opacity, order, remove) with a legend of
label names and colours for label maps. It edits the plain ``LayerList``; views listen to it."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets
from PySide6.QtCore import Qt

from app.viewstate.layers import Layer, LayerList


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
        if layer.kind == "labelmap":
            chips = " ".join(
                f"<span style='color: rgb{tuple(c)}'>&#9632;</span>&nbsp;{name}"
                for _, (name, c) in sorted(layer.label_table().items())
            )
            legend = QtWidgets.QLabel(chips)
            legend.setWordWrap(True)
            outer.addWidget(legend)

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


class LayerPanel(QtWidgets.QWidget):
    """Top of the list = drawn on top."""

    def __init__(self, layers: LayerList, parent=None) -> None:
        super().__init__(parent)
        self.layers = layers
        self.rows: dict[int, LayerRow] = {}
        self._rebuild_pending = False
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QtWidgets.QLabel("<b>Layers</b>"))
        self.list = QtWidgets.QListWidget()
        layout.addWidget(self.list, 1)
        layers.subscribe(self._on_change)

    def _on_change(self, what: str, layer: Layer | None) -> None:
        if what == "changed" and layer is not None and layer.id in self.rows:
            self.rows[layer.id].sync()
        elif not self._rebuild_pending:
            # a result adds several layers at once: rebuild the rows once, on the next turn
            self._rebuild_pending = True
            QtCore.QTimer.singleShot(0, self.rebuild)

    def rebuild(self) -> None:
        self._rebuild_pending = False
        self.list.clear()
        self.rows = {}
        for layer in reversed(list(self.layers)):
            row = LayerRow(self.layers, layer)
            item = QtWidgets.QListWidgetItem(self.list)
            item.setSizeHint(row.sizeHint())
            self.list.setItemWidget(item, row)
            self.rows[layer.id] = row
