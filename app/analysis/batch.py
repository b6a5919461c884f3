"""Headless analysis of one study or of a folder of studies.

One study: load -> resolve the task's inputs (``app.analysis.request``) -> ``run_analysis`` ->
findings.json and overlay files (``app.findings.io``) -> optional PDF report.

A folder of studies is split by StudyInstanceUID: its subfolders and files are the candidates,
and those holding the same study (a study's AP/ and LAT/ series folders) are one study.

A batch writes ``OUT/<study>/`` per study and ``OUT/summary.csv``. Each study is written into
``OUT/.staging/`` and renamed into place only when complete, so an interrupted run (Ctrl+C,
``kill``, even ``kill -9``) leaves no half-written study folder; the next run skips the studies
that are complete (unless ``force``) and clears what a dead run left in ``.staging``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from app.analysis.discovery import StudyEntry, discover_studies, looks_like_batch
from app.analysis.explain import explain_positives
from app.analysis.request import resolve_inputs, series_by_uid_or_path
from app.analysis.runner import run_analysis
from app.analysis.staging import REPORT_FILE, pid_alive
from app.analysis.summary import (
    BatchProgress,
    BatchResult,
    SummaryRow,
    _probabilities_from_doc,
    spreadsheet_safe,
    write_summary,
)
from app.engine.adapter import Adapter, AnalysisRequest, InputRejected
from app.errors import describe_os_error, user_errors
from app.findings.io import (
    FindingsFormatError,
    StudyRef,
    is_complete,
    read_document,
    write_result,
)
from app.findings.pseudonym import installation_key, pseudonym
from app.findings.types import AnalysisResult
from app.study.model import LoadResult, Series, Study, StudyLoadError

# Re-exported: callers import the batch's parts from here (discovery, summary, explain).
__all__ = [
    "REPORT_FILE",
    "SUMMARY_FILE",
    "AnalyzeOptions",
    "BatchProgress",
    "BatchResult",
    "StudyEntry",
    "StudyRun",
    "SummaryRow",
    "analyze_study",
    "discover_studies",
    "explain_positives",
    "load_study",
    "looks_like_batch",
    "request_for",
    "run_batch",
    "spreadsheet_safe",
    "write_summary",
]

SUMMARY_FILE = "summary.csv"
STAGING = ".staging"

Loader = Callable[[Path], LoadResult]


def default_loader(path: Path) -> LoadResult:
    from app.study import load  # lazy: the loader pulls in the DICOM decoders

    return load(path)


# ---- one study ----------------------------------------------------------------------------------
@dataclass
class AnalyzeOptions:
    series_uid: str | None = None  # shorthand for the first slot's override
    report: Path | None = None  # where the PDF goes; None for no report
    anonymise: bool = False
    page_size: str = "A4"
    inputs: dict[str, str] = field(default_factory=dict)  # slot -> series UID or file path
    explain: tuple[str, ...] = ()  # --explain: methods ("shap", "cam", "all") for the positives
    pseudonym_key: bytes | None = None  # --anonymise-key; None: the installation's secret
    anonymous_id: str = ""  # the pseudonym a batch already chose (its folder's name)
    seg: bool = False  # --seg: the label maps as DICOM SEG too (app.analysis.seg_out)


@dataclass
class StudyRun:
    study: Study
    series: Series  # the first input (what a one-input task read)
    result: AnalysisResult
    request: AnalysisRequest
    ref: StudyRef
    findings_path: Path
    report_path: Path | None
    timings_s: dict[str, float]


def load_study(path: Path | list[Path], loader: Loader = default_loader) -> LoadResult:
    """Load (several paths of one study are merged), turning 'nothing loadable here' into the
    loader's own error naming the path."""
    paths = [Path(p) for p in path] if isinstance(path, list) else [Path(path)]
    result = loader(paths[0])
    for extra in paths[1:]:
        _merge(result, loader(extra))
    path = paths[0] if len(paths) == 1 else paths[0].parent
    if not result.all_series():
        reasons = "; ".join(f"{Path(e.path).name}: {e.reason}" for e in result.errors[:3])
        raise StudyLoadError(str(path), reasons or "no image series found")
    return result


def _merge(into: LoadResult, other: LoadResult) -> None:
    """Add ``other``'s series to ``into``, joining studies with the same StudyInstanceUID."""
    by_uid = {st.study_uid: st for st in into.studies}
    for st in other.studies:
        if st.study_uid in by_uid:
            by_uid[st.study_uid].series.extend(st.series)
        else:
            into.studies.append(st)
            by_uid[st.study_uid] = st
    into.errors.extend(other.errors)


def request_for(
    loaded: LoadResult,
    adapter: Adapter,
    path: Path,
    options: AnalyzeOptions | None = None,
    loader: Loader = default_loader,
) -> AnalysisRequest:
    """The task's inputs from a loaded study, with the user's ``--input``/``--series`` choices."""
    options = options or AnalyzeOptions()
    chosen = dict(options.inputs)
    if options.series_uid:
        chosen.setdefault(adapter.slots[0].name, options.series_uid)
    overrides = {}
    for slot, value in chosen.items():
        try:
            overrides[slot] = series_by_uid_or_path(loaded, value, loader)
        except InputRejected as exc:
            raise InputRejected(f"{path}: --input {slot}: {exc}") from exc
    return resolve_inputs(adapter.spec, loaded, path, adapter=adapter, overrides=overrides)


