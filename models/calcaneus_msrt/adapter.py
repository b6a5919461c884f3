"""Calcaneus fracture subtypes (MSRT) from a lateral radiograph and a rough fracture mask
(numpy + ONNX Runtime only).

Six multi-label probabilities with calls, one spatial-regularization attention map per label
(in the radiograph's geometry), and the mask the classifier read as a label map. The mask is the
one the user gave (``--input fracture_mask=FILE``, the viewer's "Use as"), an edited one (the
mask editor), one the study carries, or, when there is none, the shipped rough-mask U-Net's
prediction; ``extra["mask_used"]`` says which ("given", "edited" or "predicted").
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
    series_view,
)
from app.engine.runtime import run_session, session_for
from app.engine.task import InputSlot, normalise_tag
from app.findings import DEMO_DISCLAIMER, AnalysisResult, Finding, HeatmapOverlay
from app.findings.types import LabelMapOverlay, Overlay
from app.study.geometry import ImageVolume
from app.study.model import Series
from models.calcaneus_msrt.labels import LABELS
from models.calcaneus_msrt.preprocess import image_input, mask_input, to_image_grid, upsample
from models.calcaneus_msrt.task import TASK

WEIGHTS_DIR = Path(__file__).parent / "weights"
MODEL_FILE = "calcaneus_msrt.onnx"
UNET_FILE = "calcaneus_unet.onnx"
THRESHOLD = 0.5
MIN_SIDE = 64
PHANTOM_MANUFACTURER = "OsteoView phantom generator"
MASK_COLOURS = {"given": (255, 80, 80), "edited": (255, 160, 0), "predicted": (80, 200, 255)}
NOT_RADIOGRAPH = ("CT", "MR", "PT", "NM", "US")


def mask_used(origin: str) -> str:
    """How the mask in a request came to be, as the output says it: the user's or the study's
    own mask is "given", the mask editor's "edited"."""
    return "edited" if origin == "edited" else "given"


def binarise(series: Series) -> np.ndarray:
    """A label map or image on the radiograph's grid -> bool (rows, cols). Label maps: any
    non-zero label; grey or colour images (a PNG drawn in 0/255): above half their maximum."""
    arr = np.asarray(series.image.array[0])
    if arr.ndim == 3:
        arr = arr[..., :3].max(-1)
    if series.kind == "labelmap":
        return arr > 0
    top = float(arr.max()) if arr.size else 0.0
    return arr > (top / 2 if top > 1 else 0)


def bone_bright(series: Series) -> np.ndarray:
    arr = np.asarray(series.image.array[0], np.float32)
    if arr.ndim == 3:
        arr = arr[..., :3].mean(-1)
    if series.invert:  # MONOCHROME1: bone is dark in the stored values
        arr = float(arr.max()) - arr
    return arr


