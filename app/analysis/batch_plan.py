"""What a batch has to do before it runs a study: find the studies, name their output folders,
clear what dead runs left in ``OUT/.staging`` and skip the studies an earlier run finished.

Shared by the serial batch (``batch.run_batch``) and the Dask one
(``cluster.run_batch_on_cluster``), so both resume the same way and name folders alike.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from app.analysis.discovery import StudyEntry, discover_studies
from app.analysis.one_study import AnalyzeOptions
from app.analysis.staging import pid_alive
from app.analysis.summary import BatchProgress, SummaryRow, previous_row
from app.engine.adapter import Adapter
from app.findings.pseudonym import installation_key, pseudonym
from app.study.model import StudyLoadError

SUMMARY_FILE = "summary.csv"
STAGING = ".staging"


@dataclass
class BatchPlan:
    options: AnalyzeOptions  # when anonymising, with the one key of the whole run
    entries: list[StudyEntry]
    names: list[str]  # each study's output folder name
    rows: list[SummaryRow]  # an earlier run's row where the study is done, else "pending"
    todo: list[int]  # indices of the studies still to run
    bar: BatchProgress
    summary_path: Path
    staging: Path


def plan_batch(
    root: Path,
    adapter: Adapter,
    out: Path,
    options: AnalyzeOptions,
    force: bool = False,
    stream: TextIO | None = None,
) -> BatchPlan:
    """The studies under ``root``, which of them ``out`` already holds (none with ``force``),
    and a progress bar that has already counted those."""
    if not root.is_dir():
        raise StudyLoadError(str(root), "not a folder of studies")
    out.mkdir(parents=True, exist_ok=True)
    staging = out / STAGING
    clear_stale_staging(staging)
    entries = discover_studies(root, exclude=out)
    if not entries:
        raise StudyLoadError(
            str(root), "no studies found (expected one subfolder or file per study)"
        )
    if options.anonymise:  # one key for the whole run (the installation's is read once)
        options = replace(options, pseudonym_key=options.pseudonym_key or installation_key())
    names = output_names(entries, options)
    rows = [SummaryRow(name, "pending") for name in names]
    todo: list[int] = []
    for n, name in enumerate(names):
        done = previous_row(out / name, adapter.task_id) if not force else None
        if done is not None:
            rows[n] = done
        else:
            todo.append(n)
    bar = BatchProgress(len(entries), len(todo), stream)
    pending = set(todo)
    for n, row in enumerate(rows):
        if n not in pending:
            bar.finished(row.study, "done in an earlier run", 0.0, ran=False)
    return BatchPlan(options, entries, names, rows, todo, bar, out / SUMMARY_FILE, staging)


def clear_stale_staging(staging: Path) -> None:
    """Remove what dead runs left behind (a name ends with the pid of the run that made it)."""
    if not staging.is_dir():
        return
    for entry in staging.iterdir():
        pid_text = entry.name.rsplit("-", 1)[-1]
        if pid_text.isdigit() and pid_alive(int(pid_text)) and int(pid_text) != os.getpid():
            continue
        shutil.rmtree(entry, ignore_errors=True)


def output_names(entries: list[StudyEntry], options: AnalyzeOptions) -> list[str]:
    """Each study's output folder name: its own name, or when anonymising its pseudonym (the
    same one its findings.json and summary row show), so no folder name leaks."""
    if not options.anonymise:
        return [e.name for e in entries]
    key = options.pseudonym_key or installation_key()
    return [pseudonym(e.study_uid or f"path:{e.name}", key) for e in entries]
