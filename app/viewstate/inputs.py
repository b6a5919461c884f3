"""Which view shows which input, and which layers each view draws.

A task with several image inputs (spine: an AP and a lateral radiograph) is shown with one view
per input side by side; each view draws only the layers computed on its own input, so the AP's
masks never land on the lateral. A one-input result keeps the normal single-series layout.

Plain data in, plain data out (no Qt): the viewer asks these functions and draws the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.study.model import Series
from app.viewstate.layers import Layer


@dataclass(frozen=True)
class InputPane:
    """One view of a multi-input layout: the slot's name and the series that filled it."""

    slot: str
    series: Series
    first: bool = False  # the first pane also shows layers tied to no input at all

    @property
    def title(self) -> str:
        """What the view's corner says: the slot, then the series."""
        what = " ".join(p for p in (self.series.modality, self.series.description) if p)
        return f"{self.slot}: {what}" if what else self.slot


def input_panes(inputs: Mapping[str, Series], mask_slots: Iterable[str] = ()) -> list[InputPane]:
    """One pane per image input, in the task's slot order; masks are drawn on their image, not
    given a view of their own."""
    masks = set(mask_slots)
    images = [(slot, series) for slot, series in inputs.items() if slot not in masks]
    return [InputPane(slot, series, n == 0) for n, (slot, series) in enumerate(images)]


def needs_side_by_side(panes: list[InputPane]) -> bool:
    return len(panes) > 1


def belongs_to(layer: Layer, pane: InputPane) -> bool:
    """A layer is drawn on the pane of its slot; a layer tied only to a series (truth, a user's
    layer) on that series' pane; a layer tied to nothing on the first pane only (drawn over
    another radiograph it would land on the wrong anatomy)."""
    if layer.slot:
        return layer.slot == pane.slot
    if layer.series_uid:
        return layer.series_uid == pane.series.series_uid
    return pane.first


def layers_for(layers: Iterable[Layer], pane: InputPane) -> list[Layer]:
    """The layers of ``pane`` in drawing order (bottom first)."""
    return [layer for layer in layers if belongs_to(layer, pane)]


def pane_of(layer: Layer, panes: list[InputPane]) -> InputPane | None:
    return next((p for p in panes if belongs_to(layer, p)), None)
