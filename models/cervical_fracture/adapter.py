"""Cervical spine fracture on CT (RSNA 2022, two stages): numpy + ONNX Runtime only.

Stage 1 segments C1..C7 (+ other spine) slice by slice on 2.5D inputs; the label map comes back
in the study's own geometry. Stage 2 classifies each vertebra from 24 slices cropped to its box;
the patient-level probability is 1 - prod(1 - p) over the top-N vertebrae (paper eq. 4.4).
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
from app.engine.runtime import Manifest, run_session, session_for
from app.engine.task import InputSlot
from app.findings import DEMO_DISCLAIMER, AnalysisResult, BoxOverlay, Finding, LabelMapOverlay
from app.findings.types import Box, Overlay
from app.study.model import Series
from models.cervical_fracture import pipeline as P
from models.cervical_fracture.inference import PipelineOutput, run_pipeline, run_stage1
from models.cervical_fracture.labels import LABEL_TABLE
from models.cervical_fracture.task import TASK

WEIGHTS_DIR = Path(__file__).parent / "weights"
TASK_ID = TASK.id
THRESHOLD = 0.5
MIN_AXIS_MM = 60.0  # C1-C7 span about 100-130 mm in adults; less cannot hold the cervical spine
MAX_SLICE_MM = 5.0
# BodyPartExamined values that say the series is not of the neck (when the file says at all)
NOT_NECK = {
    "ABDOMEN", "PELVIS", "LSPINE", "LUMBAR", "SSPINE", "SACRUM", "KNEE", "HIP", "ANKLE", "FOOT",
    "HAND", "WRIST", "ELBOW", "SHOULDER", "LEG", "ARM", "BREAST", "ABDOMENPELVIS", "EXTREMITY",
}  # fmt: skip


def _stage1_fn(manifest: Manifest):
    sess = session_for(manifest, "stage1.onnx")
    return lambda x: run_session(sess, {"slices": x})[0]


def _stage2_fn(manifest: Manifest):
    sess = session_for(manifest, "stage2.onnx")
    return lambda x: run_session(sess, {"sequence": x})[0]


class CervicalFractureAdapter(OnnxAdapter):
    default_weights_dir = WEIGHTS_DIR
    spec = TASK
    paper = (
        "2.5D CNN + BiLSTM two-stage cervical spine fracture detection, RSNA 2022 "
        "(shared/papers/cervical_ct_rsna2022.txt, section 4.5)"
    )
    labels = (*P.VERTEBRAE, "patient_overall")
    explain_methods = ("shap", "cam")

    def __init__(self, weights_dir: Path | None = None, top_n: int = P.TOP_N) -> None:
        super().__init__(weights_dir)
        self.top_n = top_n

    # ---- input checks --------------------------------------------------------------------------
    def check_slot(self, slot: InputSlot, series: Series) -> None:
        super().check_slot(slot, series)
        if slot.name == "vertebrae":
            return  # a label map: its grid is checked against the CT in check_input
        need = f"{self.title} needs {slot.description}"
        body_part = (series.body_part or "").upper().replace(" ", "")
        if body_part in NOT_NECK:
            raise InputRejected(f"{need}; this series is labelled BodyPartExamined={body_part}.")
        nk = series.image.shape[0]
        if nk < 8:
            raise InputRejected(f"{need}; this series has only {nk} slice(s).")
        dk = series.image.spacing[0]
        if dk > MAX_SLICE_MM:
            raise InputRejected(f"{need}; its slices are {dk:.1f} mm apart (at most 5 mm).")
        extent = dk * (nk - 1)
        if extent < MIN_AXIS_MM:
            raise InputRejected(
                f"{need}; this series covers only {extent:.0f} mm along the body axis "
                f"({nk} slices), too short to hold C1-C7 (about 100 mm or more)."
            )

    def check_input(self, request: AnalysisRequest) -> None:
        super().check_input(request)
        corrected = request.get("vertebrae")
        if corrected is not None and corrected.shape != request["ct"].shape:
            raise InputRejected(
                f"{self.title}: the corrected vertebra map is {corrected.shape} voxels but the CT "
                f"is {request['ct'].shape}; it must lie on the CT's own grid."
            )

    def reject_if_not_neck(self, out: PipelineOutput, series: Series) -> None:
        """After stage 1: decline when C1-C7 were not all found (the CT does not show the neck)."""
        if not out.missing:
            return
        found = [v for v in P.VERTEBRAE if v not in out.missing]
        found_txt = ", ".join(found) if found else "none of them"
        raise InputRejected(
            f"{self.title} needs {self.slots[0].description}; the vertebra segmentation found "
            f"{found_txt} (missing {', '.join(out.missing)}) in this series, so it is not "
            "given fracture probabilities."
        )

    # ---- run ---------------------------------------------------------------------------------
    def segment(self, series: Series, timer: StageTimer | None = None):
        """Stage 1 only: working grid and label map (used by input checks and tests)."""
        return run_stage1(series.image, _stage1_fn(self.manifest), timer or StageTimer())

    def infer(self, request: AnalysisRequest, timer: StageTimer) -> ModelOutput:
        series = request["ct"]
        with timer.stage("weights", 0.0):
            manifest = self.manifest
            stage1, stage2 = _stage1_fn(manifest), _stage2_fn(manifest)
        ct = series.image
        corrected = request.get("vertebrae")
        stage1_result = None
        if corrected is not None:  # the annotator's corrected map: stage 2 only
            with timer.stage("corrected vertebrae", 0.05):
                grid = P.make_working_grid(ct)
                labels = np.asarray(corrected.image.array).astype(np.int32)
                stage1_result = (grid, P.labels_to_working(labels, grid))
        out = run_pipeline(
            ct, stage1, stage2, timer, top_n=self.top_n, require_all=True,
            stage1_result=stage1_result,
        )  # fmt: skip
        self.reject_if_not_neck(out, series)
        with timer.stage("results", 0.98):
            return self._output(series, out)

    def _output(self, series: Series, out: PipelineOutput) -> ModelOutput:
        ct = series.image
        findings = [
            Finding(
                label=name,
                probability=out.vertebrae[name].probability,
                threshold=THRESHOLD,
                group="vertebra",
                parent="patient_overall",
                region_id=str(out.vertebrae[name].label),
                term="fracture",
            )
            for name in P.VERTEBRAE
        ]
        p_patient = float(out.patient_probability or 0.0)
        findings.append(
            Finding(
                "patient_overall",
                p_patient,
                THRESHOLD,
                group="patient",
                region_id="",
                term="fracture",
                subject="patient",
            )  # fmt: skip
        )
        labelmap = LabelMapOverlay(
            name="Vertebrae C1-C7",
            image=ct.with_array(out.study_labels.astype(np.uint8)),
            labels=dict(LABEL_TABLE),
            opacity=0.4,
        )
        boxes, boxes3d = [], {}
        for name in P.VERTEBRAE:
            v = out.vertebrae[name]
            j0, i0, j1, i1 = v.box_ji
            k_mid = int(np.median(v.study_slices))
            boxes.append(Box(i0, j0, i1, j1, k_mid, caption=f"{name} p={v.probability:.2f}",
                             score=v.probability, region_id=str(v.label)))  # fmt: skip
            boxes3d[name] = {
                "i0": round(i0, 2), "j0": round(j0, 2), "i1": round(i1, 2), "j1": round(j1, 2),
                "k0": int(min(v.study_slices)), "k1": int(max(v.study_slices)) + 1,
            }  # fmt: skip
        box_overlay = BoxOverlay(name="Vertebra boxes", reference=ct, boxes=boxes, visible=False)
        positives = [f"{n} {out.vertebrae[n].probability:.2f}" for n in P.VERTEBRAE
                     if out.vertebrae[n].probability >= THRESHOLD]  # fmt: skip
        summary = f"patient-level fracture p={p_patient:.2f}" + (
            f" ({', '.join(positives)})" if positives else " (no vertebra above threshold)"
        )
        extra = {
            "top_n": self.top_n,
            "slice_share_threshold": P.SLICE_SHARE,
            "vertebra_boxes": boxes3d,
            "vertebra_slices": {n: out.vertebrae[n].study_slices for n in P.VERTEBRAE},
            "stage2_slices": {n: out.vertebrae[n].picked_slices for n in P.VERTEBRAE},
            "vertebra_voxels_working_grid": {n: out.vertebrae[n].voxels_work for n in P.VERTEBRAE},
            "working_grid": {
                "slice_mm": P.SLICE_MM,
                "pixel_mm": P.PIXEL_MM,
                "shape": [int(s) for s in out.work_labels.shape],
            },
            "disclaimer": DEMO_DISCLAIMER,
        }
        return ModelOutput(findings, [labelmap, box_overlay], summary, extra)

    # ---- explanations --------------------------------------------------------------------------
    def explain(
        self,
        request: AnalysisRequest,
        result: AnalysisResult,
        finding: Finding,
        method: str,
        timer: StageTimer,
    ) -> list[Overlay]:
        """Method "shap": SHAP values of the vertebra's stage-2 probability on the crops the run
        fed stage 2, put back on the study's slices (models/cervical_fracture/explain.py).
        Method "cam": Grad-CAM of its stage-2 logit from the exported feature maps, on the same
        slices (models/cervical_fracture/cam.py). patient_overall is explained by its most
        probable vertebra."""
        if method not in self.explain_methods:
            raise ExplainUnavailable(f"{self.title} explains by SHAP or CAM, not '{method}'")
        if method == "cam":
            from models.cervical_fracture.cam import vertebra_cam

            with timer.stage("Grad-CAM", 0.0):
                return [vertebra_cam(self.manifest, request["ct"].image, result, finding, timer)]
        from models.cervical_fracture.explain import vertebra_shap  # lazy: shap is heavy

        with timer.stage("SHAP", 0.0):
            sess = session_for(self.manifest, "stage2.onnx")
            return [vertebra_shap(sess, request["ct"].image, result, finding, timer)]

    def domain_features(self, request: AnalysisRequest) -> dict[str, np.ndarray]:
        """Input-domain features (app.engine.domain) of stage 1's slices on the working grid
        (every third: neighbours are near copies, and the median over slices is what counts)."""
        from app.engine.domain import features_of

        ct = request["ct"].image
        work = P.to_working(ct, P.make_working_grid(ct))
        return {"ct": features_of(work[::3])}
