"""A single study's outputs appear all together or not at all.

``osteoview analyze STUDY --out DIR [--report FILE.pdf]`` writes everything (findings.json,
overlay files, the report) into a hidden staging folder beside DIR, ``.DIR.staging-<pid>``, and
publishes it only when every file was written: a failure half-way (a report that cannot be laid
out, a full disk, Ctrl+C) leaves DIR as it was, so the next run neither refuses with "already
exists" nor finds half a result. A staging folder left by a killed run is removed by the next
run once its pid is gone. The batch does the same per study (``app.analysis.batch``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from app.atomic import atomic_path
from app.findings.io import FINDINGS_FILE, FindingsFormatError, read_document

STAGING_MARK = ".staging-"
REPORT_FILE = "report.pdf"  # the report's name inside an output folder


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _clear_dead_staging(out: Path) -> None:
    prefix = f".{out.name}{STAGING_MARK}"
    if not out.parent.is_dir():
        return
    for entry in out.parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        pid_text = entry.name[len(prefix) :]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and pid_alive(int(pid_text)):
            continue  # a live run's
        shutil.rmtree(entry, ignore_errors=True)


def _files_of_old_result(out: Path) -> list[Path]:
    """The files a previous analysis wrote into ``out``: what its findings.json names, and its
    report (a report of the old result beside new findings would contradict them)."""
    try:
        doc, _ = read_document(out)
    except FindingsFormatError:
        return []
    names = [d.get(k) for d in doc.get("overlays", []) for k in ("file", "npy", "png")]
    return [out / Path(n).name for n in names if isinstance(n, str) and n] + [out / REPORT_FILE]


def publish_folder(staging: Path, out: Path) -> None:
    """Put the staged files in ``out``: one rename when ``out`` is new or empty; otherwise (a
    folder that holds other things too) file by file with findings.json, the mark of a complete
    result, removed first and written last."""
    if not out.exists():
        os.replace(staging, out)
        return
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
        os.replace(staging, out)
        return
    old_findings = out / FINDINGS_FILE
    stale = _files_of_old_result(out)
    old_findings.unlink(missing_ok=True)
    for path in stale:
        path.unlink(missing_ok=True)
    staged = sorted(p for p in staging.iterdir() if p.name != FINDINGS_FILE)
    for path in staged:
        os.replace(path, out / path.name)
    if (staging / FINDINGS_FILE).exists():
        os.replace(staging / FINDINGS_FILE, out / FINDINGS_FILE)
    shutil.rmtree(staging, ignore_errors=True)


def _make_staging(out: Path) -> Path:
    """A fresh staging folder beside ``out``; inside it when ``out`` exists and its parent is
    not writable (a folder made for the user in a place they cannot write)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _clear_dead_staging(out)
    staging = out.parent / f".{out.name}{STAGING_MARK}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
    except PermissionError:
        if not out.is_dir():
            raise
        _clear_dead_staging(out / "x")  # ".x.staging-<pid>" names inside ``out``
        staging = out / f".x{STAGING_MARK}{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    return staging


@contextlib.contextmanager
def staged_study(out: Path, report: Path | None = None) -> Iterator[tuple[Path, Path | None]]:
    """Yield (staging folder, staged report path or None); on success publish both.

    The report goes to ``report`` (inside ``out`` or anywhere else). Its bytes are copied to a
    temporary beside its final name before the folder is published, so the last step, a rename
    in one folder, cannot fail for want of space or permission.
    """
    out = Path(out)
    staging = _make_staging(out)
    report = Path(report) if report is not None else None
    inside = report is not None and report.resolve().parent == out.resolve()
    staged_report = None
    if report is not None:
        staged_report = staging / report.name if inside else staging / ".report.pdf"
    try:
        yield staging, staged_report
        if report is None or inside or staged_report is None:
            publish_folder(staging, out)
            return
        with atomic_path(report) as tmp:
            shutil.copyfile(staged_report, tmp)
            staged_report.unlink()
            publish_folder(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
