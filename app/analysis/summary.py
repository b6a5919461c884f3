"""A batch's progress bar and its summary.csv (one row per study; cells a spreadsheet could run
as formulas are neutralised; identifiers become pseudonyms when anonymising)."""

from __future__ import annotations

import csv
import io
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from app.findings.io import StudyRef, atomic_write_text, is_complete, read_document


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


def previous_row(folder: Path, task_id: str) -> SummaryRow | None:
    """The row of a study an earlier run finished for this task (its complete findings.json in
    ``folder``), so a resumed batch lists it without running it again; None if not done."""
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
