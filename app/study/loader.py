"""``load(path)``: a folder, DICOM file, DICOMDIR, NIfTI or plain image -> LoadResult.

Bad files do not stop a load: they are listed in ``LoadResult.errors`` (file + reason) and the
good series load. ``StudyLoadError`` is raised only when nothing at all could be loaded.
Progress is reported at most about 50 times per load (not per file: per-file UI refreshes are
what makes big imports slow), and the cancel flag is checked between files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from app.study.dicom_loader import DicomSeries, load_dicom_files
from app.study.dicom_values import os_reason
from app.study.image_loader import (
    is_nifti,
    is_plain_image,
    load_nifti_series,
    load_plain_image,
    uid_for,
)
from app.study.model import LoadCancelled, LoadError, LoadResult, PatientInfo, Study, StudyLoadError

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]
MAX_PROGRESS_CALLS = 50


class _Progress:
    def __init__(self, total: int, progress: ProgressFn | None, cancel: CancelFn | None) -> None:
        self.total = max(1, total)
        self.done = 0
        self.progress, self.cancel = progress, cancel
        self.every = max(1, -(-self.total // MAX_PROGRESS_CALLS))  # ceil: <= 50 reports
        self.next_report = self.every

    def tick(self) -> None:
        self.done += 1
        if self.cancel is not None and self.cancel():
            raise LoadCancelled("load cancelled")
        if self.progress is not None and self.done >= self.next_report:
            self.next_report += self.every
            self.progress(min(self.done, self.total), self.total)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress(self.total, self.total)


def _dicomdir_files(path: Path) -> tuple[list[Path], list[LoadError]]:
    """Files referenced by a DICOMDIR (paths relative to its folder)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, force=True)
        records = ds.DirectoryRecordSequence
    except OSError as exc:
        return [], [LoadError(str(path), os_reason(exc, "the DICOMDIR"))]
    except Exception as exc:  # noqa: BLE001 - a broken index is reported, the walk goes on
        return [], [LoadError(str(path), f"unreadable DICOMDIR ({type(exc).__name__}: {exc})")]
    files, errors = [], []
    for rec in records:
        ref = rec.get("ReferencedFileID")
        if not ref:
            continue
        parts = [ref] if isinstance(ref, str) else list(ref)
        target = path.parent.joinpath(*[str(p) for p in parts])
        if not target.exists():
            # File-set IDs are upper case; file systems may not be.
            alt = path.parent.joinpath(*[str(p).lower() for p in parts])
            target = alt if alt.exists() else target
        if target.exists():
            files.append(target)
        else:
            errors.append(LoadError(str(target), "listed in DICOMDIR but missing"))
    return files, errors


def _is_dicomdir(path: Path) -> bool:
    return path.name.upper() == "DICOMDIR"


_DOC_SUFFIXES = (".md", ".rst", ".html", ".pdf", ".csv")
_DOC_PREFIXES = ("readme", "license", "licence", "copying", "notice")


def _is_side_file(full: Path) -> bool:
    """Documentation beside scans (README, LICENSE, *.md): not images, and not worth an error."""
    lower = full.name.lower()
    return lower.endswith(_DOC_SUFFIXES) or lower.startswith(_DOC_PREFIXES) or "readme" in lower


def _truth_files(folder: Path, names: list[str]) -> set[str]:
    """truth.json and the label maps it lists: ground truth, shown as overlays, not as series."""
    if "truth.json" not in names:
        return set()
    skip = {"truth.json"}
    try:
        doc = json.loads((folder / "truth.json").read_text())
        skip.update(str(m.get("file", "")) for m in doc.get("labelmaps", []))
    except (OSError, ValueError, AttributeError):
        pass  # an unreadable truth.json only means its label maps load as ordinary series
    return skip


def collect_files(path: Path) -> tuple[list[Path], list[LoadError]]:
    """Every non-hidden file under ``path`` (recursive), plus files a DICOMDIR points to.

    Documentation files and ground truth written beside demo studies (truth.json and its label
    maps) are left out of a folder load; open such a file directly to load it."""
    if path.is_file():
        if _is_dicomdir(path):
            return _dicomdir_files(path)
        return [path], []
    files: list[Path] = []
    errors: list[LoadError] = []

    def unlisted(exc: OSError) -> None:  # a folder that cannot be listed is said, not skipped
        errors.append(LoadError(str(exc.filename or path), os_reason(exc, "the folder")))

    for root, dirs, names in os.walk(path, onerror=unlisted):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        truth = _truth_files(Path(root), names)
        for name in sorted(names):
            if name.startswith(".") or name in truth:
                continue
            full = Path(root) / name
            if _is_side_file(full):
                continue
            if _is_dicomdir(full):
                referenced, errs = _dicomdir_files(full)
                files.extend(referenced)
                errors.extend(errs)
                continue
            if full.is_file():
                files.append(full)
    unique = list(dict.fromkeys(p.resolve() if p.is_symlink() else p for p in files))
    return unique, errors


def load(
    path: str | os.PathLike,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    *,
    nifti_kind: str | None = None,
) -> LoadResult:
    """Load everything under ``path``; see the module docstring for the error contract.

    ``nifti_kind`` ("volume" or "labelmap") forces how NIfTI files are read; by default integer
    data with few distinct values is a label map.
    """
    if nifti_kind not in (None, "volume", "labelmap"):
        raise ValueError(f"nifti_kind must be 'volume' or 'labelmap', not {nifti_kind!r}")
    path = Path(path)
    try:
        if not path.exists():
            raise StudyLoadError(str(path), "no such file or folder")
        files, errors = collect_files(path)
    except OSError as exc:  # e.g. a path inside a folder this user may not enter
        raise StudyLoadError(str(path), os_reason(exc, "it")) from None
    if not files and not errors:
        raise StudyLoadError(str(path), "folder contains no files")
    tracker = _Progress(2 * len(files), progress, cancel)
    if cancel is not None and cancel():
        raise LoadCancelled("load cancelled")

    others: list[DicomSeries] = []
    dicom_paths: list[str] = []
    for f in files:
        if is_nifti(f) or is_plain_image(f):
            try:
                if is_nifti(f):
                    series = load_nifti_series(f, nifti_kind)
                else:
                    series = load_plain_image(f)
            except LoadCancelled:
                raise
            except OSError as exc:
                errors.append(LoadError(str(f), os_reason(exc)))
            except Exception as exc:  # noqa: BLE001 - a bad file is a listed error
                errors.append(LoadError(str(f), str(exc) or type(exc).__name__))
            else:
                study_uid = uid_for(f.parent, "study")
                others.append(DicomSeries(study_uid, PatientInfo(), series, (0, str(f))))
            tracker.tick()
            tracker.tick()
        else:
            dicom_paths.append(str(f))
    built, dicom_errors = load_dicom_files(dicom_paths, tracker.tick)
    errors.extend(dicom_errors)
    built.extend(others)
    tracker.finish()

    studies: dict[str, Study] = {}
    for item in sorted(built, key=lambda b: b.sort_key):
        study = studies.get(item.study_uid)
        if study is None:
            study = studies[item.study_uid] = Study(item.study_uid, item.patient)
        study.series.append(item.series)
    result = LoadResult(list(studies.values()), errors)
    if not result.studies:
        if len(errors) == 1:
            raise StudyLoadError(errors[0].path, errors[0].reason)
        first = f" (first: {Path(errors[0].path).name}: {errors[0].reason})" if errors else ""
        raise StudyLoadError(str(path), f"no loadable images among {len(files)} file(s){first}")
    return result


__all__ = ["collect_files", "load"]
