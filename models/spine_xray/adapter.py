"""Spine AP + lateral radiographs: per-view structure masks, per-vertebra levels, P(damaged) and
SHAP maps on both views (numpy + ONNX Runtime only).

Per study (``ap`` and ``lateral`` slots): each view's U-Net gives one probability map per
structure (the paper's masks), brought back onto that radiograph's own pixel grid; the dual-view
classifier gives P(damaged). Each view gets a label map of its structures (where structures
overlap, the smaller wins: AP Spinous Process > Pedicle > Vertebra; LAT vertebral lines > Disk
Height > Spinous Process > Vertebra, so thin structures drawn on a body stay visible), a hidden
binary map per structure (nothing lost to that priority) and a map of the vertebrae (connected
components of the Vertebra mask, numbered from the top) whose names a finding's ``region_id``
can point at. SHAP maps are a separate, slower step (``explain``).
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
from app.findings import DEMO_DISCLAIMER, AnalysisResult, Finding, HeatmapOverlay
from app.findings.types import HEATMAP_MAX_SIDE, LabelMapOverlay, Overlay
from app.study.geometry import ImageVolume
from app.study.model import Series
from models.spine_xray.labels import MASK_COLORS
from models.spine_xray.levels import vertebra_components, vertebra_measures
from models.spine_xray.preprocess import (
    Letterbox,
    masks_to_image,
    network_input,
    normalise,
    resize,
)
from models.spine_xray.task import TASK

WEIGHTS_DIR = Path(__file__).parent / "weights"
THRESHOLD = 0.5  # P(damaged) and every mask probability
FILES = {"ap": "spine_unet_ap.onnx", "lateral": "spine_unet_lateral.onnx",
         "classifier": "spine_classifier.onnx"}  # fmt: skip
VIEW_NAMES = {"ap": "AP", "lateral": "LAT"}
# Drawing order of the combined label map, last on top (see the module docstring).
PRIORITY = {
    "ap": ("AP Vertebra", "AP Pedicle", "AP Spinous Process"),
    "lateral": ("LAT Vertebra", "LAT Spinous Process", "LAT Disk Height",
                "LAT Anterior Vertebral Line", "LAT Posterior Vertebral Line"),
}  # fmt: skip
COLORS = MASK_COLORS  # one table with the phantom's truth masks
LEVEL_COLORS = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
                (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60))  # fmt: skip
NOT_SPINE = frozenset(
    "FOOT ANKLE CALCANEUS HEEL KNEE HIP PELVIS FEMUR LEG HAND WRIST ELBOW SHOULDER ARM SKULL "
    "HEAD EXTREMITY BREAST".split()
)
SHAP_MAX_EVALS = 500
SHAP_MASKER = "blur(16,16)"
PHANTOM_MANUFACTURER = "OsteoView phantom generator"


class SpineXrayAdapter(OnnxAdapter):
    default_weights_dir = WEIGHTS_DIR
    spec = TASK
    explain_methods = ("shap", "cam")
    paper = (
        "Jain, Varambally, Sharma, Spine Image Segmentation & Classification "
        "(shared/papers/spine_xray_seg_cls_shap.txt)"
    )
    labels = ("damaged",)

    # ------------------------------------------------------------------------------------
    def check_slot(self, slot: InputSlot, series: Series) -> None:
        modality = (series.modality or "").upper()
        if modality in ("CT", "MR", "PT", "NM", "US") or series.kind in ("volume", "labelmap"):
            raise InputRejected(
                f"{self.title} needs {slot.description}; this series is a "
                f"{modality or 'non-radiograph'} {series.kind} with {series.shape[0]} slice(s)."
            )
        if series.shape[0] != 1:
            raise InputRejected(
                f"{self.title} needs {slot.description}, one 2-D image; this series has "
                f"{series.shape[0]} frames."
            )
        body_part = (series.body_part or "").upper().replace(" ", "").replace("-", "")
        if body_part in NOT_SPINE:
            raise InputRejected(
                f"{self.title} needs {slot.description}; this radiograph is labelled "
                f"BodyPartExamined={body_part}, not a spine."
            )
        super().check_slot(slot, series)
        rows, cols = series.shape[1:3]
        if min(rows, cols) < 64:
            raise InputRejected(
                f"{self.title} needs a radiograph at least 64 pixels across; this one is "
                f"{cols}x{rows}."
            )

    # ------------------------------------------------------------------------------------
    def _config(self) -> tuple[int, int]:
        cfg = self.manifest.data["config"]
        return int(cfg["unet"]["input_size"]), int(cfg["classifier"]["input_size"])

    def _inputs(self, series: Series, size: int) -> tuple[np.ndarray, Letterbox]:
        return network_input(bone_bright(series), size, _spacing(series))

    def infer(self, request: AnalysisRequest, timer: StageTimer) -> ModelOutput:
        seg_size, cls_size = self._config()
        masks_by_view = self.manifest.data["masks"]
        with timer.stage("weights", 0.0):
            sessions = {k: session_for(self.manifest, f) for k, f in FILES.items()}
        views: dict[str, dict] = {}
        with timer.stage("preprocess", 0.1):
            for view in ("ap", "lateral"):
                series = request[view]
                pixels = normalise(bone_bright(series))  # once for both inputs
                box = Letterbox.fit(*pixels.shape, seg_size, _spacing(series))
                x = box.to_input(pixels)
                xc = Letterbox.fit(*pixels.shape, cls_size, _spacing(series)).to_input(pixels)
                views[view] = {"series": series, "x": x, "box": box, "x_cls": xc}
        with timer.stage("segmentation", 0.2):
            for view, v in views.items():
                (probs,) = run_session(sessions[view], {"image": v["x"][None, None]})
                v["probs"] = probs[0]
        with timer.stage("classification", 0.6):
            p = run_session(  # [0]: the graph also outputs its feature maps (Grad-CAM)
                sessions["classifier"],
                {"ap": views["ap"]["x_cls"][None, None],
                 "lateral": views["lateral"]["x_cls"][None, None]},
            )[0]  # fmt: skip
            p_damaged = float(p[0, 1])
        with timer.stage("label maps and levels", 0.7):
            overlays: list[Overlay] = []
            for view, v in views.items():
                names = tuple(masks_by_view[view])
                v["masks"] = masks_to_image(v["probs"], v["box"], THRESHOLD)
                k = names.index(f"{VIEW_NAMES[view]} Vertebra")
                disc = names.index("LAT Disk Height") if "LAT Disk Height" in names else None
                v["components"] = vertebra_components(
                    v["probs"][k] >= THRESHOLD,
                    v["masks"][k],
                    v["box"],
                    cut=None if disc is None else v["probs"][disc] >= THRESHOLD,
                )
                overlays += _view_overlays(view, v, names)
            measures = {
                view: vertebra_measures(
                    v["components"], v["masks"], tuple(masks_by_view[view]), view,
                    _spacing(v["series"]),
                )
                for view, v in views.items()
            }  # fmt: skip
        suspect = _suspected_level(measures["lateral"])
        region = suspect["name"] if suspect and p_damaged >= THRESHOLD else ""
        findings = [
            Finding(
                "damaged",
                p_damaged,
                THRESHOLD,
                "patient",
                region_id=region,
                term="damage",
                subject="spine",
            )  # fmt: skip
        ]
        real = any(
            str(v["series"].meta.get("manufacturer", "")) != PHANTOM_MANUFACTURER
            for v in views.values()
        )
        extra = {
            "p_damaged": round(p_damaged, 6),
            "threshold": THRESHOLD,
            "call": "damaged" if p_damaged >= THRESHOLD else "normal",
            "label_priority": {k: list(v) for k, v in PRIORITY.items()},
            "mask_pixels": {
                name: int(m.sum())
                for view, v in views.items()
                for name, m in zip(masks_by_view[view], v["masks"], strict=True)
            },
            "vertebrae": measures,
            "suspected_level": suspect,
            "model_config": self.manifest.data["config"].get("name", ""),
            "real_image": real,
        }
        return ModelOutput(findings, overlays, _summary(p_damaged, measures, suspect, real), extra)

    # ------------------------------------------------------------------------------------
    def explain(
        self,
        request: AnalysisRequest,
        result: AnalysisResult,
        finding: Finding,
        method: str,
        timer: StageTimer,
    ) -> list[Overlay]:
        """Method "shap": SHAP values of P(damaged) for each view's classifier input, the other
        view held fixed (shap's Partition explainer, Image masker blur(16,16)). Method "cam":
        Grad-CAM of the same output from the exported feature maps (models/spine_xray/cam.py).
        Both mapped onto each radiograph."""
        if method not in self.explain_methods:
            raise ExplainUnavailable(f"{self.title} explains by SHAP or CAM, not '{method}'")
        if finding.label != "damaged":
            raise ExplainUnavailable(f"{self.title} has no {method} map for '{finding.label}'")
        if method == "cam":
            return self._gradcam(request, timer)
        from app.engine.shap_maps import shap_map

        self.last_shap_info: dict[str, dict] = {}  # evals, seconds, base value per view
        _, cls_size = self._config()
        sess = session_for(self.manifest, FILES["classifier"])
        inputs = {v: self._inputs(request[v], cls_size) for v in ("ap", "lateral")}
        overlays: list[Overlay] = []
        for n, view in enumerate(("ap", "lateral")):
            other = "lateral" if view == "ap" else "ap"
            fixed = inputs[other][0][None, None]

            def predict(batch: np.ndarray, view=view, other=other, fixed=fixed) -> np.ndarray:
                feed = {view: batch[:, None], other: np.repeat(fixed, len(batch), axis=0)}
                return run_session(sess, feed)[0][:, 1]

            def progress(_stage: str, fraction: float, n=n, view=view) -> None:
                if timer.progress:
                    timer.progress(f"SHAP {VIEW_NAMES[view]}", (n + fraction) / 2)

            with timer.stage(f"SHAP {VIEW_NAMES[view]}", n / 2):
                values, info = shap_map(
                    predict, inputs[view][0], max_evals=SHAP_MAX_EVALS, masker=SHAP_MASKER,
                    progress=progress, cancel=timer.cancel,
                )  # fmt: skip
            overlays.append(_shap_overlay(request[view], view, values, inputs[view][1], info))
            self.last_shap_info[view] = info
        return overlays

    def _gradcam(self, request: AnalysisRequest, timer: StageTimer) -> list[Overlay]:
        from models.spine_xray.cam import VIEWS, cam_overlay, damaged_cam

        _, cls_size = self._config()
        inputs = {v: self._inputs(request[v], cls_size) for v in VIEWS}
        with timer.stage("Grad-CAM", 0.0):
            cams = damaged_cam(self.manifest, FILES["classifier"], inputs, timer)
        return [cam_overlay(request[v], v, cams[v], inputs[v][1]) for v in VIEWS]

    def domain_features(self, request: AnalysisRequest) -> dict[str, np.ndarray]:
        """Input-domain features (app.engine.domain) of each view's segmentation input."""
        from app.engine.domain import features_of

        size = self._config()[0]
        return {v: features_of([self._inputs(request[v], size)[0]]) for v in ("ap", "lateral")}


# ----------------------------------------------------------------------------------------------


def bone_bright(series: Series) -> np.ndarray:
    arr = np.asarray(series.image.array[0], np.float32)
    if arr.ndim == 3:  # RGB image: luminance
        arr = arr[..., :3].mean(-1)
    if series.invert:  # MONOCHROME1: bone is dark in the stored values
        arr = float(arr.max()) - arr
    return arr


def _spacing(series: Series) -> tuple[float, float]:
    return float(series.image.spacing[1]), float(series.image.spacing[2])


def _view_overlays(view: str, v: dict, names: tuple[str, ...]) -> list[Overlay]:
    ref: ImageVolume = v["series"].image
    combined = np.zeros(v["masks"].shape[1:], np.uint8)
    table = {}
    for name in PRIORITY[view]:
        value = names.index(name) + 1
        combined[v["masks"][names.index(name)]] = value
        table[value] = (name, COLORS[name])
    tag = VIEW_NAMES[view]
    out: list[Overlay] = [
        LabelMapOverlay(
            f"{tag} structures",
            opacity=0.45,
            slot=view,
            image=ref.with_array(combined[None]),
            labels=table,
        )  # fmt: skip
    ]
    levels = v["components"]
    n = int(levels.max())
    out.append(
        LabelMapOverlay(
            f"{tag} vertebrae", visible=False, opacity=0.45, slot=view,
            image=ref.with_array(levels[None].astype(np.uint8)),
            labels={k: (f"{tag} vertebra {k}", LEVEL_COLORS[(k - 1) % len(LEVEL_COLORS)])
                    for k in range(1, n + 1)},
        )
    )  # fmt: skip
    for k, name in enumerate(names):  # each structure alone: what the overlap priority hides
        out.append(
            LabelMapOverlay(
                name,
                visible=False,
                opacity=0.5,
                slot=view,
                image=ref.with_array(v["masks"][k][None].astype(np.uint8)),
                labels={1: (name, COLORS.get(name, (255, 255, 255)))},
            )  # fmt: skip
        )
    return out


def _suspected_level(lateral: list[dict]) -> dict | None:
    """The lateral vertebra that looks most compressed: the lowest of its anterior/posterior
    height ratio (wedge) and its height against its neighbours' (burst), when that is below 0.85
    (a normal body measures about 0.9-1.1 on both)."""
    scored = [(min(m["wedge_ratio"], m["height_vs_neighbours"]), m) for m in lateral
              if m.get("wedge_ratio") is not None]  # fmt: skip
    if not scored:
        return None
    score, m = min(scored, key=lambda t: t[0])
    if score >= 0.85:
        return None
    return {"name": m["name"], "index": m["index"], "score": round(float(score), 3)}


def _shap_overlay(
    series: Series, view: str, values: np.ndarray, box: Letterbox, info: dict
) -> HeatmapOverlay:
    from app.engine.shap_maps import signed_overlay

    grid, _ = series.image.in_plane_coarsened(HEATMAP_MAX_SIDE)
    canvas = resize(values[: box.used_rows, : box.used_cols], grid.shape[1:])
    return signed_overlay("damaged", grid.with_array(canvas[None].astype(np.float32)),
                          "damaged", view, info, note=VIEW_NAMES[view])  # fmt: skip


def _summary(p: float, measures: dict, suspect: dict | None, real: bool) -> str:
    call = "damaged" if p >= THRESHOLD else "normal"
    text = (f"spine {call} (P(damaged)={p:.2f}); vertebrae found: AP {len(measures['ap'])}, "
            f"LAT {len(measures['lateral'])}")  # fmt: skip
    if suspect:  # measured on the masks, whatever the classifier's call
        text += (f"; most compressed on the lateral view: {suspect['name']} (height ratio "
                 f"{suspect['score']:.2f})")  # fmt: skip
    if real:
        text += (". Not a phantom: the demo weights were trained only on synthetic phantoms, "
                 "so on a real radiograph their output means little")  # fmt: skip
    return f"{text}. Demo weights: {DEMO_DISCLAIMER}."
