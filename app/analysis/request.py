"""Which series a task reads: its input slots filled from a loaded study.

One function, ``resolve_inputs``, used by the CLI, batch, viewer, screenshot and the models'
evaluations. The user can override any slot (CLI ``--input SLOT=SERIES_UID_OR_PATH``, the viewer's
"Use as" menu); an overridden input is still checked by the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from app.engine.adapter import (
    Adapter,
    AnalysisRequest,
    InputRejected,
    series_view,
    slot_mismatch,
)
from app.engine.task import InputSlot, TaskSpec
from app.study.model import LoadResult, Series, Study

Loader = Callable[[Path], LoadResult]


def _accepts(
    adapter: Adapter | None, spec: TaskSpec, slot: InputSlot, series: Series
) -> str | None:
    """None when ``series`` can fill ``slot``, else the reason (the adapter's own check if given)."""
    if adapter is None:
        reason = slot_mismatch(slot, series)
        return None if reason is None else f"{spec.title} needs {slot.description}; {reason}."
    try:
        adapter.check_slot(slot, series)
    except InputRejected as exc:
        return str(exc)
    return None


def _rank(slot: InputSlot, series: Series, prefer: Series | None) -> tuple:
    """Sort key, best first: the series the user is looking at, then a view the file states,
    then the largest image."""
    view = series_view(series)
    view_known = bool(slot.views and view in slot.views)
    return (series is not prefer, not view_known, -int(np.prod(series.shape)))


def _mask_fits(mask: Series, image: Series) -> bool:
    return mask.kind == "labelmap" and mask.shape[-2:] == image.shape[-2:]


def _fill(
    spec: TaskSpec,
    adapter: Adapter | None,
    study: Study,
    overrides: Mapping[str, Series],
    prefer: Series | None,
) -> tuple[dict[str, Series], dict[str, str], list[str]]:
    """Fill the study's slots: (inputs, origins, reasons for the first unfilled required slot)."""
    inputs: dict[str, Series] = {}
    origins: dict[str, str] = {}
    used: set[int] = set()
    for name, series in overrides.items():
        inputs[name], origins[name] = series, "user"
        used.add(id(series))
    reasons: list[str] = []
    for slot in sorted(spec.slots, key=lambda s: s.is_mask):  # images before their masks
        if slot.name in inputs or not slot.auto:
            continue
        pool = [s for s in study.series if id(s) not in used]
        if slot.is_mask:
            image = inputs.get(slot.mask_of)
            pool = [s for s in pool if image is not None and _mask_fits(s, image)]
        else:
            pool = [s for s in pool if s.kind != "labelmap" or "labelmap" in slot.kinds]
        fits, why = [], []
        for s in pool:
            reason = _accepts(adapter, spec, slot, s)
            (why.append(reason) if reason else fits.append(s))
        if fits:
            best = min(fits, key=lambda s: _rank(slot, s, prefer))
            inputs[slot.name], origins[slot.name] = best, "auto"
            used.add(id(best))
        elif slot.required and not reasons:
            reasons = why or [f"{spec.title} needs {slot.description}; the study has none."]
    return inputs, origins, reasons


def _missing_message(spec: TaskSpec, filled: dict[str, Series], reasons: list[str]) -> str:
    required = [s for s in spec.required_slots if not s.is_mask]
    if len(required) <= 1:
        return reasons[0] if reasons else f"{spec.title}: no usable series"
    names = [s.short or s.name for s in required]
    need = ", ".join(names[:-1]) + f" and {names[-1]}"
    have = [s.short or s.name for s in required if s.name in filled]
    has = f"has only {' and '.join(have)}" if have else "has none of them"
    return f"{spec.id} needs {need} of one study; this study {has}."


def resolve_inputs(
    spec: TaskSpec,
    loaded: LoadResult,
    source: str | Path = "",
    adapter: Adapter | None = None,
    overrides: Mapping[str, Series] | None = None,
    prefer: Series | None = None,
) -> AnalysisRequest:
    """Fill ``spec``'s slots from one study of ``loaded``; InputRejected says what is missing.

    ``overrides`` maps slot names to series the user chose (they are not re-matched here; the
    runner checks them). ``prefer`` is the series on screen: the study holding it is tried first
    and it wins a slot it can fill. With ``adapter``, its ``check_slot`` (which may look at the
    pixels) decides; without, metadata alone.
    """
    overrides = dict(overrides or {})
    unknown = set(overrides) - {s.name for s in spec.slots}
    if unknown:
        raise InputRejected(
            f"{source}: {spec.id} has no input named {', '.join(sorted(unknown))}; its inputs "
            f"are {', '.join(s.name for s in spec.slots)}"
        )
    studies = list(loaded.studies)
    if prefer is not None:
        studies.sort(key=lambda st: not any(s is prefer for s in st.series))
    first_reason = ""
    for study in studies:
        inputs, origins, reasons = _fill(spec, adapter, study, overrides, prefer)
        if all(s.name in inputs for s in spec.required_slots):
            ordered = {s.name: inputs[s.name] for s in spec.slots if s.name in inputs}
            return AnalysisRequest(spec.id, ordered, study, str(source), origins)
        if not first_reason:
            first_reason = _missing_message(spec, inputs, reasons)
    if not studies:
        first_reason = f"{spec.title}: no image series found"
    prefix = f"{source}: " if source and str(source) not in first_reason else ""
    raise InputRejected(prefix + first_reason)


def single_input(adapter: Adapter, series: Series, study: Study | None = None) -> AnalysisRequest:
    """A request for a one-input task from one series (tests, benchmarks, evaluations)."""
    slot = adapter.slots[0]
    return AnalysisRequest(adapter.task_id, {slot.name: series}, study, "", {slot.name: "user"})


def series_by_uid_or_path(loaded: LoadResult, value: str, loader: Loader | None = None) -> Series:
    """A ``--input`` value: a SeriesInstanceUID of the loaded study, or a path to load."""
    for series in loaded.all_series():
        if series.series_uid == value:
            return series
    path = Path(value)
    if path.exists() and loader is not None:
        other = loader(path)
        series = other.all_series()
        if not series:
            reasons = "; ".join(e.reason for e in other.errors[:2]) or "no image in it"
            raise InputRejected(f"{value}: cannot be used as an input ({reasons})")
        return series[0]
    known = ", ".join(s.series_uid for s in loaded.all_series())
    raise InputRejected(f"no series {value} here and no such file (series: {known})")


def parse_input_overrides(values: list[str] | None) -> dict[str, str]:
    """``["ap=1.2.3", "fracture_mask=mask.png"]`` -> ``{"ap": "1.2.3", ...}``."""
    out: dict[str, str] = {}
    for value in values or []:
        slot, sep, target = value.partition("=")
        if not sep or not slot or not target:
            raise ValueError(f"--input {value}: expected SLOT=SERIES_UID_OR_PATH")
        out[slot.strip()] = target.strip()
    return out