def analyze_study(
    path: Path | list[Path],
    adapter: Adapter,
    out_dir: Path,
    options: AnalyzeOptions,
    loader: Loader = default_loader,
    progress: Callable[[str, float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> StudyRun:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    loaded = load_study(path, loader)
    if isinstance(path, list):
        path = path[0] if len(path) == 1 else path[0].parent
    request = request_for(loaded, adapter, path, options, loader)
    study, series = request.study, request.primary
    timings["load_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    try:
        result = run_analysis(adapter, request, progress=progress, cancel=cancel)
    except InputRejected as exc:  # raised after a look inside (e.g. "does not cover the neck")
        if str(path) in str(exc):
            raise
        raise InputRejected(f"{path}: {exc}") from exc
    timings["analysis_s"] = time.perf_counter() - t1
    if options.explain:  # after the run, before writing: the maps go out with the findings
        t_explain = time.perf_counter()
        explain_positives(adapter, request, result, options.explain, progress, cancel)
        timings["explain_s"] = time.perf_counter() - t_explain
    t2 = time.perf_counter()
    ref = StudyRef.from_series(study, series, str(path))
    if options.anonymise:  # once, here: findings.json, the report and summary.csv agree
        ref = ref.anonymised_copy(options.pseudonym_key, options.anonymous_id)
    # findings.json records load and analysis time; writing time is only known once it is written.
    findings_path = write_result(result, out_dir, ref, dict(timings), anonymise=options.anonymise)
    if options.seg:
        from app.analysis.seg_out import write_label_segs

        for reason in write_label_segs(result, request, out_dir)[1]:
            print(f"no DICOM SEG for {reason}", file=sys.stderr)
    report_path = None
    if options.report is not None:
        from app.report import ReportInput, ReportRun, build_report  # lazy: reportlab

        report_path = build_report(
            ReportInput(
                study=ref,
                runs=[ReportRun(result, series, inputs=dict(request.inputs))],
                anonymise=options.anonymise,
                page_size=options.page_size,
            ),
            options.report,
        )
    timings["write_s"] = time.perf_counter() - t2
    return StudyRun(study, series, result, request, ref, findings_path, report_path, timings)


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


def _clear_stale_staging(staging: Path) -> None:
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


def _scrub(text: str, entry: StudyEntry, name: str, root: Path) -> str:
    """``text`` without the study's folder or file names or the batch's folder (anonymising)."""
    for path in sorted({*entry.paths, entry.path}, key=lambda p: -len(str(p))):
        text = text.replace(str(path), name).replace(str(path.resolve()), name)
    for value in (str(root.resolve()), str(root)):
        text = text.replace(value, "<input>")
    for path in {*entry.paths, entry.path}:
        if len(path.name) > 2:
            text = text.replace(path.name, name)
    return text


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
    if not root.is_dir():
        raise StudyLoadError(str(root), "not a folder of studies")
    out.mkdir(parents=True, exist_ok=True)
    staging = out / STAGING
    _clear_stale_staging(staging)
    entries = discover_studies(root, exclude=out)
    if not entries:
        raise StudyLoadError(
            str(root), "no studies found (expected one subfolder or file per study)"
        )
    summary_path = out / SUMMARY_FILE
    if options.anonymise:  # one key for the whole run (the installation's is read once)
        options = replace(options, pseudonym_key=options.pseudonym_key or installation_key())
    names = output_names(entries, options)
    rows = [SummaryRow(name, "pending") for name in names]
    todo: list[int] = []
    for n, name in enumerate(names):
        done = _previous_row(out / name, adapter.task_id) if not force else None
        if done is not None:
            rows[n] = done
        else:
            todo.append(n)
    bar = BatchProgress(len(entries), len(todo), stream)
    pending = set(todo)
    for n, row in enumerate(rows):
        if n not in pending:
            bar.finished(row.study, "done in an earlier run", 0.0, ran=False)
    interrupted = False
    last_summary = 0.0
    with _sigterm_as_interrupt():
        try:
            for n in todo:
                rows[n] = _run_one(
                    entries[n], names[n], adapter, out, staging, options, make_report, loader, bar
                )
                if options.anonymise:
                    rows[n].reason = _scrub(rows[n].reason, entries[n], names[n], root)
                if time.perf_counter() - last_summary > 2.0:  # keep the csv current, cheaply
                    write_summary(summary_path, rows, options.anonymise, options.pseudonym_key)
                    last_summary = time.perf_counter()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            write_summary(summary_path, rows, options.anonymise, options.pseudonym_key)
            with contextlib.suppress(OSError):
                staging.rmdir()  # only when empty: another live run may still use it
    if interrupted:
        done = sum(r.status != "pending" for r in rows)
        bar.stream.write(
            f"\ninterrupted after {done} of {len(rows)} studies; {summary_path} lists them. "
            "Run the same command again to resume.\n"
        )
        raise KeyboardInterrupt
    return BatchResult(rows, summary_path, interrupted)


def _previous_row(folder: Path, task_id: str) -> SummaryRow | None:
    if not is_complete(folder):
        return None
    doc, _ = read_document(folder)
    if doc.get("task_id") != task_id:
        return None
    timings = doc.get("timings_s", {})
    seconds = sum(timings.get(k) or 0.0 for k in ("load_s", "analysis_s")) or None
    return SummaryRow(
        folder.name,
        "ok",
        "done in an earlier run",
        seconds,
        StudyRef.from_json(doc.get("study", {})),
        _probabilities_from_doc(doc),
        str(doc.get("no_call", "") or ""),
    )


def _run_one(
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
