"""Overlay layers: what the viewer draws over an image, and how (visibility, opacity, order).

A layer wraps one ``app.findings`` overlay (which carries its own geometry) plus display state.
``LayerList`` keeps them in drawing order (first = bottom) and tells listeners about changes;
the Qt layer panel and the views listen, tests call the same methods directly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from app.findings.colormaps import label_colour
from app.findings.types import (
    BoxOverlay,
    HeatmapOverlay,
    LabelMapOverlay,
    LandmarkOverlay,
    Overlay,
)
from app.study.geometry import ImageVolume

_ids = itertools.count(1)
# A heatmap's default threshold, as a fraction of its scale (of |value| for a signed map): the
# weaker part of a map is the spread-out part that would otherwise tint the whole film.
HEATMAP_THRESHOLD = 0.4


@dataclass
class Layer:
    """Display state of one overlay. ``kind`` is labelmap, heatmap, boxes or landmarks."""

    overlay: Overlay
    kind: str
    source: str = ""  # "truth", "task:<id>", "user"
    visible: bool = True
    opacity: float = 0.5
    # heatmaps: transparent below this fraction of the scale, alpha rising above it
    threshold: float = HEATMAP_THRESHOLD
    id: int = field(default_factory=lambda: next(_ids))
    # boxes without their own reference grid use the image they were added over
    reference: ImageVolume | None = None
    # The input this layer belongs to: the result's slot (``Overlay.slot``) and the series that
    # filled it, or only the series for truth and user layers. A view shows a layer only when
    # the layer belongs to that view's input (``app.viewstate.inputs``).
    slot: str = ""
    series_uid: str = ""
    _centroids: dict[int, np.ndarray] | None = field(default=None, repr=False)
    _lut: np.ndarray | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.overlay.name

    # ---- label maps -------------------------------------------------------
    def label_table(self) -> dict[int, tuple[str, tuple[int, int, int]]]:
        """value -> (name, colour) for every label present in the table or the data's range."""
        assert isinstance(self.overlay, LabelMapOverlay)
        table = dict(self.overlay.labels)
        return {
            int(v): (name, tuple(int(c) for c in colour)) for v, (name, colour) in table.items()
        }

    def label_lut(self) -> np.ndarray:
        """(n, 4) uint8 colour + alpha per label value; 0 and unnamed values get a palette colour."""
        if self._lut is None:
            assert isinstance(self.overlay, LabelMapOverlay) and self.overlay.image is not None
            arr = self.overlay.image.array
            table = self.label_table()
            n = int(max(max(table, default=0), int(arr.max()) if arr.size else 0)) + 1
            lut = np.zeros((n, 4), dtype=np.uint8)
            for v in range(1, n):
                colour = table[v][1] if v in table else label_colour(v)
                lut[v, :3] = colour
                lut[v, 3] = 255
            self._lut = lut
        return self._lut

    def label_names(self) -> dict[int, str]:
        return {v: name for v, (name, _) in self.label_table().items()}

    def label_value(self, key: str) -> int | None:
        """Label value matching a region id: a label name ("C3") or a number ("3")."""
        for v, name in self.label_names().items():
            if name == key:
                return v
        if key.strip().isdigit() and int(key) in self.label_names():
            return int(key)
        return None

    def centroids(self) -> dict[int, np.ndarray]:
        """World (LPS) centroid per label present. Heavy on big volumes: call from a worker."""
        if self._centroids is None:
            assert isinstance(self.overlay, LabelMapOverlay) and self.overlay.image is not None
            self._centroids = label_centroids(self.overlay.image)
        return self._centroids

    # ---- boxes and landmarks ----------------------------------------------
    def box_reference(self) -> ImageVolume | None:
        if isinstance(self.overlay, BoxOverlay) and self.overlay.reference is not None:
            return self.overlay.reference
        return self.reference

    def to_json(self) -> dict:
        out = {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "visible": self.visible,
            "opacity": round(float(self.opacity), 4),
            "slot": self.slot,
        }
        if self.kind == "heatmap":
            out["threshold"] = round(float(self.threshold), 4)
        return out


def label_centroids(image: ImageVolume) -> dict[int, np.ndarray]:
    """Centroid in world mm of every non-zero label.

    Slice by slice with weighted bincounts, so memory stays at one slice of index weights
    (a full index grid of a 512x512x300 map would be gigabytes).
    """
    arr = image.array
    nk, nj, ni = image.shape
    occupied = np.flatnonzero(arr.reshape(nk, -1).any(axis=1))
    if occupied.size == 0:
        return {}
    n = int(arr.max()) + 1
    jj = np.repeat(np.arange(nj, dtype=float), ni)
    ii = np.tile(np.arange(ni, dtype=float), nj)
    sums = np.zeros((4, n))  # count, i, j, k
    for k in occupied:
        labels = arr[k].reshape(-1).astype(np.intp, copy=False)
        counts = np.bincount(labels, minlength=n)
        sums[0] += counts
        sums[1] += np.bincount(labels, weights=ii, minlength=n)
        sums[2] += np.bincount(labels, weights=jj, minlength=n)
        sums[3] += counts * float(k)
    out = {}
    for v in range(1, n):
        if sums[0, v] > 0:
            out[v] = image.index_to_world(sums[1:, v] / sums[0, v])
    return out


