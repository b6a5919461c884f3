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
    known: dict[bytes, int] = {}  # exact repeats (all frames of a multi-frame file) are free
    for vec in vectors:
        if vec is None:
            ids.append(None)
            continue
        arr = np.asarray(vec, float)
        key = arr.tobytes()
        found = known.get(key)
        if found is None:
            for n, centre in enumerate(centres):
                if centre.shape == arr.shape and np.max(np.abs(centre - arr)) <= tol:
                    found = n
                    break
            else:
                centres.append(arr)
                found = len(centres) - 1
            known[key] = found
        ids.append(found)
    return ids


def split_keys(frames: list[Frame]) -> list[tuple]:
    """Frames of one series with equal keys can share a volume."""
    orientation = cluster_ids([f.orientation for f in frames], 1e-3)
    spacing = cluster_ids([f.pixel_spacing for f in frames], 1e-3)
    keys = []
    of_header: dict[int, tuple] = {}  # the header's part, once per file (not per frame)
    for f, o, ps in zip(frames, orientation, spacing, strict=True):
        h = of_header.get(id(f.header))
        if h is None:
            v = f.values
            h = of_header[id(f.header)] = (
                to_int(v.get("Rows")),
                to_int(v.get("Columns")),
                is_color(f),
                "LOCALIZER" in text(v.get("ImageType")).upper(),
            )
        keys.append((o, h[0], h[1], h[2], ps, h[3], f.position is not None))
    return keys


def split_phases(frames: list[Frame]) -> list[list[Frame]] | None:
    """When positions repeat, split by a phase key that makes them unique (multi-phase/echo)."""
    rounded = np.round(np.array([f.position for f in frames], dtype=float), 2).tolist()
    positions = [tuple(p) for p in rounded]
    if len(set(positions)) == len(positions):
        return None
    at = {id(f): p for f, p in zip(frames, positions, strict=True)}
    for slot in range(len(frames[0].phase)):
        parts: dict = defaultdict(list)
        for f in frames:
            parts[f.phase[slot] if slot < len(f.phase) else None].append(f)
        if len(parts) < 2:
            continue
        if all(len({at[id(f)] for f in part}) == len(part) for part in parts.values()):
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
