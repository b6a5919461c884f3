"""One study of a batch: analysed into its own staging folder and renamed into place only when
complete, so an interrupted or failing study never leaves half a folder behind.

A study's failure becomes its summary row ("failed" and why, in one line) instead of stopping the
batch; with anonymising, a reason loses the folder and file names that could identify a patient.
Run in the batch's own process (``batch``) or on a Dask worker (``cluster``), the same code.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

from app.analysis.discovery import StudyEntry
from app.analysis.one_study import AnalyzeOptions, analyze_study
from app.analysis.request import Loader
from app.analysis.staging import REPORT_FILE
from app.analysis.summary import BatchProgress, SummaryRow
from app.engine.adapter import Adapter, InputRejected
from app.errors import describe_os_error, user_errors
from app.findings.io import FindingsFormatError, read_document


def run_study_in_batch(
    entry: StudyEntry,
    name: str,
    adapter: Adapter,
    out: Path,
    staging_root: Path,
    options: AnalyzeOptions,
    make_report: bool,
    loader: Loader,
    bar: BatchProgress,
) -> SummaryRow:
    """Analyse ``entry`` into ``out/name`` through ``staging_root``; its summary row."""
    t0 = time.perf_counter()
    final = out / name
    staging = staging_root / f"{name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    opts = replace(
        options,
        report=staging / REPORT_FILE if make_report else None,
        anonymous_id=name if options.anonymise else "",
    )
    try:
        existing_task = _task_of(final)
        if existing_task and existing_task != adapter.task_id:
            raise InputRejected(
                f"{final}: holds findings of task {existing_task}; use --force or another --out"
            )
        run = analyze_study(
            entry.paths,
            adapter,
            staging,
            opts,
            loader,
            progress=lambda stage, frac: bar.stage(entry.name, stage, frac),
        )
        _move_into_place(staging, final, staging_root)
        seconds = time.perf_counter() - t0
        row = SummaryRow(
            name, "ok", "", seconds, run.ref, run.result.probabilities(), run.result.no_call
        )
    except KeyboardInterrupt:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except user_errors() as exc:
        shutil.rmtree(staging, ignore_errors=True)
        seconds = time.perf_counter() - t0
        row = SummaryRow(name, "failed", _user_message(exc), seconds)
    except Exception as exc:  # a bug in one study's analysis must not stop the batch
        shutil.rmtree(staging, ignore_errors=True)
        seconds = time.perf_counter() - t0
        row = SummaryRow(name, "failed", f"{entry.path}: internal error: {_one_line(exc)}", seconds)
    bar.finished(
        entry.name,
        row.status if row.status == "ok" else f"FAILED: {row.reason}",
        row.seconds or 0.0,
        ran=True,
    )
    return row


def _task_of(folder: Path) -> str | None:
    try:
        doc, _ = read_document(folder)
    except FindingsFormatError:
        return None
    return doc.get("task_id")


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _user_message(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    return _one_line(exc)


def _move_into_place(staging: Path, final: Path, staging_root: Path) -> None:
    """Rename the finished staging folder to its final name (an old one is moved aside first)."""
    if final.exists():
        old = staging_root / f"{final.name}-old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, final)


def scrub(text: str, entry: StudyEntry, name: str, root: Path) -> str:
    """``text`` without the study's folder or file names or the batch's folder (anonymising)."""
    for path in sorted({*entry.paths, entry.path}, key=lambda p: -len(str(p))):
        text = text.replace(str(path), name).replace(str(path.resolve()), name)
    for value in (str(root.resolve()), str(root)):
        text = text.replace(value, "<input>")
    for path in {*entry.paths, entry.path}:
        if len(path.name) > 2:
            text = text.replace(path.name, name)
    return text
