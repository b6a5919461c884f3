"""Proximal femur AO classification with class activation maps (numpy + ONNX Runtime only).

Per femur (both halves of an AP pelvis, or the one hip of a hip film): the hierarchy fracture ->
type A/B -> subtype A1..B3 with probabilities, the class activation map of every class (the
prediction layer's weights on the transition layer's maps, returned by the ONNX graph), boxes
from the maps (the paper's 60..180 procedure) and the spatial transformer's region of interest,
all in the radiograph's own geometry.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from app.engine.adapter import (
    AnalysisRequest,
    ExplainUnavailable,
    InputRejected,
    ModelOutput,
    OnnxAdapter,
    StageTimer,
)
from app.engine.runtime import run_session, session_for
from app.engine.task import InputSlot
from app.findings import DEMO_DISCLAIMER, AnalysisResult, BoxOverlay, Finding, HeatmapOverlay
from app.findings.types import Box, Overlay
from app.study.geometry import ImageVolume
from app.study.model import Series
from models.femur_ao.cam import boxes_from_map, cam_to_input, sample_cams
from models.femur_ao.preprocess import network_inputs, series_pixels
from models.femur_ao.sides import SideCrop
from models.femur_ao.task import TASK

WEIGHTS_DIR = Path(__file__).parent / "weights"
# Body parts that are certainly not a hip. A deny list, not an allow list: films of the hip are
# labelled HIP, PELVIS, FEMUR, LEG, ABDOMEN or nothing at all in practice.
NOT_HIP = frozenset(
    "FOOT ANKLE CALCANEUS HEEL KNEE HAND WRIST ELBOW SHOULDER ARM CHEST THORAX SKULL HEAD "
    "CSPINE TSPINE LSPINE SPINE CERVICALSPINE LUMBARSPINE THORACICSPINE EXTREMITY".split()
)
TASK_ID = TASK.id
THRESHOLD = 0.5
MODEL_FILE = "femur_ao.onnx"
GROUPS = {
    "fracture": ("normal", "fracture"),
    "type": ("normal", "A", "B"),
    "subtype": ("A1", "A2", "A3", "B1", "B2", "B3"),
}
CAM_LABELS = tuple(label for g in GROUPS.values() for label in g)  # the graph's CAM order
# The maps shown: one per finding label ("normal" is the 3-class head's normal).
SHOWN_MAPS = {
    "fracture": 1,
    "normal": 2,
    "A": 3,
    "B": 4,
    **{s: 5 + n for n, s in enumerate(GROUPS["subtype"])},
}
HEATMAP_MAX_SIDE = 512  # heatmaps are stored on a grid at most this many pixels across
PHANTOM_MANUFACTURER = "OsteoView phantom generator"


class FemurAOAdapter(OnnxAdapter):
    default_weights_dir = WEIGHTS_DIR
    spec = TASK
    explain_methods = ("cam", "shap")
    paper = (
        "Jimenez-Sanchez, Kazi et al., Weakly-supervised localization and classification of "
        "proximal femur fractures (shared/papers/femur_weakly_supervised.txt)"
    )
    labels = ("fracture", "normal", "A", "B", *GROUPS["subtype"])

    # ------------------------------------------------------------------------------------
    def check_slot(self, slot: InputSlot, series: Series) -> None:
        modality = (series.modality or "").upper()
        if modality in ("CT", "MR", "PT", "NM") or series.kind in ("volume", "labelmap"):
            raise InputRejected(
                f"{self.title} needs {slot.description}; this series is a "
                f"{modality or 'non-radiograph'} {series.kind} with {series.shape[0]} slice(s). "
                "Open a hip or pelvis radiograph (CR/DX) instead."
            )
        if series.shape[0] != 1:
            raise InputRejected(
                f"{self.title} needs one 2-D radiograph; this series has {series.shape[0]} frames."
            )
        super().check_slot(slot, series)
        body_part = (series.body_part or "").upper().replace(" ", "").replace("-", "")
        if body_part in NOT_HIP:
            raise InputRejected(
                f"{self.title} needs {slot.description}; this radiograph is labelled "
                f"BodyPartExamined={body_part}."
            )
        rows, cols = series.shape[1:]
        if min(rows, cols) < 64:
            raise InputRejected(
                f"{self.title} needs a radiograph at least 64 pixels across; this one is {cols}x{rows}."
            )

    # ------------------------------------------------------------------------------------
    def infer(self, request: AnalysisRequest, timer: StageTimer) -> ModelOutput:
        series = request["radiograph"]
        data = self.manifest.data
        input_size = int(data["config"]["input_size"])
        self._input_size = input_size
        with timer.stage("weights", 0.0):
            sess = session_for(self.manifest, MODEL_FILE)
        with timer.stage("side detection and crops", 0.1):
            pixels, laterality = series_pixels(series)  # shared with training: preprocess.py
            layout, crops = network_inputs(pixels, input_size, laterality)
        with timer.stage("inference", 0.3):
            batch = np.stack([c.pixels for c in crops])[:, None]
            p_frac, p_type, p_sub, cams, theta = run_session(sess, {"image": batch})
        with timer.stage("maps and boxes", 0.7):
            sides = [
                _side_result(
                    c, p_frac[n], p_type[n], p_sub[n], cams[n], theta[n], input_size, pixels.shape
                )
                for n, c in enumerate(crops)
            ]
            overlays = self._overlays(series, sides)
        findings = [f for s in sides for f in s["findings"]]
        real = str(series.meta.get("manufacturer", "")) != PHANTOM_MANUFACTURER
        m = self.manifest.data
        extra = {
            "layout": layout.view,
            "side_detection": layout.how,
            "model_config": m.get("config", {}).get("name", ""),
            "threshold": THRESHOLD,
            "subtype_probabilities": (
                "findings: P(type) shared among its subtypes in the ratios of the 6-class "
                "scenario (so A1+A2+A3 = P(A)); extra.sides.*.p_subtype_given_fracture: the "
                "6-class scenario itself, conditional on a fracture as in the paper"
            ),
            "cam_boxes_from": "CAM of the predicted type (A or B) on sides called fractured",
            "heatmaps": [o.name for o in overlays if isinstance(o, HeatmapOverlay)],
            "sides": {s["side"]: _side_extra(s, series) for s in sides},
            "real_image": real,
        }
        return ModelOutput(findings, overlays, _summary(sides, layout, real), extra)

    def explain(
        self,
        request: AnalysisRequest,
        result: AnalysisResult,
        finding: Finding,
        method: str,
        timer: StageTimer,
    ) -> list[Overlay]:
        """Method "cam": the class activation map of the finding's class, computed in the ONNX
        graph during the run (the paper's CAM), so explaining costs a lookup, not an inference.
        Method "shap": SHAP values on the network input of the finding's side
        (models/femur_ao/explain.py), a signed map on the radiograph."""
        if method == "shap":
            from models.femur_ao.explain import shap_overlay  # lazy: shap is heavy

            input_size = int(self.manifest.data["config"]["input_size"])
            with timer.stage("SHAP", 0.0):
                sess = session_for(self.manifest, MODEL_FILE)
                return [shap_overlay(sess, request["radiograph"], finding, input_size, timer)]
        if method != "cam":
            raise ExplainUnavailable(f"{self.title} explains by CAM or SHAP, not '{method}'")
        with timer.stage("class activation map", 0.0):
            for ov in result.overlays:
                # the run's maps are named "CAM <label>"; other heatmaps (SHAP) may share a label
                if isinstance(ov, HeatmapOverlay) and ov.name == f"CAM {finding.label}":
                    return [ov]
        raise ExplainUnavailable(f"{self.title} has no class activation map for {finding.label}")

    # ------------------------------------------------------------------------------------
    def _overlays(self, series: Series, sides: list[dict]) -> list:
        ref = series.image
        rows, cols = series.shape[1:]
        grid, factor = _heatmap_grid(ref)
        fracture_sides = [s for s in sides if s["p_fracture"] >= THRESHOLD]
        # Shown at first: the map of the first fractured side's type, else the fracture map.
        top = fracture_sides[0]["type_label"] if fracture_sides else "fracture"
        overlays: list = []
        idx = list(SHOWN_MAPS.values())
        canvases = np.zeros((len(idx), *grid.shape[1:]), np.float32)
        for s in sides:
            _paste(canvases, s["cams"][idx], s["theta_array"], s["crop"], factor, self._input_size)
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

    def domain_features(self, request: AnalysisRequest) -> dict[str, np.ndarray]:
        """Input-domain features (app.engine.domain) of the crops the network sees, one row each."""
        from app.engine.domain import features_of

        pixels, laterality = series_pixels(request["radiograph"])
        size = int(self.manifest.data["config"]["input_size"])
        _, crops = network_inputs(pixels, size, laterality)
        return {"radiograph": features_of(c.pixels for c in crops)}


# ----------------------------------------------------------------------------------------------


def _side_result(
    crop: SideCrop, p_frac, p_type, p_sub, cams, theta, input_size: int, image_shape
) -> dict:
    side = crop.side
    # Maps in the network's input grid (NaN outside the STN ROI), un-mirrored to image order.
    type_labels = GROUPS["type"]
    type_label = type_labels[1 + int(np.argmax(p_type[1:]))]  # A or B, the likelier fracture type
    subtypes = GROUPS["subtype"]
    findings = [
        Finding("fracture", float(p_frac[1]), THRESHOLD, "fracture", "", side, f"{side}-roi"),
    ]
    for k, label in enumerate(type_labels):
        findings.append(
            Finding(label, float(p_type[k]), THRESHOLD, "type", "fracture", side, f"{side}-roi")
        )
    joint = subtype_probabilities(p_type, p_sub)
    for label in subtypes:
        findings.append(
            Finding(label, joint[label], THRESHOLD, "subtype", label[0], side, f"{side}-roi")
        )
    cam_boxes = []
    if p_frac[1] >= THRESHOLD:
        m = cam_to_input(cams[CAM_LABELS.index(type_label, 2)], theta, input_size)
        for b in boxes_from_map(m[:, ::-1] if crop.mirrored else m):
            # The map was un-mirrored above, so its columns already run in image order.
            r0, c0, size = crop.window
            k = size / input_size
            i0, j0, i1, j1 = [c0 + b.u0 * k], [r0 + b.v0 * k], [c0 + b.u1 * k], [r0 + b.v1 * k]
            cam_boxes.append(
                {
                    "i0": float(min(i0[0], i1[0])),
                    "j0": float(j0[0]),
                    "i1": float(max(i0[0], i1[0])),
                    "j1": float(j1[0]),
                    "caption": f"{side} {type_label} CAM region",
                    "score": round(b.score, 4),
                    "label": type_label,
                }
            )
    # STN region of interest: the warped corners of the ROI grid, in image pixels.
    corners = (
        np.array([[-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], float)
        @ np.asarray(theta, float).T
    )
    u, v = (corners[:, 0] + 1) * input_size / 2, (corners[:, 1] + 1) * input_size / 2
    ii, jj = crop.to_image(u, v, input_size)
    # The warp may reach past the window (zero padding there); the box drawn stops at the film.
    rows, cols = image_shape
    roi_box = (
        float(np.clip(ii.min(), 0, cols)),
        float(np.clip(jj.min(), 0, rows)),
        float(np.clip(ii.max(), 0, cols)),
        float(np.clip(jj.max(), 0, rows)),
    )
    return {
        "side": side,
        "crop": crop,
        "p_fracture": float(p_frac[1]),
        "p_type": {k: float(p_type[n]) for n, k in enumerate(type_labels)},
        "p_subtype": {k: float(p_sub[n]) for n, k in enumerate(subtypes)},
        "p_subtype_joint": joint,
        "type_label": type_label,
        "subtype_label": subtypes[int(np.argmax(p_sub))],
        "findings": findings,
        "cams": np.asarray(cams, np.float32),
        "theta_array": np.asarray(theta, np.float64),
        "cam_boxes": cam_boxes,
        "roi_box": roi_box,
        "theta": np.asarray(theta, float).round(5).tolist(),
    }


def subtype_probabilities(p_type, p_sub) -> dict[str, float]:
    """Subtype probabilities that sum to their type's: P(T) * P(s | fracture) / sum over T.

    The 3-class scenario gives P(normal), P(A), P(B); the 6-class one the subtype given a
    fracture. Sharing each type's probability among its subtypes in the 6-class ratios keeps the
    displayed tree consistent (a femur called normal cannot show a "positive" subtype).
    """
    out = {}
    for n, t in ((1, "A"), (2, "B")):
        names = [s for s in GROUPS["subtype"] if s[0] == t]
        cond = np.array([float(p_sub[GROUPS["subtype"].index(s)]) for s in names])
        share = cond / cond.sum() if cond.sum() > 0 else np.full(len(names), 1 / len(names))
        out.update({s: float(p_type[n]) * float(v) for s, v in zip(names, share, strict=True)})
    return out


def _heatmap_grid(ref: ImageVolume) -> tuple[ImageVolume, int]:
    """A coarser grid over the whole radiograph (factor f in both axes) for the maps."""
    rows, cols = ref.shape[1:]
    f = max(1, math.ceil(max(rows, cols) / HEATMAP_MAX_SIDE))
    shape = (1, math.ceil(rows / f), math.ceil(cols / f))
    centre = (f - 1) / 2.0
    origin = ref.index_to_world(np.array([centre, centre, 0.0]))
    dk, dj, di = ref.spacing
    grid = ImageVolume(
        np.zeros(shape, np.float32), (dk, dj * f, di * f), origin, ref.direction.copy()
    )
    return grid, f


def _paste(
    canvases: np.ndarray, cams: np.ndarray, theta: np.ndarray, crop: SideCrop, f: int, n: int
) -> None:
    """Sample a side's ROI maps (K, S, S) onto the coarse image grid, each normalised to 0..1
    over its own cells (the paper's min-max), zero outside the STN region."""
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
    inside = (vv >= 0) & (vv <= n) & (uu >= 0) & (uu <= n)
    region = canvases[:, jr[0] : jr[-1] + 1, ic[0] : ic[-1] + 1]
    np.maximum(region, np.where(inside, vals, 0.0).astype(np.float32), out=region)


def _side_extra(s: dict, series: Series) -> dict:
    dk, dj, di = series.image.spacing

    def mm(b):
        return [round(b[0] * di, 2), round(b[1] * dj, 2), round(b[2] * di, 2), round(b[3] * dj, 2)]

    r0, c0, size = s["crop"].window
    return {
        "window_px": {"row0": r0, "col0": c0, "size": size},
        "mirrored_for_network": s["crop"].mirrored,
        "p_fracture": round(s["p_fracture"], 6),
        "p_type": {k: round(v, 6) for k, v in s["p_type"].items()},
        "p_subtype": {k: round(v, 6) for k, v in s["p_subtype_joint"].items()},
        "p_subtype_given_fracture": {k: round(v, 6) for k, v in s["p_subtype"].items()},
        "stn_theta": s["theta"],
        "roi_box_px": [round(v, 2) for v in s["roi_box"]],
        "roi_box_mm": mm(s["roi_box"]),
        "cam_boxes": [
            {
                "label": b["label"],
                "score": b["score"],
                "box_px": [round(b[k], 2) for k in ("i0", "j0", "i1", "j1")],
                "box_mm": mm([b["i0"], b["j0"], b["i1"], b["j1"]]),
            }
            for b in s["cam_boxes"]
        ],
        "box_units": "px: (column, row) image indices; mm: in-plane from the top-left pixel",
    }


def _summary(sides: list[dict], layout, real: bool) -> str:
    parts = []
    for s in sides:
        if s["p_fracture"] >= THRESHOLD:
            t = s["type_label"]
            sub = max(
                (k for k in s["p_subtype"] if k.startswith(t)), key=lambda k: s["p_subtype"][k]
            )
            parts.append(
                f"{s['side']}: fracture p={s['p_fracture']:.2f}, type {t} "
                f"p={s['p_type'][t]:.2f}, subtype {sub} p={s['p_subtype_joint'][sub]:.2f}"
            )
        else:
            parts.append(f"{s['side']}: no fracture (p={s['p_fracture']:.2f})")
    text = "; ".join(parts)
    if layout.view == "single":
        text += f" [single hip, side from {layout.how}]"
    if real:
        text += (
            ". Not a phantom: the demo weights were trained only on synthetic phantoms, "
            "so on this real radiograph their output means little"
        )
    return f"{text}. Demo weights: {DEMO_DISCLAIMER}."
