"""Several inputs of one result side by side (spine: the AP and the lateral radiograph), one
``ViewArea`` per input, each drawing only the layers of its own input.

Which input gets a view and which layers each view draws is decided in ``app.viewstate.inputs``;
this widget only lays the views out and routes clicks and centring to the right one.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets
from PySide6.QtCore import Signal

from app.ui.view_area import ViewArea
from app.viewstate.inputs import InputPane, belongs_to
from app.viewstate.layers import Layer, LayerList


class InputViews(QtWidgets.QWidget):
    """A 1 x N row of view areas, one per input pane."""

    status = Signal(str)  # the hovered area's cursor text

    def __init__(self, layers: LayerList, parent=None) -> None:
        super().__init__(parent)
        self.layers = layers
        self.panes: list[InputPane] = []
        self.areas: dict[str, ViewArea] = {}
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        layout.addWidget(self._splitter)

    def show_panes(self, panes: list[InputPane]) -> None:
        """One area per pane, each drawing only the layers that belong to its input."""
        self.clear()
        self.panes = list(panes)
        for pane in self.panes:
            area = ViewArea(
                self.layers,
                layer_filter=lambda layer, p=pane: belongs_to(layer, p),
                title=pane.title,
            )
            area.status.connect(self.status)
            self._splitter.addWidget(area)
            self.areas[pane.slot] = area
        self._splitter.setSizes([1000] * len(self.panes))
        for pane in self.panes:
            self.areas[pane.slot].set_series(pane.series)

    def clear(self) -> None:
        """Release the views (their render windows) before the widgets go."""
        for area in self.areas.values():
            area.shutdown()
            area.setParent(None)
            area.deleteLater()
        self.areas = {}
        self.panes = []

    def shutdown(self) -> None:
        for area in self.areas.values():
            area.shutdown()

    def area_of(self, layer: Layer) -> ViewArea | None:
        """The area showing ``layer``'s input."""
        for pane in self.panes:
            if belongs_to(layer, pane):
                return self.areas[pane.slot]
        return None

    def centre_on(self, layer: Layer, xyz: np.ndarray) -> ViewArea | None:
        """Centre the view of ``layer``'s input on a world point; the area, or None."""
        area = self.area_of(layer)
        if area is not None:
            area.centre_on(xyz)
        return area

    def request_update(self) -> None:
        for area in self.areas.values():
            area.request_update()

    def update_now(self) -> None:
        for area in self.areas.values():
            area.update_now()

    @property
    def update_pending(self) -> bool:
        return any(area._update_pending for area in self.areas.values())
