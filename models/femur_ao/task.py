"""Proximal femur AO classification on an AP radiograph: declared once; see
``app/engine/task.py``."""

from app.engine.task import RADIOGRAPH_MODALITIES, InputSlot, TaskSpec

TASK = TaskSpec(
    id="femur-ao",
    title="Proximal femur fracture, AO type (radiograph)",
    slots=(
        InputSlot(
            "radiograph",
            "an AP radiograph of the hip or pelvis (one 2-D image)",
            modalities=RADIOGRAPH_MODALITIES,
            kinds=("projection", "image"),
            body_parts=("HIP", "PELVIS", "FEMUR", "LEG", "ABDOMEN", "LOWEREXTREMITY"),
            views=("AP", "PA"),
            short="an AP hip radiograph",
        ),
    ),
    adapter="models.femur_ao.adapter:FemurAOAdapter",
    phantom="models.femur_ao.phantom",
    state="ResNet + CAM + STN, fracture / A-B / A1-B3 per side, demo weights",
    paper="femur_weakly_supervised.txt",
)
