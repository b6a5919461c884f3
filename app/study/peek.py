"""Which study a file or folder holds, from one DICOM header (no pixels): batch discovery uses it
to keep the AP/ and LAT/ series folders of one study together."""

from __future__ import annotations

import os
from pathlib import Path

_SKIP_SUFFIXES = (".json", ".nii", ".nii.gz", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".txt")
MAX_FILES_TRIED = 8


def _candidate_files(path: Path):
    if path.is_file():
        yield path
        return
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            if not name.startswith(".") and not name.lower().endswith(_SKIP_SUFFIXES):
                yield Path(folder) / name


def study_uid_of(path: Path) -> str:
    """The StudyInstanceUID of the first DICOM file found under ``path``, or "" (not DICOM,
    unreadable, or no UID): such an entry is a study of its own."""
    import pydicom

    for n, file in enumerate(_candidate_files(Path(path))):
        if n >= MAX_FILES_TRIED:
            break
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
        except Exception:  # noqa: BLE001 - any unreadable file: try the next one
            continue
        uid = str(getattr(ds, "StudyInstanceUID", "") or "")
        if uid:
            return uid
    return ""
