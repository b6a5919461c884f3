"""Lumbar MR landmarks and disease with CCF-Net (numpy + ONNX Runtime only).

On the mid-sagittal slice of a sagittal T2 lumbar series: the five lumbar vertebrae and six
discs located (argmax of the coarse heatmap plus the fine offset, paper section 2.5), each with a
disease probability read from the category map at that point; landmarks in LPS mm, one finding
per object (clicking it centres the views on its landmark), and the coarse heatmaps as hidden
layers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.engine.adapter import InputRejected, ModelOutput, OnnxAdapter, StageTimer
from app.engine.runtime import run_session, session_for
from app.engine.task import InputSlot, normalise_tag
from app.findings import DEMO_DISCLAIMER, Finding, HeatmapOverlay
from app.findings.types import Landmark, LandmarkOverlay
from app.study.geometry import ImageVolume
from app.study.model import Series
from models.lumbar_ccfnet.anatomy import DISCS, OBJECTS
from models.lumbar_ccfnet.coding import InputFrame, decode, normalise
from models.lumbar_ccfnet.slices import SagittalSlice, plane_name, sagittal_slice
from models.lumbar_ccfnet.task import TASK

WEIGHTS_DIR = Path(__file__).parent / "weights"
MODEL_FILE = "lumbar_ccfnet.onnx"
THRESHOLD = 0.5
MIN_HEAD_FEET_MM = 150.0  # L1 top to S1 is about 180 mm in adults; less cannot hold them all
# Words in a series description that name another region or another contrast.
OTHER_REGIONS = ("BRAIN", "HEAD", "CERVICAL", "CSPINE", "NECK", "THORACIC", "TSPINE", "KNEE",
                 "SHOULDER", "HIP", "PELVIS", "ANKLE", "WRIST")  # fmt: skip


def _words(text: str) -> list[str]:
    return [normalise_tag(w) for w in "".join(c if c.isalnum() else " " for c in text).split()]


class LumbarCCFAdapter(OnnxAdapter):
    spec = TASK
    paper = (
        "Zhang et al., Multi-scale context-guided lumbar spine disease identification with "
        "coarse-to-fine localization and classification (shared/papers/lumbar_mri_ccfnet.txt)"
    )
    labels = OBJECTS
    default_weights_dir = WEIGHTS_DIR

    # ------------------------------------------------------------------------------------
    def check_slot(self, slot: InputSlot, series: Series) -> None:
        reasons = []
        try:
            super().check_slot(slot, series)
        except InputRejected as exc:
            reasons.append(str(exc).rstrip("."))
        geometry = _geometry_problems(series)
        if reasons:  # say what the geometry shows too: "OT" alone tells a reader little
            extra = "; ".join(geometry)
            raise InputRejected(reasons[0] + (f"; also {extra}" if extra else "") + ".")
        words = _words(series.description or "")
        other = [w for w in words if w in OTHER_REGIONS]
        if other:
            geometry.insert(0, f"its description '{series.description}' names {other[0]}")
        if "T1" in words and "T2" not in words:
            geometry.append(f"its description '{series.description}' says T1, not T2")
        if geometry:
            raise InputRejected(f"{self.title} needs {slot.description}; {'; '.join(geometry)}.")

    # ------------------------------------------------------------------------------------
    def infer(self, request, timer: StageTimer) -> ModelOutput:
        series = request["sagittal_t2"]
        cfg = self.manifest.data["config"]
        size, stride = int(cfg["input_size"]), int(self.manifest.data.get("stride", 16))
        with timer.stage("weights", 0.0):
            sess = session_for(self.manifest, MODEL_FILE)
        with timer.stage("slice and resampling", 0.1):
            k, why = _slice_to_read(series, request.focus_lps)
            sl = sagittal_slice(series.image, k)
            frame = InputFrame.fit(sl.pixels.shape, sl.spacing, size)
            x = frame.resample(normalise(sl.pixels))
        with timer.stage("inference", 0.3):
            heat, offx, offy, cat = run_session(sess, {"image": x[None, None]})
        with timer.stage("decoding", 0.8):
            pts_in, prob, peak = decode(heat[0], offx[0], offy[0], cat[0], stride)
            ij = sl.to_index(frame.to_slice(pts_in))
            ijk = np.column_stack([ij, np.full(len(ij), float(k))])
            lps = series.image.index_to_world(ijk)
            overlays = [_landmarks(lps, prob)]
            overlays += _heatmaps(np.clip(heat[0], 0, 1), series.image, sl, frame, stride)
        findings = [
            Finding(
                name,
                float(p),
                THRESHOLD,
                "disc" if name in DISCS else "vertebra",
                region_id=name,
                term="disease",
            )  # fmt: skip
            for name, p in zip(OBJECTS, prob, strict=True)
        ]
        diseased = [f.label for f in findings if f.positive]
        where = "mid-sagittal" if request.focus_lps is None else "the slice you were viewing"
        summary = (
            f"{len(OBJECTS)} landmarks on slice {k + 1} of {series.shape[0]} ({where}); "
            + (f"diseased: {', '.join(diseased)}" if diseased else "no object called diseased")
            + f". Demo weights: {DEMO_DISCLAIMER}."
        )
        extra = {
            "analysed_slice_index": k,
            "analysed_slice_reason": why,
            "slices_in_series": int(series.shape[0]),
            "threshold": THRESHOLD,
            "input_mm_per_pixel": round(frame.mm_per_px, 4),
            "orientation_changes": {
                "transposed": sl.transposed,
                "flip_rows": sl.flip_rows,
                "flip_cols": sl.flip_cols,
            },  # fmt: skip
            "objects": {
                name: {
                    "position_lps": [round(float(v), 3) for v in lps[n]],
                    "index_ijk": [round(float(v), 2) for v in ijk[n]],
                    "p_disease": round(float(prob[n]), 6),
                    "heatmap_peak": round(float(peak[n]), 4),
                }
                for n, name in enumerate(OBJECTS)
            },
        }
        return ModelOutput(findings, overlays, summary, extra)


# ----------------------------------------------------------------------------------------------
def _geometry_problems(series: Series) -> list[str]:
    image = series.image
    plane = plane_name(image)
    if plane != "sagittal":
        return [f"its slices are {plane}, not sagittal"]
    sl = sagittal_slice(image, 0)
    head_feet = sl.pixels.shape[0] * sl.spacing[0]
    if head_feet < MIN_HEAD_FEET_MM:
        return [
            f"its field of view is {head_feet:.0f} mm head to feet, too short to hold L1 to S1 "
            f"(a lumbar series covers at least {MIN_HEAD_FEET_MM:.0f} mm)"
        ]
    return []


def _landmarks(lps: np.ndarray, prob: np.ndarray) -> LandmarkOverlay:
    marks = [
        Landmark(name, tuple(float(v) for v in lps[n]), float(prob[n]))
        for n, name in enumerate(OBJECTS)
    ]
    return LandmarkOverlay(name="Vertebrae and discs (CCF-Net)", landmarks=marks)


def _heatmaps(
    heat: np.ndarray, image: ImageVolume, sl: SagittalSlice, frame: InputFrame, stride: int
) -> list[HeatmapOverlay]:
    """Each object's coarse map as a one-slice volume whose cells sit where the network's cells
    look: cell centres mapped through the input frame and the slice's orientation to LPS."""

    def world(cx: float, cy: float) -> np.ndarray:
        centre = np.array([[cx * stride + (stride - 1) / 2, cy * stride + (stride - 1) / 2]])
        i, j = sl.to_index(frame.to_slice(centre))[0]
        return image.index_to_world(np.array([i, j, float(sl.k)]))

    o, ex, ey = world(0, 0), world(1, 0) - world(0, 0), world(0, 1) - world(0, 0)
    di, dj = float(np.linalg.norm(ex)), float(np.linalg.norm(ey))
    normal = np.cross(ex / di, ey / dj)
    direction = np.column_stack([ex / di, ey / dj, normal])
    dk = float(image.spacing[0])
    out = []
    for n, name in enumerate(OBJECTS):
        grid = ImageVolume(heat[n][None].astype(np.float32), (dk, dj, di), o, direction)
        out.append(
            HeatmapOverlay(
                name=f"Heatmap {name}",
                image=grid,
                colormap="jet",
                value_range=(0.0, 1.0),
                label=name,
                visible=False,
                opacity=0.45,
            )  # fmt: skip
        )
    return out


def _slice_to_read(series, focus_lps) -> tuple[int, str]:
    """The slice through the point the reader is looking at, else the middle one (where the
    spine's midline is expected); and why, for the output."""
    n = series.shape[0]
    if focus_lps is not None:
        k = int(round(float(series.image.world_to_index(np.asarray(focus_lps, float))[2])))
        if 0 <= k < n:
            return k, "the slice shown in the viewer when Analyse was pressed"
    return n // 2, "the middle slice of the series, where the spine's midline is expected"
