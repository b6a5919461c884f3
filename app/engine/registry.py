"""Task id -> adapter class. Adapters live in ``models/<task>/adapter.py``; import is lazy so
the CLI starts fast and a broken task cannot stop the others from loading.

Adding a task: add its folder under ``models/`` and one line here.
"""

from __future__ import annotations

import importlib

from app.engine.adapter import Adapter

TASKS: dict[str, str] = {
    "cervical-fracture": "models.cervical_fracture.adapter:CervicalFractureAdapter",
    "femur-ao": "models.femur_ao.adapter:FemurAOAdapter",
    "calcaneus-fracture": "models.calcaneus_msrt.adapter:CalcaneusAdapter",
    "spine-xray": "models.spine_xray.adapter:SpineXrayAdapter",
    "lumbar-mri": "models.lumbar_ccfnet.adapter:LumbarCCFAdapter",
}


class UnknownTask(Exception):
    pass


def available_tasks() -> list[str]:
    """Tasks whose adapter module imports (those whose code has landed)."""
    out = []
    for task_id in TASKS:
        try:
            _load_class(task_id)
        except (ImportError, AttributeError):
            continue
        out.append(task_id)
    return out


def _load_class(task_id: str) -> type[Adapter]:
    module_name, cls_name = TASKS[task_id].split(":")
    module = importlib.import_module(module_name)
    return getattr(module, cls_name)


def get_adapter(task_id: str) -> Adapter:
    if task_id not in TASKS:
        raise UnknownTask(f"unknown task '{task_id}'; known tasks: {', '.join(TASKS)}")
    try:
        cls = _load_class(task_id)
    except (ImportError, AttributeError) as exc:
        raise UnknownTask(f"task '{task_id}' is not available in this build ({exc})") from exc
    return cls()


def tasks_accepting(series) -> list[str]:
    """Available tasks whose declared input (modality, kind and, where both the task and the file
    name one, body part) matches the series; a metadata check only, so the viewer can preselect a
    sensible task without running anything."""
    out = []
    for task_id in available_tasks():
        spec = _load_class(task_id).input_spec
        modality = (series.modality or "").upper()
        if spec.modalities and modality not in spec.modalities:
            continue
        if spec.kinds and series.kind not in spec.kinds:
            continue
        body_part = (series.body_part or "").upper().replace(" ", "").replace("-", "")
        if spec.body_parts and body_part and body_part not in spec.body_parts:
            continue
        out.append(task_id)
    return out
