"""Every real input in ``shared/data/real`` that a task accepts, found the way the product finds
it (``app.study.load`` -> ``resolve_inputs`` with the adapter's own ``check_slot``).

A task with several slots (spine: AP and lateral) is never filled by one real film; there the
user's way in is assigning series by hand (``--input``), so a film that every slot's
``check_slot`` accepts is also tried in all slots at once.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from app.analysis.request import resolve_inputs
from app.analysis.tasks import get_adapter, get_spec
from app.engine.adapter import AnalysisRequest, InputRejected
from app.study import load

IMAGE_SUFFIXES = (".dcm", ".nii", ".gz", ".jpg", ".jpeg", ".png", ".tif", ".tiff")
SERIES_FOLDERS = ("ct_head_gantry_tilt", "totalsegmentator/example_ct_dicom")


def candidates(real: Path) -> list[Path]:
    """Each image file on its own, and each folder that holds one series as files."""
    files = [
        p
        for p in sorted(real.rglob("*"))
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES
        and not any(str(p.parent).endswith(f) for f in SERIES_FOLDERS)
    ]
    return files + [real / f for f in SERIES_FOLDERS if (real / f).is_dir()]


def _all_slots(adapter, series, path: Path) -> AnalysisRequest | None:
    """One series in every slot of a multi-slot task, when each slot's check accepts it."""
    try:
        for slot in adapter.slots:
            if slot.required:
                adapter.check_slot(slot, series)
    except InputRejected:
        return None
    inputs = {s.name: series for s in adapter.slots if s.required}
    return AnalysisRequest(adapter.task_id, inputs, None, str(path), dict.fromkeys(inputs, "user"))


@cache
def accepted(real: Path, task_id: str) -> tuple[tuple[str, AnalysisRequest], ...]:
    spec, adapter = get_spec(task_id), get_adapter(task_id)
    out = []
    for path in candidates(real):
        try:
            loaded = load(path)
        except Exception:  # noqa: BLE001 - unreadable files are the loader tests' business
            continue
        name = str(path.relative_to(real))
        try:
            out.append((name, resolve_inputs(spec, loaded, path, adapter)))
            continue
        except InputRejected:
            pass
        if len(spec.required_slots) > 1:
            for n, series in enumerate(loaded.all_series()):
                request = _all_slots(adapter, series, path)
                if request is not None:
                    out.append((f"{name} [series {n} in every slot]", request))
    return tuple(out)


def main() -> None:
    """``python -m tests.domain_real [TASK ...]``: every accepted real input's verdict."""
    import sys

    from app.engine.domain import domain_check

    real = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
    tasks = sys.argv[1:] or ["femur-ao", "cervical-fracture", "spine-xray"]
    for task_id in tasks:
        adapter = get_adapter(task_id)
        for name, request in accepted(real, task_id):
            c = domain_check(adapter, request)
            verdict = "call" if c.in_domain else "no call"
            print(f"{task_id}\t{name}\t{c.distance:.1f}\t{c.threshold:.2f}\t{verdict}")


if __name__ == "__main__":
    main()
