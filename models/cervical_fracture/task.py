"""Cervical spine fracture on CT (RSNA 2022): declared once; see ``app/engine/task.py``."""

from app.engine.task import InputSlot, TaskSpec

TASK = TaskSpec(
    id="cervical-fracture",
    title="Cervical spine fracture (CT)",
    slots=(
        InputSlot(
            "ct",
            "an axial CT series covering the cervical spine (C1 to C7)",
            modalities=("CT",),
            kinds=("volume",),
            # not HEAD: a head CT stops at the skull base and cannot hold C1-C7 (a head and
            # neck study says HEADNECK); a series with no BodyPartExamined is not turned away
            body_parts=("CSPINE", "NECK", "HEADNECK", "SPINE", "WHOLEBODY", "PARTIALBODY"),
            short="a neck CT",
        ),
        InputSlot(
            "vertebrae",
            "a corrected C1-C7 label map on the CT's grid (stage 1 is then skipped)",
            kinds=("labelmap",),
            required=False,
            mask_of="ct",
            auto=False,
            short="a vertebra label map",
        ),
    ),
    adapter="models.cervical_fracture.adapter:CervicalFractureAdapter",
    phantom="models.cervical_fracture.phantom",
    state="two-stage 2.5D segmentation + CNN/BiLSTM/attention, demo weights",
    paper="cervical_ct_rsna2022.txt",
)
