"""Findings, overlays and results as JSON records, written once for both of their readers.

findings.json (``app.findings.io``) keeps pixel maps in files beside it (NIfTI, .npy); the
messages to and from the child processes (``app.ipc``) carry them as raw array payloads. Both
use the records here for everything else, read back through ``app.ipc``'s typed readers, so a
field of the wrong type is refused (``ProtocolError``, a ``ValueError``) rather than passed on.
"""

from __future__ import annotations

import math

import numpy as np

from app import ipc
from app.findings.types import (
    DEMO_DISCLAIMER,
    AnalysisResult,
    Box,
    BoxOverlay,
    Finding,
    HeatmapOverlay,
    LabelMapOverlay,
    Landmark,
    LandmarkOverlay,
    Overlay,
    Provenance,
)
from app.study.geometry import ImageVolume


# ---- geometry ---------------------------------------------------------------------------------
def geometry_json(volume: ImageVolume) -> dict:
    return {
        "shape_kji": [int(n) for n in volume.shape],
        "spacing_kji": [float(s) for s in volume.spacing],
        "origin_lps": [float(v) for v in volume.origin],
        "direction": [[float(v) for v in row] for row in volume.direction],
    }


def geometry_from_json(d: dict, array: np.ndarray | None = None) -> ImageVolume:
    """ImageVolume from stored geometry; without an array, a zero-cost placeholder of that shape."""
    shape = ipc.items(d, "shape_kji")
    if len(shape) != 3 or not all(ipc.is_int(n) and n >= 0 for n in shape):
        raise ipc.ProtocolError("'shape_kji' must be 3 integers >= 0")
    rows = ipc.items(d, "direction")
    if len(rows) != 3:
        raise ipc.ProtocolError("'direction' must be 3 rows")
    direction = [ipc.numbers({"row": r}, "row", 3) for r in rows]
    if array is None:
        array = np.broadcast_to(np.zeros((), dtype=np.uint8), tuple(shape))
    elif array.ndim not in (3, 4) or list(array.shape[:3]) != shape:
        raise ipc.ProtocolError(f"array of shape {array.shape} for a grid of {shape}")
    spacing = ipc.numbers(d, "spacing_kji", 3)
    return ImageVolume(
        array, spacing, np.array(ipc.numbers(d, "origin_lps", 3)), np.array(direction)
    )


def volume_record(volume: ImageVolume, table: ipc.ArrayTable) -> dict:
    """An ImageVolume in a message: its geometry and the index of its array."""
    return {"geometry": geometry_json(volume), "array": table.add(volume.array)}


def volume_from_record(d: dict, arrays: list[np.ndarray]) -> ImageVolume:
    return geometry_from_json(ipc.mapping(d, "geometry"), ipc.array(arrays, d, "array"))


# ---- findings and provenance ------------------------------------------------------------------
def finding_from_json(d: dict) -> Finding:
    probability = ipc.number(d, "probability", optional=True)
    return Finding(
        label=ipc.text(d, "label"),
        probability=math.nan if probability is None else probability,
        threshold=ipc.number(d, "threshold", 0.5),
        group=ipc.text(d, "group", ""),
        parent=ipc.text(d, "parent", ""),
        side=ipc.text(d, "side", ""),
        region_id=ipc.text(d, "region_id", ""),
        term=ipc.text(d, "term", ""),
        subject=ipc.text(d, "subject", ""),
        normal_class=ipc.flag(d, "normal_class", None, optional=True),  # absent: from the label
    )


def provenance_from_json(p: dict) -> Provenance:
    if not isinstance(p, dict):
        raise ipc.ProtocolError("provenance must be an object")
    # null or absent in older files: empty
    weights, timings, inputs, domain = (
        ipc.mapping({k: p.get(k) or {}}, k)
        for k in ("weights_sha256", "timings_s", "inputs", "domain_check")
    )
    if not all(isinstance(v, str) for v in weights.values()):
        raise ipc.ProtocolError("'weights_sha256' must map files to strings")
    if not all(isinstance(v, dict) for v in inputs.values()):
        raise ipc.ProtocolError("'inputs' must map slots to objects")
    return Provenance(
        task_id=ipc.text(p, "task_id"),
        model_name=ipc.text(p, "model_name"),
        model_version=ipc.text(p, "model_version"),
        weights_sha256=dict(weights),
        paper=ipc.text(p, "paper", ""),
        trained_on=ipc.text(p, "trained_on", ""),
        device=ipc.text(p, "device", ""),
        disclaimer=ipc.text(p, "disclaimer", DEMO_DISCLAIMER),
        timings_s={k: ipc.number(timings, k) for k, v in timings.items() if v is not None},
        created=ipc.text(p, "created", ""),
        inputs=dict(inputs),
        domain_check=dict(domain),
    )