class CalcaneusAdapter(OnnxAdapter):
    default_weights_dir = WEIGHTS_DIR
    spec = TASK
    labels = LABELS
    explain_methods = ("cam", "shap")
    paper = (
        "Mu, Zhao, Guo, Li, MSRT: Multi-scale Spatial Regularization Transformer for multi-label "
        "classification in calcaneus radiograph (shared/papers/calcaneus_msrt.txt)"
    )

    # ---- input checks ---------------------------------------------------------------------
    def check_slot(self, slot: InputSlot, series: Series) -> None:
        if slot.is_mask:
            self._check_mask(slot, series)
            return
        modality = (series.modality or "").upper()
        if modality in NOT_RADIOGRAPH or series.kind in ("volume", "labelmap"):
            raise InputRejected(
                f"{self.title} needs {slot.description}; this series is a "
                f"{modality or 'non-radiograph'} {series.kind} with {series.shape[0]} slice(s). "
                "Open a lateral foot or ankle radiograph (CR/DX) instead."
            )
        if series.shape[0] != 1:
            raise InputRejected(
                f"{self.title} needs one 2-D radiograph; this series has {series.shape[0]} frames."
            )
        # The view first: an AP or oblique film of the right body part is the likeliest mistake.
        view = series_view(series)
        if view and view not in slot.views:
            where = f"ViewPosition {view}" if series.view_position else "its description"
            raise InputRejected(
                f"{self.title} needs a lateral view (ViewPosition LAT, LL or RL) of the "
                f"calcaneus; this radiograph is an {view} view ({where}). Open the lateral film."
            )
        body_part = normalise_tag(series.body_part)
        if body_part and body_part not in slot.body_parts:
            raise InputRejected(
                f"{self.title} needs {slot.description}; this radiograph is labelled "
                f"BodyPartExamined={body_part}."
            )
        super().check_slot(slot, series)
        rows, cols = series.shape[1:3]
        if min(rows, cols) < MIN_SIDE:
            raise InputRejected(
                f"{self.title} needs a radiograph at least {MIN_SIDE} pixels across; this one is "
                f"{cols}x{rows}."
            )

    def _check_mask(self, slot: InputSlot, series: Series) -> None:
        if series.kind == "volume" or series.shape[0] != 1:
            raise InputRejected(
                f"{self.title} needs {slot.description} (one 2-D label map or image); this "
                f"{series.modality or ''} {series.kind} has {series.shape[0]} slices."
            )

    def check_input(self, request: AnalysisRequest) -> None:
        super().check_input(request)
        mask, image = request.get("fracture_mask"), request.get("radiograph")
        if mask is not None and image is not None:
            mr, mc = mask.shape[1:3]
            ir, ic = image.shape[1:3]
            if (mr, mc) != (ir, ic):
                raise InputRejected(
                    f"{self.title}: the fracture mask is {mc}x{mr} pixels but the radiograph is "
                    f"{ic}x{ir}; a mask must lie on the radiograph's grid (same columns x rows)."
                )

    # ---- inference ------------------------------------------------------------------------
    def infer(self, request: AnalysisRequest, timer: StageTimer) -> ModelOutput:
        series = request["radiograph"]
        config = self.manifest.data["config"]
        n = int(config["input_size"])
        with timer.stage("weights", 0.0):
            sess = session_for(self.manifest, MODEL_FILE)
        x, mask, used, origin = self.network_input(request, timer)
        with timer.stage("classification", 0.5):
            probs, maps = run_session(sess, {"input": x[None]})
        with timer.stage("attention maps", 0.8):
            p = [float(v) for v in probs[0]]
            heat, raw = self._heatmaps(series, maps[0], n)
        cut = self.thresholds()
        findings = [Finding(lab, p[k], cut[lab], group="subtype") for k, lab in enumerate(LABELS)]
        name = f"Fracture mask ({used})"
        overlays: list[Overlay] = [
            *heat,
            LabelMapOverlay(
                name=name,
                image=series.image.with_array(mask[None].astype(np.uint8)),
                labels={1: (name, MASK_COLOURS[used])},
                opacity=0.35,
                slot="radiograph",
            ),
        ]
        real = str(series.meta.get("manufacturer", "")) != PHANTOM_MANUFACTURER
        extra = {
            "mask_used": used,
            "mask_origin": origin or "none: predicted by the rough-mask U-Net",
            "mask_fraction": round(float(mask.mean()), 6),
            "probabilities": {lab: round(v, 6) for lab, v in zip(LABELS, p, strict=True)},
            "thresholds": cut,
            "model_config": config.get("name", ""),
            "heatmaps": [h.name for h in heat],
            "attention_raw_range": raw,
            "attention_scaling": "each label's map min-max scaled to 0..1 for display",
            "real_image": real,
        }
        return ModelOutput(findings, overlays, _summary(p, cut, used, real), extra)

    def network_input(
        self, request: AnalysisRequest, timer: StageTimer
    ) -> tuple[np.ndarray, np.ndarray, str, str]:
        """The classifier's input for ``request``, (2, n, n) image and mask channels, and the
        mask on the radiograph's grid with how it came to be (used, origin). One place, so an
        explanation (models/calcaneus_msrt/explain.py) sees exactly what the run saw."""
        n = int(self.manifest.data["config"]["input_size"])
        with timer.stage("preprocess", 0.1):
            image = bone_bright(request["radiograph"])
            rows, cols = image.shape
            x_image = image_input(image, n)
        given = request.get("fracture_mask")
        if given is not None:
            origin = request.origins.get("fracture_mask", "auto")
            used = mask_used(origin)
            with timer.stage("mask", 0.2):
                mask = binarise(given)
        else:
            origin, used = "", "predicted"
            with timer.stage("rough mask (U-Net)", 0.2):
                mask = self._predict_mask(x_image, rows, cols)
        return np.stack([x_image, mask_input(mask, n)]), mask, used, origin

    def thresholds(self) -> dict[str, float]:
        """Each label's call threshold: the manifest's ``thresholds`` (chosen per label on the
        training run's validation split, ``train.py``), else ``THRESHOLD``."""
        chosen = self.manifest.data.get("thresholds") or {}
        return {lab: float(chosen.get(lab, THRESHOLD)) for lab in LABELS}

    def _predict_mask(self, x_image: np.ndarray, rows: int, cols: int) -> np.ndarray:
        m = int(self.manifest.data["unet_config"]["input_size"])
        usess = session_for(self.manifest, UNET_FILE)
        k = x_image.shape[0] // m  # the U-Net reads the classifier's input, block-averaged
        small = x_image.reshape(m, k, m, k).mean((1, 3))
        (prob,) = run_session(usess, {"image": small[None, None]})
        return to_image_grid(prob[0, 0], rows, cols) > 0.5

    def _heatmaps(self, series: Series, maps: np.ndarray, n: int):
        grid = map_grid(series.image, n)
        shape = grid.shape
        heat, raw = [], {}
        for k, label in enumerate(LABELS):
            m = upsample(maps[k], n)[: shape[1], : shape[2]]
            lo, hi = float(maps[k].min()), float(maps[k].max())
            raw[label] = [round(lo, 6), round(hi, 6)]
            scaled = (m - lo) / max(hi - lo, 1e-6)
            heat.append(
                HeatmapOverlay(
                    name=f"Attention {label}",
                    image=grid.with_array(np.clip(scaled, 0, 1)[None].astype(np.float32)),
                    colormap="jet",
                    value_range=(0.0, 1.0),
                    label=label,
                    # hidden until asked for: measured, these maps lean only weakly towards
                    # the label's region (1.51x chance, Calcaneal Body not at all; SHAP 22.7x:
                    # MODEL_CARD.md), and one drawn unasked would read as a localisation
                    visible=False,
                    opacity=0.45,
                    slot="radiograph",
                )
            )
        return heat, raw

    def explain(
        self,
        request: AnalysisRequest,
        result: AnalysisResult,
        finding: Finding,
        method: str,
        timer: StageTimer,
    ) -> list[Overlay]:
        """Method "cam": the finding's spatial-regularization attention map, computed by the ONNX
        graph during the run, so explaining costs a lookup. Method "shap": SHAP values of the
        finding's probability on the network input, image and mask channels masked together
        (models/calcaneus_msrt/explain.py says why), a signed map on the radiograph."""
        if method == "shap":
            from models.calcaneus_msrt.explain import shap_overlay  # lazy: shap is heavy

            with timer.stage("SHAP", 0.0):
                overlay, info = shap_overlay(self, request, finding, timer)
            # findings.json says what was explained (image channel, mask held) and why
            result.extra.setdefault("shap", {})[finding.label] = info
            return [overlay]
        if method != "cam":
            raise ExplainUnavailable(
                f"{self.title} explains by attention map or SHAP, not '{method}'"
            )
        with timer.stage("attention map", 0.0):
            for ov in result.overlays:
                # the run's maps are named "Attention <label>"; a SHAP map shares the label
                if isinstance(ov, HeatmapOverlay) and ov.name == f"Attention {finding.label}":
                    return [ov]
        raise ExplainUnavailable(f"{self.title} has no attention map for {finding.label}")


