"""Lumbar MR landmarks and disease (CCF-Net): declared once; see ``app/engine/task.py``."""

from app.engine.task import InputSlot, TaskSpec

TASK = TaskSpec(
    id="lumbar-mri",
    title="Lumbar spine landmarks and disease (sagittal T2 MR)",
    slots=(
        InputSlot(
            "sagittal_t2",
            "a sagittal T2-weighted MR series of the lumbar spine",
            modalities=("MR",),
            kinds=("volume", "image", "projection"),
            body_parts=("LSPINE", "LUMBARSPINE", "SPINE", "LUMBAR"),
            short="a sagittal T2 lumbar MR",
        ),
    ),
    adapter="models.lumbar_ccfnet.adapter:LumbarCCFAdapter",
    phantom="models.lumbar_ccfnet.phantom",
    state="CCF-Net (ResNet18-MSC coarse-to-fine landmarks + disease), demo weights",
    paper="lumbar_mri_ccfnet.txt",
)
