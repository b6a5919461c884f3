"""Headless analysis of a folder of studies, resumable.

The folder is split by StudyInstanceUID: its subfolders and files are the candidates, and those
holding the same study (a study's AP/ and LAT/ series folders) are one study (``discovery``).

A batch writes ``OUT/<study>/`` per study and ``OUT/summary.csv`` (``summary``). Each study is
written into ``OUT/.staging/`` and renamed into place only when complete (``batch_study``), so
an interrupted run (Ctrl+C, ``kill``, even ``kill -9``) leaves no half-written study folder; the
next run skips the studies that are complete (unless ``force``) and clears what a dead run left
in ``.staging`` (``batch_plan``). One study on its own is ``one_study.analyze_study``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from app.analysis.batch_plan import plan_batch
from app.analysis.batch_study import run_study_in_batch, scrub
from app.analysis.one_study import AnalyzeOptions, default_loader
from app.analysis.request import Loader
from app.analysis.summary import BatchResult, write_summary
from app.engine.adapter import Adapter


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """`kill` (SIGTERM) stops the batch the way Ctrl+C does, so clean-up code runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_batch(
    root: Path,
    adapter: Adapter,
    out: Path,
    options: AnalyzeOptions,
    make_report: bool = False,
    force: bool = False,
    loader: Loader = default_loader,
    stream: TextIO | None = None,
) -> BatchResult:
    """Analyse every study under ``root`` into ``out``; see the module docstring."""
    root, out = Path(root), Path(out)
    plan = plan_batch(root, adapter, out, options, force, stream)
    options, entries, names, rows = plan.options, plan.entries, plan.names, plan.rows
    summary_path, bar = plan.summary_path, plan.bar
    interrupted = False
    last_summary = 0.0
    with _sigterm_as_interrupt():
        try:
            for n in plan.todo:
                rows[n] = run_study_in_batch(
                    entries[n],
                    names[n],
                    adapter,
                    out,
                    plan.staging,
                    options,
                    make_report,
                    loader,
                    bar,
                )
                if options.anonymise:
                    rows[n].reason = scrub(rows[n].reason, entries[n], names[n], root)
                if time.perf_counter() - last_summary > 2.0:  # keep the csv current, cheaply
                    write_summary(summary_path, rows, options.anonymise, options.pseudonym_key)
                    last_summary = time.perf_counter()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            write_summary(summary_path, rows, options.anonymise, options.pseudonym_key)
            with contextlib.suppress(OSError):
                plan.staging.rmdir()  # only when empty: another live run may still use it
    if interrupted:
        done = sum(r.status != "pending" for r in rows)
        bar.stream.write(
            f"\ninterrupted after {done} of {len(rows)} studies; {summary_path} lists them. "
            "Run the same command again to resume.\n"
        )
        raise KeyboardInterrupt
    return BatchResult(rows, summary_path, interrupted)
