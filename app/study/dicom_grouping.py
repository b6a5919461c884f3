"""Which frames of one SeriesInstanceUID can share a volume, and how files are grouped."""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np

from app.study.dicom_frames import Frame
from app.study.dicom_headers import RawHeader
from app.study.dicom_stack import is_color
from app.study.dicom_values import text, to_int
from app.study.model import LoadError


def cluster_ids(vectors: list[np.ndarray | None], tol: float) -> list[int | None]:
    """Greedy clustering: vectors within ``tol`` (max abs difference) of a cluster's first
    member share its id. Unlike rounding, jitter across a rounding boundary does not split."""
    centres: list[np.ndarray] = []
    ids: list[int | None] = []
    for vec in vectors:
        if vec is None:
            ids.append(None)
            continue
        for n, centre in enumerate(centres):
            if centre.shape == vec.shape and np.max(np.abs(centre - vec)) <= tol:
                ids.append(n)
                break
        else:
            centres.append(np.asarray(vec, float))
            ids.append(len(centres) - 1)
    return ids


def split_keys(frames: list[Frame]) -> list[tuple]:
    """Frames of one series with equal keys can share a volume."""
    orientation = cluster_ids([f.orientation for f in frames], 1e-3)
    spacing = cluster_ids(
        [np.array(f.pixel_spacing) if f.pixel_spacing else None for f in frames], 1e-3
    )
    keys = []
    for f, o, ps in zip(frames, orientation, spacing, strict=True):
        v = f.values
        keys.append(
            (
                o,
                to_int(v.get("Rows")),
                to_int(v.get("Columns")),
                is_color(f),
                ps,
                "LOCALIZER" in text(v.get("ImageType")).upper(),
                f.position is not None,
            )
        )
    return keys


def split_phases(frames: list[Frame]) -> list[list[Frame]] | None:
    """When positions repeat, split by a phase key that makes them unique (multi-phase/echo)."""
    positions = [tuple(np.round(f.position, 2)) for f in frames]
    if len(set(positions)) == len(positions):
        return None
    for slot in range(len(frames[0].phase)):
        parts: dict = defaultdict(list)
        for f in frames:
            parts[f.phase[slot] if slot < len(f.phase) else None].append(f)
        if len(parts) < 2:
            continue
        if all(
            len({tuple(np.round(f.position, 2)) for f in part}) == len(part)
            for part in parts.values()
        ):
            return [parts[key] for key in sorted(parts, key=lambda x: (x is None, x))]
    return None


def group_key(header: RawHeader) -> tuple[str, str]:
    """(study UID, series UID); anonymised files without UIDs group by folder and series tags."""
    from pydicom.uid import generate_uid

    v = header.values
    folder = os.path.dirname(os.path.abspath(header.path))
    study = text(v.get("StudyInstanceUID"))
    series = text(v.get("SeriesInstanceUID"))
    if not study:
        parts = [folder, text(v.get("PatientID")), text(v.get("StudyDate"))]
        study = generate_uid(entropy_srcs=["study", *parts])
    if not series:
        parts = [
            folder,
            text(v.get("SeriesNumber")),
            text(v.get("Modality")),
            text(v.get("FrameOfReferenceUID")),
            text(v.get("SeriesDescription")),
        ]
        series = generate_uid(entropy_srcs=["series", *parts])
        header.values["_uid_note"] = "no SeriesInstanceUID: files grouped by folder and series tags"
    return study, series


def series_error(frames: list[Frame], uid: str, reason: str) -> LoadError:
    """A whole series failed: name its file (or folder and UID when it has several files)."""
    paths = sorted({f.path for f in frames})
    if not paths:  # nothing to name but the series
        return LoadError(f"series {uid}", reason)
    if len(paths) == 1:
        return LoadError(paths[0], reason)
    folder = os.path.commonpath(paths)
    return LoadError(folder, f"series {uid} ({len(paths)} files): {reason}")
