"""The femur result's overlays (``adapter.py`` runs the network, ``findings.py`` reads each side):
every shown class's activation map sampled from each side's STN region onto one coarse grid over
the radiograph, scaled by the side's probability of the class; the CAM boxes and the regions of
interest.
"""

from __future__ import annotations

import math

import numpy as np

from app.findings import BoxOverlay, HeatmapOverlay
from app.findings.types import HEATMAP_MAX_SIDE, Box
from app.study.model import Series
from models.femur_ao.cam import sample_cams
from models.femur_ao.findings import THRESHOLD
from models.femur_ao.labels import GROUPS
from models.femur_ao.sides import SideCrop

# The maps shown: one per finding label ("normal" is the 3-class head's normal).
SHOWN_MAPS = {
    "fracture": 1,
    "normal": 2,
    "A": 3,
    "B": 4,
    **{s: 5 + n for n, s in enumerate(GROUPS["subtype"])},
}


def cam_overlays(series: Series, sides: list[dict], input_size: int) -> list:
    """The class activation maps of every shown class over the whole radiograph (both sides
    pasted on one coarse grid), the CAM boxes and the STN regions of interest."""
    ref = series.image
    grid, factor = ref.in_plane_coarsened(HEATMAP_MAX_SIDE)
    fracture_sides = [s for s in sides if s["p_fracture"] >= THRESHOLD]
    # Shown at first: the map of the first fractured side's type; on a film with no side
    # called fractured no map is switched on (a reader asks for it in the layer list), so
    # a normal film is not painted over.
    top = fracture_sides[0]["type_label"] if fracture_sides else None
    overlays: list = []
    idx = list(SHOWN_MAPS.values())
    canvases = np.zeros((len(idx), *grid.shape[1:]), np.float32)
    for s in sides:
        weights = np.array([class_probability(s, label) for label in SHOWN_MAPS])
        paste(
            canvases,
            s["cams"][idx],
            s["theta_array"],
            s["crop"],
            factor,
            input_size,
            weights,
        )
    for n, label in enumerate(SHOWN_MAPS):
        canvas = canvases[n]
        overlays.append(
            HeatmapOverlay(
                name=f"CAM {label}",
                image=grid.with_array(canvas[None]),
                colormap="jet",
                value_range=(0.0, 1.0),
                label=label,
                visible=label == top,
                opacity=0.45,
            )
        )
    cam_boxes = [
        Box(b["i0"], b["j0"], b["i1"], b["j1"], 0, b["caption"], b["score"])
        for s in sides
        for b in s["cam_boxes"]
    ]
    overlays.append(
        BoxOverlay(name="CAM boxes", reference=ref, boxes=cam_boxes, color=(255, 64, 64))
    )
    roi = [Box(*s["roi_box"], 0, f"{s['side']} STN region of interest", None) for s in sides]
    overlays.append(
        BoxOverlay(name="STN region of interest", reference=ref, boxes=roi, color=(0, 200, 255))
    )
    return overlays


def class_probability(side: dict, label: str) -> float:
    """The side's probability of the class a shown map explains."""
    if label == "fracture":
        return side["p_fracture"]
    return side["p_type"].get(label, side["p_subtype_joint"].get(label, 0.0))


def paste(
    canvases: np.ndarray,
    cams: np.ndarray,
    theta: np.ndarray,
    crop: SideCrop,
    f: int,
    n: int,
    weights: np.ndarray,
) -> None:
    """Sample a side's ROI maps (K, S, S) onto the coarse image grid, each normalised to 0..1
    over its own cells (the paper's min-max), then scaled by the side's probability of the
    map's class (``weights``, K): min-max alone makes the map of an intact side peak as
    brightly as a fractured one's, so a reader would see "fracture" heat on a normal hip.
    Zero outside the STN region."""
    r0, c0, size = crop.window
    h, w = canvases.shape[1:]
    jr = np.arange(r0 // f, min(h, math.ceil((r0 + size) / f)))
    ic = np.arange(c0 // f, min(w, math.ceil((c0 + size) / f)))
    scale = n / size
    # Coarse pixel centres -> continuous input coordinates (pixel k spans [k, k + 1]).
    v = (jr * f + f / 2.0 - r0) * scale
    u = (ic * f + f / 2.0 - c0) * scale
    if crop.mirrored:
        u = n - u
    uu, vv = np.meshgrid(u, v)
    vals = sample_cams(cams, theta, uu, vv, n)
    lo = cams.reshape(len(cams), -1).min(1)[:, None, None]
    hi = cams.reshape(len(cams), -1).max(1)[:, None, None]
    vals = np.nan_to_num((vals - lo) / np.maximum(hi - lo, 1e-12), nan=0.0)
    vals *= weights[:, None, None]
    inside = (vv >= 0) & (vv <= n) & (uu >= 0) & (uu <= n)
    region = canvases[:, jr[0] : jr[-1] + 1, ic[0] : ic[-1] + 1]
    np.maximum(region, np.where(inside, vals, 0.0).astype(np.float32), out=region)