def map_grid(ref: ImageVolume, n: int) -> ImageVolume:
    """An empty grid, in the radiograph's geometry, for a map on the network's n x n input: the
    input is the image padded to a square at its bottom and right and resampled, so cell
    (r, c) covers image pixels [r f, (r + 1) f) x [c f, (c + 1) f), f = max(rows, cols) / n;
    the cells that fall wholly in the padding are left out."""
    rows, cols = ref.shape[1:3]
    f = max(rows, cols) / n  # image pixels per map cell
    shape = (1, math.ceil(rows / f - 1e-9), math.ceil(cols / f - 1e-9))
    centre = (f - 1) / 2.0
    dk, dj, di = ref.spacing
    return ImageVolume(
        np.zeros(shape, np.float32),
        (dk, dj * f, di * f),
        ref.index_to_world(np.array([centre, centre, 0.0])),
        ref.direction.copy(),
    )


def _summary(p: list[float], cut: dict[str, float], used: str, real: bool) -> str:
    pos = [f"{lab} p={v:.2f}" for lab, v in zip(LABELS, p, strict=True) if v >= cut[lab]]
    text = ("fracture subtypes: " + ", ".join(pos)) if pos else "no fracture subtype called"
    text += f" (mask: {used})"
    if used == "predicted":
        # Measured (MODEL_CARD.md): the demo U-Net's masks miss and add regions, and calls on
        # them are clearly weaker than on a corrected mask.
        text += (
            "; the mask was predicted by the demo mask model and calls on it are less reliable "
            "than on a corrected one: check or correct the mask and analyse again"
        )
    if real:
        text += (
            ". Not a phantom: the demo weights were trained only on synthetic phantoms, "
            "so on this real radiograph their output means little"
        )
    return f"{text}. Demo weights: {DEMO_DISCLAIMER}."