def layer_kind(overlay: Overlay) -> str:
    if isinstance(overlay, LabelMapOverlay):
        return "labelmap"
    if isinstance(overlay, HeatmapOverlay):
        return "heatmap"
    if isinstance(overlay, BoxOverlay):
        return "boxes"
    if isinstance(overlay, LandmarkOverlay):
        return "landmarks"
    raise TypeError(f"unsupported overlay type {type(overlay).__name__}")


def layer_from_overlay(
    overlay: Overlay,
    source: str = "",
    reference: ImageVolume | None = None,
    series_uid: str = "",
) -> Layer:
    kind = layer_kind(overlay)
    opacity = float(overlay.opacity)
    if kind in ("boxes", "landmarks") and opacity <= 0.5:
        opacity = 1.0  # outlines are drawn opaque unless the overlay asks for less
    return Layer(
        overlay,
        kind,
        source,
        bool(overlay.visible),
        opacity,
        reference=reference,
        slot=overlay.slot,
        series_uid=series_uid,
    )


Listener = Callable[[str, "Layer | None"], None]


class LayerList:
    """Ordered layers (first drawn first, i.e. at the bottom) with change notification."""

    def __init__(self) -> None:
        self._layers: list[Layer] = []
        self._listeners: list[Listener] = []

    # ---- observation ------------------------------------------------------
    def subscribe(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def unsubscribe(self, fn: Listener) -> None:
        """Stop telling ``fn`` (a view that is going away)."""
        self._listeners = [f for f in self._listeners if f is not fn]

    def _emit(self, what: str, layer: Layer | None) -> None:
        for fn in list(self._listeners):
            fn(what, layer)

    # ---- access -------------------------------------------------------------
    def __iter__(self):
        return iter(list(self._layers))

    def __len__(self) -> int:
        return len(self._layers)

    def __getitem__(self, index: int) -> Layer:
        return self._layers[index]

    def get(self, layer_id: int) -> Layer:
        for layer in self._layers:
            if layer.id == layer_id:
                return layer
        raise KeyError(layer_id)

    def by_name(self, name: str) -> Layer | None:
        return next((la for la in self._layers if la.name == name), None)

    def visible(self) -> list[Layer]:
        return [la for la in self._layers if la.visible and la.opacity > 0]

    def of_kind(self, kind: str) -> list[Layer]:
        return [la for la in self._layers if la.kind == kind]

    def find_region(self, region_id: str) -> tuple[Layer, int] | None:
        """The label-map layer and label value a finding's region id refers to (top layer first)."""
        if not region_id:
            return None
        for layer in reversed(self._layers):
            if layer.kind == "labelmap":
                value = layer.label_value(region_id)
                if value is not None:
                    return layer, value
        return None

    # ---- changes ------------------------------------------------------------
    def add(self, layer: Layer) -> Layer:
        self._layers.append(layer)
        self._emit("added", layer)
        return layer

    def add_overlay(
        self,
        overlay: Overlay,
        source: str = "",
        reference: ImageVolume | None = None,
        series_uid: str = "",
    ) -> Layer:
        return self.add(layer_from_overlay(overlay, source, reference, series_uid))

    def remove(self, layer_id: int) -> None:
        layer = self.get(layer_id)
        self._layers.remove(layer)
        self._emit("removed", layer)

    def clear(self, source: str | None = None) -> None:
        """Remove all layers, or those from one source (e.g. a previous run of a task)."""
        for layer in list(self._layers):
            if source is None or layer.source == source:
                self._layers.remove(layer)
                self._emit("removed", layer)

    def move(self, layer_id: int, index: int) -> None:
        layer = self.get(layer_id)
        self._layers.remove(layer)
        index = max(0, min(index, len(self._layers)))
        self._layers.insert(index, layer)
        self._emit("moved", layer)

    def set_visible(self, layer_id: int, visible: bool) -> None:
        layer = self.get(layer_id)
        if layer.visible != bool(visible):
            layer.visible = bool(visible)
            self._emit("changed", layer)

    def set_opacity(self, layer_id: int, opacity: float) -> None:
        layer = self.get(layer_id)
        opacity = float(min(max(opacity, 0.0), 1.0))
        if layer.opacity != opacity:
            layer.opacity = opacity
            self._emit("changed", layer)

    def set_threshold(self, layer_id: int, threshold: float) -> None:
        """A heatmap's threshold (fraction of its scale): below it the map is not drawn."""
        layer = self.get(layer_id)
        threshold = float(min(max(threshold, 0.0), 1.0))
        if layer.threshold != threshold:
            layer.threshold = threshold
            self._emit("changed", layer)

    def show_only_heatmap(self, label: str, source: str | None = None) -> Layer | None:
        """Show the heatmap explaining ``label`` and hide the other heatmaps (of ``source``)."""
        chosen = None
        for layer in self._layers:
            if layer.kind != "heatmap" or (source is not None and layer.source != source):
                continue
            match = getattr(layer.overlay, "label", "") == label
            if match and chosen is None:
                chosen = layer
            if layer.visible != (match and layer is chosen):
                layer.visible = match and layer is chosen
                self._emit("changed", layer)
        return chosen

    def to_json(self) -> list[dict]:
        return [la.to_json() for la in self._layers]

    def apply_json(self, items: list[dict]) -> None:
        """Restore visibility/opacity/threshold of layers present by name (the data is not
        serialised)."""
        for item in items:
            layer = self.by_name(item.get("name", ""))
            if layer is None:
                continue
            layer.visible = bool(item.get("visible", layer.visible))
            layer.opacity = float(item.get("opacity", layer.opacity))
            layer.threshold = float(item.get("threshold", layer.threshold))
            self._emit("changed", layer)
