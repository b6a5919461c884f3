"""``analyze --seg``: the task's label maps as DICOM SEG beside findings.json.

Each label-map overlay is written over the DICOM series of the input slot it was computed on,
through ``app.findings.dicom_seg`` (the one SEG writer), as the model's AUTOMATIC output. An
input that is not DICOM (PNG, NIfTI) has nothing for a SEG to reference: it is skipped and the
reason returned, so the command can say so instead of failing the run.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pydicom

from app.atomic import atomic_path
from app.engine.adapter import AnalysisRequest
from app.findings.dicom_seg import Algorithm, SegError, Segment, write_seg
from app.findings.types import AnalysisResult, LabelMapOverlay


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-").lower() or "labels"


def write_label_segs(
    result: AnalysisResult, request: AnalysisRequest, out_dir: Path
) -> tuple[list[Path], list[str]]:
    """(SEG files written, reasons for the label maps skipped)."""
    written, skipped = [], []
    prov = result.provenance
    algorithm = Algorithm(prov.model_name or result.task_id, prov.model_version or "0")
    for overlay in result.overlays:
        if not isinstance(overlay, LabelMapOverlay) or overlay.image is None:
            continue
        series = request.inputs.get(overlay.slot)
        paths = [p for p in (series.source_paths if series else []) if _is_dicom(p)]
        if series is None or not paths:
            skipped.append(f"{overlay.name}: its input is not a DICOM series")
            continue
        values = [int(v) for v in np.unique(overlay.image.array) if v > 0]
        segments = [Segment(v, *overlay.labels.get(v, (f"label {v}", (255, 0, 0)))) for v in values]
        source = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
        try:
            seg = write_seg(overlay.image, segments, source, algorithm,
                            series_description=f"{overlay.name} ({result.task_id})")  # fmt: skip
        except SegError as exc:
            skipped.append(f"{overlay.name}: {exc}")
            continue
        path = Path(out_dir) / f"seg-{_slug(overlay.name)}.dcm"
        with atomic_path(path) as tmp:
            seg.save_as(tmp, enforce_file_format=True)
        written.append(path)
    return written, skipped


def _is_dicom(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False