# ---- overlays ---------------------------------------------------------------------------------
def box_json(box: Box, ref: ImageVolume | None) -> dict:
    """A box in image indices and, given its reference grid, in LPS millimetres."""
    d = {
        "i0": float(box.i0),
        "j0": float(box.j0),
        "i1": float(box.i1),
        "j1": float(box.j1),
        "k": int(box.k),
        "caption": box.caption,
        "score": None if box.score is None else float(box.score),
        "region_id": box.region_id,
    }
    if ref is not None:
        c0 = ref.index_to_world(np.array([box.i0, box.j0, float(box.k)]))
        c1 = ref.index_to_world(np.array([box.i1, box.j1, float(box.k)]))
        di, dj = ref.spacing_ijk[0], ref.spacing_ijk[1]
        d["mm"] = {
            "corner0_lps": [round(float(v), 3) for v in c0],
            "corner1_lps": [round(float(v), 3) for v in c1],
            "width_mm": round(float((abs(box.i1 - box.i0) + 1) * di), 3),
            "height_mm": round(float((abs(box.j1 - box.j0) + 1) * dj), 3),
        }
    return d


def _box_from_json(b: dict) -> Box:
    return Box(ipc.number(b, "i0"), ipc.number(b, "j0"), ipc.number(b, "i1"),
               ipc.number(b, "j1"), ipc.integer(b, "k", 0), ipc.text(b, "caption", ""),
               ipc.number(b, "score", None, optional=True), ipc.text(b, "region_id", ""))  # fmt: skip


def overlay_json(ov: Overlay) -> dict:
    """Everything of an overlay but its pixels (a file or a payload, the caller's choice):
    ``type`` labelmap, heatmap, boxes, landmarks, or unsupported (a map without an image)."""
    common = {"name": ov.name, "visible": bool(ov.visible), "opacity": float(ov.opacity),
              "slot": ov.slot}  # fmt: skip
    if isinstance(ov, LabelMapOverlay) and ov.image is not None:
        labels = {str(k): [v[0], [int(c) for c in v[1]]] for k, v in ov.labels.items()}
        return {"type": "labelmap", **common, "labels": labels,
                "geometry": geometry_json(ov.image)}  # fmt: skip
    if isinstance(ov, HeatmapOverlay) and ov.image is not None:
        return {"type": "heatmap", **common, "colormap": ov.colormap,
                "value_range": [float(v) for v in ov.value_range], "label": ov.label,
                "geometry": geometry_json(ov.image)}  # fmt: skip
    if isinstance(ov, BoxOverlay):
        ref = ov.reference
        return {"type": "boxes", **common, "color": [int(c) for c in ov.color],
                "reference": geometry_json(ref) if ref is not None else None,
                "boxes": [box_json(b, ref) for b in ov.boxes]}  # fmt: skip
    if isinstance(ov, LandmarkOverlay):
        marks = [{"name": m.name, "position_lps": [float(v) for v in m.position_lps],
                  "probability": None if m.probability is None else float(m.probability)}
                 for m in ov.landmarks]  # fmt: skip
        return {"type": "landmarks", **common, "color": [int(c) for c in ov.color],
                "landmarks": marks}  # fmt: skip
    return {"type": "unsupported", **common, "class": type(ov).__name__}


def overlay_from_json(d: dict, image: ImageVolume | None = None,
                      reference: ImageVolume | None = None) -> Overlay | None:  # fmt: skip
    """The overlay of an ``overlay_json`` record; ``image`` is a map's pixels, ``reference`` a
    box overlay's grid (else a placeholder of its geometry). None for an unsupported type."""
    common = {"name": ipc.text(d, "name"), "visible": ipc.flag(d, "visible", True),
              "opacity": ipc.number(d, "opacity", 0.5), "slot": ipc.text(d, "slot", "")}  # fmt: skip
    kind = ipc.text(d, "type")
    if kind in ("labelmap", "heatmap") and image is None:
        raise ipc.ProtocolError(f"{kind} {common['name']!r} without its pixels")
    if kind == "labelmap":
        labels = {}
        for key, value in ipc.mapping(d, "labels", {}).items():
            if not key.lstrip("-").isdigit() or not isinstance(value, list) or len(value) != 2:
                raise ipc.ProtocolError(f"label {key!r}: expected [name, [r, g, b]]")
            pair = {"name": value[0], "rgb": value[1]}
            rgb = tuple(int(c) for c in ipc.numbers(pair, "rgb", 3))
            labels[int(key)] = (ipc.text(pair, "name"), rgb)
        return LabelMapOverlay(**common, image=image, labels=labels)
    if kind == "heatmap":
        return HeatmapOverlay(**common, image=image, colormap=ipc.text(d, "colormap", "jet"),
                              value_range=ipc.numbers(d, "value_range", 2, [0.0, 1.0]),
                              label=ipc.text(d, "label", ""))  # fmt: skip
    if kind == "boxes":
        colour = tuple(int(c) for c in ipc.numbers(d, "color", 3, [255, 255, 0]))
        geometry = d.get("reference")
        if reference is None and geometry is not None:
            reference = geometry_from_json(ipc.mapping(d, "reference"))
        boxes = [_box_from_json(b) for b in ipc.items(d, "boxes", [])]
        return BoxOverlay(**common, reference=reference, boxes=boxes, color=colour)
    if kind == "landmarks":
        colour = tuple(int(c) for c in ipc.numbers(d, "color", 3, [0, 255, 0]))
        marks = [Landmark(ipc.text(m, "name"), ipc.numbers(m, "position_lps", 3),
                          ipc.number(m, "probability", None, optional=True))
                 for m in ipc.items(d, "landmarks", [])]  # fmt: skip
        return LandmarkOverlay(**common, landmarks=marks, color=colour)
    return None


