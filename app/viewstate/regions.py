"""Where a finding points: the world position of its ``region_id`` among the shown layers.

A finding's ``region_id`` names a label value of a label map ("3" or its name "C3"), a
landmark's name, or a box's ``region_id``; clicking the finding centres the view of the layer's
input on that position.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from app.findings.types import BoxOverlay, LandmarkOverlay
from app.viewstate.layers import Layer


@dataclass
class RegionTarget:
    layer: Layer  # the layer holding the region (its slot says which view shows it)
    world: np.ndarray  # LPS mm: the label's centroid, the landmark, the box's centre
    what: str  # for the status bar: "label 3 (C3) of Vertebrae", "box lat-box of Lateral box"


def _label_target(layer: Layer, region_id: str) -> RegionTarget | None:
    value = layer.label_value(region_id)
    if value is None:
        return None
    centroid = layer.centroids().get(value)
    if centroid is None:  # named in the table but absent from the map
        return None
    name = layer.label_names().get(value, "")
    label = f"label {value} ({name})" if name and name != str(value) else f"label {value}"
    return RegionTarget(layer, np.asarray(centroid, dtype=float), f"{label} of {layer.name}")


def _landmark_target(layer: Layer, region_id: str) -> RegionTarget | None:
    overlay: LandmarkOverlay = layer.overlay  # type: ignore[assignment]
    for mark in overlay.landmarks:
        if mark.name == region_id:
            world = np.asarray(mark.position_lps, dtype=float)
            return RegionTarget(layer, world, f"landmark {mark.name} of {layer.name}")
    return None


def _box_target(layer: Layer, region_id: str) -> RegionTarget | None:
    overlay: BoxOverlay = layer.overlay  # type: ignore[assignment]
    reference = layer.box_reference()
    if reference is None:
        return None
    for box in overlay.boxes:
        if box.region_id == region_id:
            centre = np.array([(box.i0 + box.i1) / 2, (box.j0 + box.j1) / 2, float(box.k)])
            world = reference.index_to_world(centre)
            return RegionTarget(layer, world, f"box {region_id} of {layer.name}")
    return None


_FINDERS = {"labelmap": _label_target, "landmarks": _landmark_target, "boxes": _box_target}


def find_target(layers: Iterable[Layer], region_id: str) -> RegionTarget | None:
    """The region a finding points at, top layer first; label maps before landmarks before boxes
    (a label's centroid is the most specific place)."""
    if not region_id:
        return None
    top_first = list(layers)[::-1]
    for kind in ("labelmap", "landmarks", "boxes"):
        for layer in top_first:
            if layer.kind == kind:
                target = _FINDERS[kind](layer, region_id)
                if target is not None:
                    return target
    return None
