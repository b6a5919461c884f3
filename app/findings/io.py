"""findings.json and its overlay files: writing an ``AnalysisResult`` to a folder and reading it back.

Layout of an output folder::

    findings.json                 written last: its presence means the folder is complete
    labelmap_00_<name>.nii.gz     label maps as NIfTI in the study's world frame (RAS affine)
    heatmap_01_<name>.npy/.png    float maps (exact values) and a colormapped picture
    boxes, landmarks              inside findings.json (image indices and LPS millimetres)

Every file is written under a temporary name and renamed (``app.atomic``), so an interrupted run
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

import app
from app.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from app.findings.colormaps import apply_colormap
from app.findings.serial import (  # geometry_from_json: also imported from here
    finding_from_json,
    geometry_from_json,
    overlay_from_json,
    overlay_json,
    provenance_from_json,
)
from app.findings.study_ref import StudyRef
from app.findings.types import (
    DEMO_DISCLAIMER,
    AnalysisResult,
    Finding,
    HeatmapOverlay,
    LabelMapOverlay,
    Overlay,
    Provenance,
)
from app.findings.wording import decide_in
from app.study.nifti import read_nifti, write_nifti

# StudyRef and the atomic writers are also imported from here by callers (app.report, batch).

FINDINGS_FILE = "findings.json"
FORMAT = "osteoview-findings"
FORMAT_VERSION = 1


def software_version() -> str:
    """``app.__version__``; from the installed metadata when ``app`` was imported as a namespace
    package (a stale editable install does that outside the repository)."""
    version = getattr(app, "__version__", None)
    if version is None:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        try:
            version = dist_version("osteoview")
        except PackageNotFoundError:
            version = "unknown"
    return version


class FindingsFormatError(Exception):
    """findings.json is missing, unreadable or not ours; names the file."""


# ---- writing ----------------------------------------------------------------------------------
def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()
    return s[:40] or "overlay"


def _clean(value):
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def heatmap_png(overlay: HeatmapOverlay) -> bytes:
    """Colormapped PNG of a heatmap: the map itself for a 2-D grid, its maximum along k for 3-D."""
    arr = np.asarray(overlay.image.array, dtype=np.float32)
    plane = arr[0] if arr.shape[0] == 1 else arr.max(axis=0)
    rgb = apply_colormap(plane, overlay.colormap, overlay.value_range)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def labelmap_png(overlay: LabelMapOverlay) -> bytes:
    """RGBA PNG of a 2-D label map: each label in its colour, background transparent (labels
    without a colour of their own get the viewer's colour for unnamed labels)."""
    from app.findings.colormaps import label_colour

    arr = np.asarray(overlay.image.array[0])
    rgba = np.zeros((*arr.shape, 4), np.uint8)
    for value in np.unique(arr):
        if value == 0:
            continue
        named = overlay.labels.get(int(value))
        colour = named[1] if named else label_colour(int(value))
        rgba[arr == value] = (*colour, 255)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def write_result(
    result: AnalysisResult,
    out_dir: Path,
    study: StudyRef | None = None,
    timings_s: dict[str, float] | None = None,
    anonymise: bool = False,
) -> Path:
    """Write ``result`` into ``out_dir`` (overlay files first, findings.json last); returns the json path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    overlays = []
    for n, ov in enumerate(result.overlays):
        base = f"{n:02d}_{_slug(ov.name)}"
        entry = overlay_json(ov)
        if entry["type"] == "labelmap":
            entry["file"] = f"labelmap_{base}.nii.gz"
            arr = ov.image.array
            top = int(np.max(arr)) if arr.size else 0
            low = int(np.min(arr)) if arr.size else 0
            dtype = np.int32 if low < 0 or top >= 65536 else np.uint8 if top < 256 else np.uint16
            write_nifti(ov.image, out_dir / entry["file"], dtype=dtype)
            if ov.image.shape[0] == 1:  # a radiograph's map: also a picture to open anywhere
                entry["png"] = f"labelmap_{base}.png"
                atomic_write_bytes(out_dir / entry["png"], labelmap_png(ov))
        elif entry["type"] == "heatmap":
            entry["npy"], entry["png"] = f"heatmap_{base}.npy", f"heatmap_{base}.png"
            with atomic_path(out_dir / entry["npy"]) as tmp, open(tmp, "wb") as f:
                np.save(f, np.asarray(ov.image.array, dtype=np.float32), allow_pickle=False)
            atomic_write_bytes(out_dir / entry["png"], heatmap_png(ov))
            entry["png_shows"] = "map" if ov.image.shape[0] == 1 else "maximum along k"
        overlays.append(entry)
    ref = study or StudyRef()
    if anonymise:
        ref = ref.anonymised_copy()
    prov = result.provenance
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "software": {"name": "OsteoView", "version": software_version()},
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "task_id": result.task_id,
        "summary": result.summary,
        "disclaimer": prov.disclaimer or DEMO_DISCLAIMER,
        "study": ref.to_json(),
        "no_call": result.no_call,
        "findings": [_finding_json(result, f) for f in result.findings],
        "overlays": overlays,
        "provenance": _provenance_json(prov, ref.anonymised),
        "timings_s": {
            k: round(float(v), 4) for k, v in {**prov.timings_s, **(timings_s or {})}.items()
        },
        "extra": result.extra,
    }
    path = out_dir / FINDINGS_FILE
    atomic_write_text(path, json.dumps(_clean(doc), indent=2))
    return path


def _finding_json(result: AnalysisResult, f: Finding) -> dict:
    """A finding with the result's call and the decision as a reader reads it."""
    decision = decide_in(result, f)
    return {**f.to_json(), "call": result.call_of(f), "decision": decision.text,
            "abnormal": decision.abnormal}  # fmt: skip


def _provenance_json(prov: Provenance, anonymise: bool) -> dict:
    doc = prov.to_json()
    if anonymise:  # series UIDs and descriptions identify the study
        doc["inputs"] = {
            slot: {k: v for k, v in d.items() if k not in ("series_uid", "description")}
            for slot, d in doc.get("inputs", {}).items()
        }
    return doc


# ---- reading ----------------------------------------------------------------------------------
@dataclass
class SavedAnalysis:
    result: AnalysisResult
    study: StudyRef
    document: dict
    folder: Path


def read_document(path: Path) -> tuple[dict, Path]:
    """The parsed findings.json (given it or its folder) and its path; cheap (no overlay files)."""
    path = Path(path)
    if path.is_dir():
        path = path / FINDINGS_FILE
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise FindingsFormatError(f"{path}: no findings.json here") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FindingsFormatError(f"{path}: unreadable findings file ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise FindingsFormatError(f"{path}: not an OsteoView findings file")
    return doc, path


def read_findings(path: Path) -> SavedAnalysis:
    """Load a findings.json (or the folder holding one) back into an AnalysisResult."""
    doc, path = read_document(path)
    folder = path.parent
    try:
        findings = [finding_from_json(f) for f in doc["findings"]]
        overlays = [ov for d in doc.get("overlays", []) if (ov := _read_overlay(d, folder))]
        prov = provenance_from_json(doc["provenance"])
        result = AnalysisResult(
            task_id=doc["task_id"],
            findings=findings,
            overlays=overlays,
            provenance=prov,
            summary=doc.get("summary", ""),
            extra=doc.get("extra", {}) or {},
            no_call=str(doc.get("no_call", "") or ""),
        )
        study = StudyRef.from_json(doc.get("study", {}))
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise FindingsFormatError(f"{path}: incomplete findings file ({exc})") from exc
    return SavedAnalysis(result, study, doc, folder)


def read_result(path: Path) -> AnalysisResult:
    return read_findings(path).result


def _read_overlay(d: dict, folder: Path) -> Overlay | None:
    """An overlay of findings.json, its pixels read from the file it names."""
    image = None
    kind = d.get("type") if isinstance(d, dict) else None
    if kind == "labelmap":
        image = read_nifti(folder / d["file"])
        image = image.with_array(np.asarray(image.array).astype(np.int32))
    elif kind == "heatmap":
        arr = np.load(folder / d["npy"], allow_pickle=False)
        image = geometry_from_json(d["geometry"], arr)
    return overlay_from_json(d, image)


def is_complete(folder: Path) -> bool:
    """A folder counts as done when its findings.json reads and every file it names exists."""
    try:
        doc, _ = read_document(folder)
    except FindingsFormatError:
        return False
    for d in doc.get("overlays", []):
        for key in ("file", "npy", "png"):
            if key in d and not (Path(folder) / d[key]).is_file():
                return False
    return True
