"""Proximal femur AO classification with class activation maps (numpy + ONNX Runtime only).

Per femur (both halves of an AP pelvis, or the one hip of a hip film): the hierarchy fracture ->
type A/B -> subtype A1..B3 with probabilities, the class activation map of every class (the
prediction layer's weights on the transition layer's maps, returned by the ONNX graph), boxes
from the maps (the paper's 60..180 procedure) and the spatial transformer's region of interest,
all in the radiograph's own geometry. Each side's findings are read in ``findings.py``, the maps
and boxes laid over the radiograph in ``overlays.py``.
"""

from __future__ import annotations

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
from app.findings import AnalysisResult, Finding, HeatmapOverlay
from app.findings.types import Overlay
from app.study.model import Series
from models.femur_ao.findings import THRESHOLD, side_extra, side_result, summary
from models.femur_ao.labels import GROUPS
from models.femur_ao.overlays import cam_overlays
from models.femur_ao.preprocess import network_inputs, series_pixels
from models.femur_ao.task import TASK

WEIGHTS_DIR = Path(__file__).parent / "weights"
# Body parts that are certainly not a hip. A deny list, not an allow list: films of the hip are
# labelled HIP, PELVIS, FEMUR, LEG, ABDOMEN or nothing at all in practice.
NOT_HIP = frozenset(
    "FOOT ANKLE CALCANEUS HEEL KNEE HAND WRIST ELBOW SHOULDER ARM CHEST THORAX SKULL HEAD "
    "CSPINE TSPINE LSPINE SPINE CERVICALSPINE LUMBARSPINE THORACICSPINE EXTREMITY".split()
)
TASK_ID = TASK.id
MODEL_FILE = "femur_ao.onnx"
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
                side_result(
                    c, p_frac[n], p_type[n], p_sub[n], cams[n], theta[n], input_size, pixels.shape
                )
                for n, c in enumerate(crops)
            ]
            overlays = cam_overlays(series, sides, input_size)
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
            "sides": {s["side"]: side_extra(s, series) for s in sides},
            "real_image": real,
        }
        return ModelOutput(findings, overlays, summary(sides, layout, real), extra)

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

    def domain_features(self, request: AnalysisRequest) -> dict[str, np.ndarray]:
        """Input-domain features (app.engine.domain) of the crops the network sees, one row each."""
        from app.engine.domain import features_of

        pixels, laterality = series_pixels(request["radiograph"])
        size = int(self.manifest.data["config"]["input_size"])
        _, crops = network_inputs(pixels, size, laterality)
        return {"radiograph": features_of(c.pixels for c in crops)}
