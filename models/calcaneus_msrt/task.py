"""Calcaneus fracture subtypes (MSRT) from a lateral radiograph and a rough fracture mask:
declared once; see ``app/engine/task.py``."""

from app.engine.task import RADIOGRAPH_MODALITIES, InputSlot, TaskSpec

TASK = TaskSpec(
    id="calcaneus-fracture",
    title="Calcaneus fracture subtypes (lateral radiograph)",
    slots=(
        InputSlot(
            "radiograph",
            "a lateral radiograph of the calcaneus (foot or ankle)",
            modalities=RADIOGRAPH_MODALITIES,
            kinds=("projection", "image"),
            # EXTREMITY is what many CR systems write for any limb film; the view decides then.
            body_parts=("FOOT", "ANKLE", "CALCANEUS", "HEEL", "LOWEREXTREMITY", "EXTREMITY"),
            views=("LAT", "LL", "RL", "LATERAL"),
            short="a lateral calcaneus radiograph",
        ),
        InputSlot(
            "fracture_mask",
            "a rough fracture mask on the radiograph's grid",
            # A grey PNG mask loads as a "projection"; a colour one as an "image".
            kinds=("labelmap", "image", "projection"),
            required=False,
            mask_of="radiograph",
            short="a fracture mask",
        ),
    ),
    adapter="models.calcaneus_msrt.adapter:CalcaneusAdapter",
    phantom="models.calcaneus_msrt.phantom",
    state="MSRT (EfficientNet + multi-scale SRT) on image + rough mask, mask U-Net, demo weights",
    paper="calcaneus_msrt.txt",
)
