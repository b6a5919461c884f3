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
import csv
import io
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

from app.analysis.request import resolve_inputs, series_by_uid_or_path
from app.analysis.runner import run_analysis
from app.analysis.staging import REPORT_FILE, pid_alive
from app.engine.adapter import Adapter, AnalysisRequest, InputRejected
from app.errors import describe_os_error, user_errors
from app.findings.io import (
    FindingsFormatError,
    StudyRef,
    atomic_write_text,
    is_complete,
    read_document,
    write_result,
)
from app.findings.pseudonym import installation_key, pseudonym
from app.findings.types import AnalysisResult
from app.study.model import LoadResult, Series, Study, StudyLoadError

SUMMARY_FILE = "summary.csv"
STAGING = ".staging"
# Files in a batch folder that are not studies.
_NOT_STUDIES = {".csv", ".json", ".txt", ".md", ".pdf", ".log", ".py", ".html"}
_STUDY_SUFFIXES = (".nii.gz", ".nii", ".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff")

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


def explain_positives(
    adapter: Adapter,
    request: AnalysisRequest,
    result: AnalysisResult,
    methods: tuple[str, ...] | list[str],
    progress: Callable[[str, float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list:
    """Explain the positive findings (the most probable top-level one when none is) by
    ``methods`` ("all": every method the task has) and add the maps to ``result.overlays``, so
    findings.json and the report carry them; the explaining maps are moved to the front of the
    list, so the report's key images show them first. A positive finding under a negative
    parent (a femur's "normal" type when it is not fractured) is not explained: it is the detail
    of a negative call. What was explained, and what could not be and why, is recorded in
    ``result.extra["explanations"]``. Returns the overlays added."""
    # imported here: only --explain needs the explain step
    from app.analysis.explain import explain
    from app.engine.adapter import ExplainUnavailable

    wanted = list(adapter.explain_methods) if "all" in methods else list(dict.fromkeys(methods))
    # outside the training domain no finding is called positive: explain the top one only
    chosen = [
        f
        for f in result.findings
        if not result.no_call and f.positive and _parent_positive(result, f)
    ]
    if not chosen and result.findings:
        top = [f for f in result.findings if not f.parent] or result.findings
        chosen = [max(top, key=lambda f: f.probability)]
    records: list[dict] = result.extra.setdefault("explanations", [])
    added: list = []
    shown: list = []  # every overlay explaining a chosen finding, in the order explained
    jobs = [(f, m) for f in chosen for m in wanted]
    for n, (finding, method) in enumerate(jobs):
        who = f"{finding.side} {finding.label}".strip()
        record = {"finding": who, "method": method}
        t0 = time.perf_counter()

        def step(stage: str, fraction: float, n: int = n, who: str = who, m: str = method) -> None:
            if progress:
                progress(f"explain {who} by {m}: {stage}", (n + fraction) / len(jobs))

        try:
            overlays = explain(adapter, request, result, finding, method, step, cancel)
        except ExplainUnavailable as exc:
            record["unavailable"] = str(exc)
            records.append(record)
            continue
        for ov in overlays:
            if all(ov is not o for o in result.overlays):  # a CAM made by the run is there already
                result.overlays.append(ov)
                added.append(ov)
            if all(ov is not o for o in shown):
                shown.append(ov)
        record["overlays"] = [ov.name for ov in overlays]
        record["seconds"] = round(time.perf_counter() - t0, 3)
        records.append(record)
    # The maps asked for go first, per finding (its SHAP beside its CAM): the report's key
    # images take heatmaps in this order, up to its limit.
    rest = [o for o in result.overlays if all(o is not s for s in shown)]
    result.overlays[:] = shown + rest
    return added


def _parent_positive(result: AnalysisResult, finding) -> bool:
    """True when the finding has no parent finding, or its parent (same side) is positive."""
    parents = [
        f
        for f in result.findings
        if finding.parent and f.side == finding.side and finding.parent in (f.label, f.group)
    ]
    return not parents or any(p.positive for p in parents)


# ---- discovering studies ------------------------------------------------------------------------
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
def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class BatchProgress:
    """A progress bar with ETA on stderr: redrawn in place on a terminal, one line per study otherwise."""

    def __init__(self, total: int, to_run: int, stream: TextIO | None = None) -> None:
        self.total, self.to_run = total, to_run
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self.done = 0
        self.ran = 0
        self.ran_seconds = 0.0

    def _bar(self) -> str:
        frac = self.done / self.total if self.total else 1.0
        filled = int(round(frac * 20))
        elapsed = time.perf_counter() - self.started
        remaining = self.to_run - self.ran
        eta = "--:--"
        if self.ran:
            eta = _clock(self.ran_seconds / self.ran * remaining)
        elif remaining == 0:
            eta = "0:00"
        width = len(str(self.total))
        return (
            f"[{self.done:>{width}}/{self.total}] {frac:4.0%} |{'#' * filled}{'.' * (20 - filled)}| "
            f"elapsed {_clock(elapsed)} ETA {eta}"
        )

    def stage(self, name: str, stage: str, fraction: float) -> None:
        if self.tty:
            self.stream.write(f"\r\033[K{self._bar()}  {name}: {stage} {fraction:.0%}")
            self.stream.flush()

    def finished(self, name: str, status: str, seconds: float, ran: bool) -> None:
        self.done += 1
        if ran:
            self.ran += 1
            self.ran_seconds += seconds
        line = f"{self._bar()}  {name}: {status}" + (f" ({seconds:.1f} s)" if ran else "")
        self.stream.write(("\r\033[K" if self.tty else "") + line + "\n")
        self.stream.flush()


# ---- the batch ----------------------------------------------------------------------------------
@dataclass
class SummaryRow:
    study: str
    status: str  # ok, failed, pending
    reason: str = ""
    seconds: float | None = None
    ref: StudyRef | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    no_call: str = ""  # outside the model's training domain: why no decision was taken


@dataclass
class BatchResult:
    rows: list[SummaryRow]
    summary_path: Path
    interrupted: bool = False

    @property
    def failed(self) -> list[SummaryRow]:
        return [r for r in self.rows if r.status == "failed"]


_ID_COLUMNS = (
    "patient_id",
    "patient_name",
    "study_date",
    "accession",
    "study_uid",
    "series_uid",
    "modality",
)


def _probabilities_from_doc(doc: dict) -> dict[str, float]:
    out = {}
    for f in doc.get("findings", []):
        key = f"{f['side']}:{f['label']}" if f.get("side") else f["label"]
        out[key] = f.get("probability")
    return out


# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...) sends
# data away, +cmd|... runs a program); the full-width forms are converted by some input methods.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def spreadsheet_safe(value: object) -> str:
    """The cell as text, with a leading single quote when a spreadsheet would read it as a
    formula (OWASP's CSV injection advice); leading spaces do not hide a formula."""
    text = "" if value is None else str(value)
    if text.lstrip(" ").startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def write_summary(
    path: Path, rows: list[SummaryRow], anonymise: bool, key: bytes | None = None
) -> Path:
    """summary.csv, one row per study; with ``anonymise`` identifiers become pseudonyms (under
    ``key``, else the installation's secret) and every text cell is spreadsheet-safe."""
    labels: list[str] = []
    for r in rows:
        for k in r.probabilities:
            if k not in labels:
                labels.append(k)
    buf = io.StringIO()
    w = csv.writer(buf)
    header = ["study", "status", "reason", "time_s", "no_call", *_ID_COLUMNS]
    header += [f"p:{k}" for k in labels]
    w.writerow([spreadsheet_safe(h) for h in header])
    for r in rows:
        ref = r.ref
        if ref is not None and anonymise:
            ref = ref.anonymised_copy(key)
        ids = (
            [
                ref.patient.patient_id,
                ref.patient.name,
                ref.patient.study_date,
                ref.patient.accession,
                ref.study_uid,
                ref.series_uid,
                ref.modality,
            ]
            if ref is not None
            else [""] * len(_ID_COLUMNS)
        )
        probs = [
            "" if r.probabilities.get(k) is None else f"{r.probabilities[k]:.6f}" for k in labels
        ]
        seconds = "" if r.seconds is None else f"{r.seconds:.3f}"
        cells = (r.study, r.status, r.reason, seconds, r.no_call, *ids)
        text = [spreadsheet_safe(v) for v in cells]
        w.writerow([*text, *probs])  # probabilities: numbers formatted here, never a formula
    return atomic_write_text(path, buf.getvalue())


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