# ---- in messages (app.ipc): pixels as payloads ------------------------------------------------
def overlays_record(overlays: list[Overlay], table: ipc.ArrayTable) -> list[dict]:
    out = []
    for ov in overlays:
        d = overlay_json(ov)
        image = getattr(ov, "image", None)
        if d["type"] in ("labelmap", "heatmap"):
            d["array"] = table.add(image.array)
        elif d["type"] == "boxes" and ov.reference is not None:
            d["reference_array"] = table.add(ov.reference.array)
        out.append(d)
    return out


def overlays_from_record(records: list, arrays: list[np.ndarray]) -> list[Overlay]:
    out = []
    for d in records:
        image = reference = None
        if ipc.text(d, "type") in ("labelmap", "heatmap"):
            image = geometry_from_json(ipc.mapping(d, "geometry"), ipc.array(arrays, d, "array"))
        elif d.get("reference") is not None and "reference_array" in d:
            geometry = ipc.mapping(d, "reference")
            reference = geometry_from_json(geometry, ipc.array(arrays, d, "reference_array"))
        ov = overlay_from_json(d, image, reference)
        if ov is None:
            raise ipc.ProtocolError(f"overlay of type {d.get('type')!r} cannot be passed on")
        out.append(ov)
    return out


def finding_record(f: Finding) -> dict:
    """A finding with its exact probability (findings.json rounds it for people)."""
    return {**f.to_json(), "probability": float(f.probability)}


# A task's ``extra`` may hold numpy arrays (boxes, per-slice maps): they travel as array payloads,
# each replaced by {ARRAY_KEY: index}, so a child reads back the array it was given, not a list.
ARRAY_KEY = "$array"


def extra_record(value, table: ipc.ArrayTable):
    if isinstance(value, np.ndarray) and value.dtype.str in ipc.DTYPES:
        return {ARRAY_KEY: table.add(value)}
    if isinstance(value, dict):
        return {str(k): extra_record(v, table) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [extra_record(v, table) for v in value]
    return value  # JSON values, and numpy scalars (ipc writes them as numbers)


def extra_from_record(value, arrays: list[np.ndarray]):
    if isinstance(value, dict):
        if set(value) == {ARRAY_KEY}:
            return ipc.array(arrays, value, ARRAY_KEY)
        return {k: extra_from_record(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [extra_from_record(v, arrays) for v in value]
    return value


def result_record(result: AnalysisResult, table: ipc.ArrayTable) -> dict:
    prov = result.provenance.to_json()
    prov["timings_s"] = dict(result.provenance.timings_s)  # unrounded
    return {
        "task_id": result.task_id,
        "findings": [finding_record(f) for f in result.findings],
        "overlays": overlays_record(result.overlays, table),
        "provenance": prov,
        "summary": result.summary,
        "extra": extra_record(result.extra, table),
        "no_call": result.no_call,
    }


def result_from_record(d: dict, arrays: list[np.ndarray]) -> AnalysisResult:
    return AnalysisResult(
        task_id=ipc.text(d, "task_id"),
        findings=[finding_from_json(f) for f in ipc.items(d, "findings")],
        overlays=overlays_from_record(ipc.items(d, "overlays"), arrays),
        provenance=provenance_from_json(ipc.mapping(d, "provenance")),
        summary=ipc.text(d, "summary", ""),
        extra=extra_from_record(ipc.mapping(d, "extra", {}), arrays),
        no_call=ipc.text(d, "no_call", ""),
    )
