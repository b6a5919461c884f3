"""Task id -> module with the task's synthetic phantom generator (the demo and training data).

Every module listed here provides::

    generate(seed: int, **options) -> <Sample>      # in memory: image(s), geometry, truth
    write_study(sample, out_dir: Path) -> Path      # DICOM (or images) + truth.json
    write_demo(out_dir: Path, seed: int = 0) -> list[Path]   # into out_dir/<task id>/...

Imports are lazy (``phantom_module``) so a task whose code has not landed, or fails to import,
does not stop the others.
"""

from __future__ import annotations

import importlib
from types import ModuleType

PHANTOMS: dict[str, str] = {
    "cervical-fracture": "models.cervical_fracture.phantom",
    "femur-ao": "models.femur_ao.phantom",
    "calcaneus-fracture": "models.calcaneus_msrt.phantom",
    "spine-xray": "models.spine_xray.phantom",
    "lumbar-mri": "models.lumbar_ccfnet.phantom",
}


class PhantomUnavailable(Exception):
    """The task's phantom module is missing or does not import; the message says why."""


def phantom_module(task_id: str) -> ModuleType:
    if task_id not in PHANTOMS:
        raise KeyError(f"unknown task '{task_id}'; known tasks: {', '.join(PHANTOMS)}")
    name = PHANTOMS[task_id]
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise PhantomUnavailable(
            f"{task_id}: phantom module {name} is not available ({exc})"
        ) from exc
    for fn in ("generate", "write_study", "write_demo"):
        if not callable(getattr(module, fn, None)):
            raise PhantomUnavailable(f"{task_id}: {name} has no {fn}()")
    return module
