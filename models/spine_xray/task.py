"""Spine AP + lateral radiographs (U-Net masks, dual-view classifier): declared once; see
``app/engine/task.py``."""

from app.engine.task import RADIOGRAPH_MODALITIES, InputSlot, TaskSpec

_SPINE = ("SPINE", "LSPINE", "TSPINE", "CSPINE", "LUMBARSPINE", "THORACICSPINE", "BACK")

TASK = TaskSpec(
    id="spine-xray",
    title="Spine radiographs, AP and lateral",
    slots=(
        InputSlot(
            "ap",
            "an AP radiograph of the spine",
            modalities=RADIOGRAPH_MODALITIES,
            kinds=("projection", "image"),
            body_parts=_SPINE,
            views=("AP", "PA"),
            short="an AP",
        ),
        InputSlot(
            "lateral",
            "a lateral radiograph of the spine",
            modalities=RADIOGRAPH_MODALITIES,
            kinds=("projection", "image"),
            body_parts=_SPINE,
            views=("LAT", "LL", "RL"),
            short="a lateral radiograph",
        ),
    ),
    adapter="models.spine_xray.adapter:SpineXrayAdapter",
    phantom="models.spine_xray.phantom",
    state="per-view U-Net masks, vertebral levels, dual-view classifier, SHAP; demo weights",
    paper="spine_xray_seg_cls_shap.txt",
)
