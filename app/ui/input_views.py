"""Several inputs of one result side by side (spine: the AP and the lateral radiograph), one
``ViewArea`` per input, each drawing only the layers of its own input.

Which input gets a view and which layers each view draws is decided in ``app.viewstate.inputs``;
this widget only lays the views out and routes clicks and centring to the right one.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtWidgets
from PySide6.QtCore import Signal

from app.ui.layouts import ViewGrid, ViewLinker
from app.ui.view_area import ViewArea
from app.viewstate.inputs import InputPane, belongs_to
from app.viewstate.layers import Layer, LayerList
from app.viewstate.layout import Layout, layout_for_panes


class InputViews(QtWidgets.QWidget):
    """View areas, one per input pane, in the cells of a layout (1x2 for two inputs); each
    shows one plane of its input, and volumes scroll together while linked."""

    status = Signal(str)  # the hovered area's cursor text

    def __init__(self, layers: LayerList, parent=None) -> None:
        super().__init__(parent)
        self.layers = layers
        self.panes: list[InputPane] = []
        self.areas: dict[str, ViewArea] = {}
        self.layout_name = "1x2"  # the layout asked for; one with room for every input is used
        self.linker = ViewLinker(self)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.grid = ViewGrid()
        layout.addWidget(self.grid)

    @property
    def layout_shown(self) -> Layout:
        return layout_for_panes(len(self.panes), self.layout_name)

    def set_layout(self, name: str) -> None:
        self.layout_name = name
        if self.panes:
            self.grid.arrange(self.layout_shown, [self.areas[p.slot] for p in self.panes])

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
            area.layout_name = "1x1"  # one view per input
            area.status.connect(self.status)
            self.areas[pane.slot] = area
        self.grid.arrange(self.layout_shown, [self.areas[p.slot] for p in self.panes])
        for pane in self.panes:
            self.areas[pane.slot].set_series(pane.series)
        self.linker.set_areas(list(self.areas.values()))

    def clear(self) -> None:
        """Release the views (their render windows) before the widgets go."""
        for area in self.areas.values():
            area.shutdown()
            area.setParent(None)
            area.deleteLater()
        self.areas = {}
        self.panes = []
        self.linker.set_areas([])

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
