"""The report's export work, off the GUI thread: build the PDF (reportlab, key images) and, for
the dialog's preview, rasterise its first pages (``pdftoppm``), or say in words what it holds
when pages cannot be rasterised. ``build_report`` writes atomically, so a failed Save leaves no
file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import traceback
from pathlib import Path

from PySide6 import QtCore
from PySide6.QtCore import Signal

from app.atomic import atomic_path
from app.findings.wording import decide_in
from app.report import ReportInput, build_report

PREVIEW_DPI = 60
PREVIEW_PAGES = 3
PDFTOPPM_MISSING = (
    "No page preview: pdftoppm (poppler-utils) was not found on PATH; "
    "packaging/install-system-deps.sh installs it. The report will still be written. Contents:"
)


def text_summary(inp: ReportInput) -> str:
    """What the report holds, in words (the preview when pages cannot be rasterised)."""
    lines = [f"Study: {inp.study.modality} {inp.study.series_description}".rstrip()]
    if inp.anonymise:
        lines.append("Identifiers: anonymised")
    for run in inp.runs:
        r = run.result
        abnormal = [d.text for f in r.findings if (d := decide_in(r, f)).abnormal]
        calls = (
            f"no call ({r.no_call})" if r.no_call else f"abnormal: {', '.join(abnormal) or 'none'}"
        )
        lines.append(
            f"Run {r.task_id} ({r.provenance.model_name} {r.provenance.model_version}): "
            f"{len(r.findings)} findings, {calls}"
        )
    if not inp.runs:
        lines.append("No analysis run on this series.")
    lines += [f"View: {caption}" for caption, _ in inp.views]
    lines.append(f"Impression: {inp.impression.strip() or '(none)'}")
    signed = f"signed off at {inp.signed_off}" if inp.signed_off else "not signed off"
    lines.append(f"Reader: {inp.reader_name or '(none)'}, {signed}")
    lines.append(f"Page size: {inp.page_size}")
    return "\n".join(lines)


def rasterise(pdf: Path, out_prefix: Path, pages: int, dpi: int = PREVIEW_DPI) -> list[Path]:
    """PNG files of the first ``pages`` pages (pdftoppm); raises OSError when it fails."""
    exe = shutil.which("pdftoppm")
    if exe is None:
        raise FileNotFoundError("pdftoppm")
    proc = subprocess.run(
        [exe, "-r", str(dpi), "-png", "-f", "1", "-l", str(pages), str(pdf), str(out_prefix)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise OSError(f"pdftoppm failed on {pdf}: {proc.stderr.strip() or proc.returncode}")
    return sorted(out_prefix.parent.glob(out_prefix.name + "-*.png"))


def count_pages(pdf: Path) -> int:
    """Pages in a PDF written by reportlab (counts page objects; no extra dependency)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf.read_bytes()))


class ReportJob(QtCore.QThread):
    """Builds the PDF (and, for a preview, rasterises its first pages) off the GUI thread."""

    preview_ready = Signal(object, object, str)  # png paths, pdf path, note
    saved = Signal(str)
    failed = Signal(str)

    def __init__(self, inp: ReportInput, target: Path, preview_dir: Path | None, parent=None):
        super().__init__(parent)
        self.inp, self.target, self.preview_dir = inp, Path(target), preview_dir
        self.copy_from: Path | None = None  # Save: the preview PDF with the same options

    def run(self) -> None:
        try:
            if self.preview_dir is None:
                self._save()
            else:
                self._preview()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message in the dialog
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            detail = f"{self.target}: {reason}" if str(self.target) not in reason else reason
            if not isinstance(exc, OSError | ValueError):
                traceback.print_exc()  # unexpected: keep the trace for a bug report
            self.failed.emit(detail)

    def _save(self) -> None:
        if self.copy_from is not None and self.copy_from.exists():
            # same options as the preview: copy its bytes (temporary name, then rename)
            with atomic_path(self.target) as tmp:
                shutil.copyfile(self.copy_from, tmp)
        else:
            build_report(self.inp, self.target)
        self.saved.emit(str(self.target))

    def _preview(self) -> None:
        build_report(self.inp, self.target)
        for old in self.preview_dir.glob("page-*.png"):
            old.unlink()
        try:
            pngs = rasterise(self.target, self.preview_dir / "page", PREVIEW_PAGES)
            note = ""
        except FileNotFoundError:
            pngs, note = [], PDFTOPPM_MISSING + "\n\n" + text_summary(self.inp)
        except (OSError, subprocess.SubprocessError) as exc:
            pngs, note = [], f"No page preview ({exc}). Contents:\n\n" + text_summary(self.inp)
        self.preview_ready.emit(pngs, self.target, note)
