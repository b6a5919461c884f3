"""Which studies a folder holds: its subfolders and files, grouped by StudyInstanceUID (so a
study's AP/ and LAT/ series folders are one study), and whether a folder is a batch at all."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Files in a batch folder that are not studies.
_NOT_STUDIES = {".csv", ".json", ".txt", ".md", ".pdf", ".log", ".py", ".html"}
_STUDY_SUFFIXES = (".nii.gz", ".nii", ".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclass
class StudyEntry:
    name: str
    path: Path
    paths: list[Path] = field(default_factory=list)  # every folder/file of this study
    study_uid: str = ""  # from the first DICOM header found; "" when not DICOM

    def __post_init__(self) -> None:
        if not self.paths:
            self.paths = [self.path]


def _candidates(root: Path, exclude: Path | None) -> list[StudyEntry]:
    """One entry per subfolder or image file of ``root`` (hidden files and side files skipped)."""
    entries: list[StudyEntry] = []
    used: set[str] = set()
    excluded = exclude.resolve() if exclude is not None else None
    for child in sorted(root.iterdir(), key=lambda p: p.name):
        if child.name.startswith(".") or child.name == "DICOMDIR":
            continue
        if excluded is not None and child.resolve() == excluded:
            continue
        if child.is_file() and child.suffix.lower() in _NOT_STUDIES:
            continue
        if not (child.is_dir() or child.is_file()):
            continue
        name = child.name
        if child.is_file():
            for suffix in _STUDY_SUFFIXES:
                if name.lower().endswith(suffix):
                    name = name[: -len(suffix)]
                    break
        if name in used or not name:
            name = child.name
        used.add(name)
        entries.append(StudyEntry(name, child))
    return entries


def _group_by_study(entries: list[StudyEntry]) -> list[StudyEntry]:
    """Entries holding the same StudyInstanceUID become one (named after the first)."""
    from app.study.peek import study_uid_of  # lazy: pydicom

    groups: dict[str, StudyEntry] = {}
    out: list[StudyEntry] = []
    for e in entries:
        uid = study_uid_of(e.path)
        if uid and uid in groups:
            groups[uid].paths.append(e.path)
            continue
        if uid:
            groups[uid] = e
            e.study_uid = uid
        out.append(e)
    return out


def discover_studies(root: Path, exclude: Path | None = None) -> list[StudyEntry]:
    """The studies under ``root``: its subfolders and files, grouped by StudyInstanceUID."""
    return _group_by_study(_candidates(Path(root), exclude))


def looks_like_batch(root: Path) -> bool:
    """A folder holding only subfolders (the RSNA ``train_images/<UID>/`` layout) of more than one
    study is a batch; the series folders of one study (AP/, LAT/) are not."""
    root = Path(root)
    if not root.is_dir():
        return False
    children = [
        c
        for c in root.iterdir()
        if not c.name.startswith(".") and not (c.is_file() and c.suffix.lower() in _NOT_STUDIES)
    ]
    if not children or not all(c.is_dir() for c in children):
        return False
    return len(discover_studies(root)) > 1


# ---- progress -----------------------------------------------------------------------------------
