"""An ``AnalysisRequest`` (its series, their study) as a message record (``app.ipc``).

The explanation child (``app.analysis.explain_child``) is sent the request it explains; pickle
would also carry code, so the request travels as JSON fields plus its pixel arrays. Each series
is sent once however often it is referred to (an input is also one of its study's series), and
each array once (``ipc.ArrayTable``), so the other end gets the same sharing it had here.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import get_args

import numpy as np

from app import ipc
from app.engine.adapter import AnalysisRequest
from app.findings.serial import volume_from_record, volume_record
from app.study.model import PatientInfo, Series, SeriesKind, Study

_KINDS = get_args(SeriesKind)


def request_record(request: AnalysisRequest, table: ipc.ArrayTable) -> dict:
    series: list[Series] = []
    index: dict[int, int] = {}

    def ref(s: Series) -> int:
        if id(s) not in index:
            index[id(s)] = len(series)
            series.append(s)
        return index[id(s)]

    inputs = {slot: ref(s) for slot, s in request.inputs.items()}
    study = None
    if request.study is not None:
        study = {"study_uid": request.study.study_uid, "patient": asdict(request.study.patient),
                 "series": [ref(s) for s in request.study.series]}  # fmt: skip
    focus = request.focus_lps
    return {
        "task_id": request.task_id,
        "series": [_series_record(s, table) for s in series],
        "inputs": inputs,
        "study": study,
        "source": request.source,
        "origins": dict(request.origins),
        "focus_lps": None if focus is None else [float(v) for v in focus],
    }


def request_from_record(d: dict, arrays: list[np.ndarray]) -> AnalysisRequest:
    series = [_series_from_record(s, arrays) for s in ipc.items(d, "series")]

    def pick(n: object) -> Series:
        if not ipc.is_int(n) or not 0 <= n < len(series):  # type: ignore[operator]
            raise ipc.ProtocolError(f"series {n!r} is not in the message")
        return series[n]  # type: ignore[index]

    inputs = {slot: pick(n) for slot, n in ipc.mapping(d, "inputs").items()}
    study = None
    if d.get("study") is not None:
        s = ipc.mapping(d, "study")
        patient = ipc.mapping(s, "patient")
        study = Study(
            ipc.text(s, "study_uid"),
            PatientInfo(**{f.name: ipc.text(patient, f.name, "") for f in fields(PatientInfo)}),
            [pick(n) for n in ipc.items(s, "series")],
        )
    origins = ipc.mapping(d, "origins", {})
    focus = None if d.get("focus_lps") is None else ipc.numbers(d, "focus_lps", 3)
    return AnalysisRequest(
        task_id=ipc.text(d, "task_id"),
        inputs=inputs,
        study=study,
        source=ipc.text(d, "source", ""),
        origins={slot: ipc.text(origins, slot) for slot in origins},
        focus_lps=focus,  # type: ignore[arg-type]
    )


def _series_record(s: Series, table: ipc.ArrayTable) -> dict:
    return {
        "series_uid": s.series_uid,
        "modality": s.modality,
        "description": s.description,
        "image": volume_record(s.image, table),
        "kind": s.kind,
        "body_part": s.body_part,
        "view_position": s.view_position,
        "window": None if s.window is None else [float(v) for v in s.window],
        "invert": bool(s.invert),
        "warnings": list(s.warnings),
        "source_paths": [str(p) for p in s.source_paths],
        "meta": s.meta,  # plain values (the loaders keep no others)
    }


def _series_from_record(d: dict, arrays: list[np.ndarray]) -> Series:
    kind = ipc.text(d, "kind")
    if kind not in _KINDS:
        raise ipc.ProtocolError(f"series kind {kind!r} is not one of {_KINDS}")
    window = None if d.get("window") is None else ipc.numbers(d, "window", 2)
    return Series(
        series_uid=ipc.text(d, "series_uid"),
        modality=ipc.text(d, "modality"),
        description=ipc.text(d, "description"),
        image=volume_from_record(ipc.mapping(d, "image"), arrays),
        kind=kind,  # type: ignore[arg-type]
        body_part=ipc.text(d, "body_part", ""),
        view_position=ipc.text(d, "view_position", ""),
        window=window,  # type: ignore[arg-type]
        invert=bool(ipc.flag(d, "invert", False)),
        warnings=ipc.strings(d, "warnings", []),
        source_paths=ipc.strings(d, "source_paths", []),
        meta=ipc.mapping(d, "meta", {}),
    )
