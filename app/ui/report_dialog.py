"""File -> Export report...: options, a preview of the first pages, and Save.

The views are captured on the GUI thread (VTK renders there) when the dialog opens
(``collect_report_input``, ``app.ui.capture.capture_views``); building the PDF and rasterising the
preview run in a worker thread (``app.ui.report_job``) so the window keeps responding.
"""

from __future__ import annotations

import dataclasses
import html
import tempfile
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Qt, Signal

from app.findings.io import StudyRef
from app.report import ReportInput, ReportRun
from app.ui.capture import capture_views
from app.ui.report_job import ReportJob, count_pages
from app.viewstate.measurements import measurement_lines


# ---- what goes into the report (GUI thread) -----------------------------------------------------
def collect_report_input(window) -> ReportInput:
    """The shown series' study, this session's runs on it, the arranged views and the draft."""
    series = window.series
    study = window.study_of(series) if series is not None else None
    ref = (
        StudyRef.from_series(study, series, window.study_path) if series is not None else StudyRef()
    )
    va = window.view_area
    cw = (va.window.center, va.window.width) if va.window is not None else None
    runs = []
    for r in window.results_for(series):
        # several image inputs: key images of each, with only its own overlays (a mask input is
        # drawn on its image by the result's overlays, not given pictures of its own)
        panes = window.result_panes(r)
        inputs = {p.slot: p.series for p in panes} if len(panes) > 1 else {}
        explained = window.result_with_explanations(r)  # the maps the reader asked for
        runs.append(ReportRun(explained, series, window=cw if not inputs else None, inputs=inputs))
    draft = window.impression.draft
    window.impression.flush()
    return ReportInput(
        study=ref,
        runs=runs,
        views=capture_views(window),
        impression=draft.impression if draft else "",
        reader_name=draft.reader_name.strip() if draft else "",
        signed_off=draft.signed_off if draft else "",
        measurements=measurement_lines(window.measurements.on_series(series.series_uid))
        if series is not None
        else [],
    )


# ---- dialog -----------------------------------------------------------------------------------
class ReportDialog(QtWidgets.QDialog):
    report_saved = Signal(str)

    def __init__(self, inp: ReportInput, default_path: str = "", parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export report")
        self.base = inp
        self.job: ReportJob | None = None
        self._pending_preview = False
        self._tmp = tempfile.TemporaryDirectory(prefix="osteoview-report-")
        self.preview_pdf: Path | None = None
        self._preview_key: tuple | None = None
        self.preview_pngs: list[Path] = []
        self.preview_note = ""
        self.last_saved = ""
        self.last_error = ""

        layout = QtWidgets.QVBoxLayout(self)
        form = QtWidgets.QFormLayout()
        self.anonymise = QtWidgets.QCheckBox("Replace patient and study identifiers")
        self.page_size = QtWidgets.QComboBox()
        self.page_size.addItems(["A4", "Letter"])
        self.path_edit = QtWidgets.QLineEdit(default_path)
        browse = QtWidgets.QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        path_row = QtWidgets.QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        form.addRow("Anonymise", self.anonymise)
        form.addRow("Page size", self.page_size)
        form.addRow("File", path_row)
        layout.addLayout(form)

        self.contents = QtWidgets.QLabel(self._contents_text())
        self.contents.setWordWrap(True)
        layout.addWidget(self.contents)

        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setMinimumSize(560, 420)
        self.pages_widget = QtWidgets.QWidget()
        self.pages_layout = QtWidgets.QHBoxLayout(self.pages_widget)
        self.pages_layout.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.scroll.setWidget(self.pages_widget)
        layout.addWidget(self.scroll, 1)
        self.page_labels: list[QtWidgets.QLabel] = []

        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        buttons = QtWidgets.QDialogButtonBox()
        self.save_button = buttons.addButton(
            "Save", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.close_button = buttons.addButton(
            "Close", QtWidgets.QDialogButtonBox.ButtonRole.RejectRole
        )
        self.save_button.clicked.connect(lambda: self.save())
        self.close_button.clicked.connect(self.reject)
        layout.addWidget(buttons)

        self._debounce = QtCore.QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(300)
        self._debounce.timeout.connect(self.refresh_preview)
        self.anonymise.toggled.connect(self._debounce.start)
        self.page_size.currentIndexChanged.connect(self._debounce.start)
        screen = QtGui.QGuiApplication.primaryScreen()
        room = screen.availableGeometry() if screen is not None else QtCore.QRect(0, 0, 1100, 900)
        self.resize(min(1100, room.width() - 40), min(900, room.height() - 40))

    # ---- options ------------------------------------------------------------------------
    def _contents_text(self) -> str:
        b = self.base
        if b.runs:
            tasks = ", ".join(r.result.task_id for r in b.runs)
            runs = f"{len(b.runs)} analysis run(s) of this session ({tasks})"
        else:
            runs = (
                "<span style='color:#c05000'><b>No analysis was run on this series</b>: the "
                "report will hold the views and the impression only.</span>"
            )
        signed = f"signed off at {b.signed_off}" if b.signed_off else "not signed off"
        impression = "an impression" if b.impression.strip() else "no impression"
        return (
            f"Contents: {runs}; {len(b.views)} view(s) as arranged; {impression}, "
            f"{b.reader_name or 'no reader name'}, {signed}."
        )

    def options(self) -> ReportInput:
        return dataclasses.replace(
            self.base,
            anonymise=self.anonymise.isChecked(),
            page_size=self.page_size.currentText(),
        )

    def _key(self) -> tuple:
        return (self.anonymise.isChecked(), self.page_size.currentText())

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Export report", self.path_edit.text(), "PDF (*.pdf)"
        )
        if path:
            self.path_edit.setText(path if path.lower().endswith(".pdf") else path + ".pdf")

    # ---- work ---------------------------------------------------------------------------
    def is_busy(self) -> bool:
        return self.job is not None

    def refresh_preview(self) -> None:
        if self.job is not None:
            self._pending_preview = True  # options changed while building: once more after
            return
        self._pending_preview = False
        self.status.setText("Building the preview...")
        tmp = Path(self._tmp.name)
        job = ReportJob(self.options(), tmp / "preview.pdf", tmp, self)
        job.preview_ready.connect(self._on_preview)
        key = self._key()
        job.preview_ready.connect(lambda *_: setattr(self, "_preview_key", key))
        self._start(job)

    def save(self, path: str | None = None) -> None:
        """Write the report to ``path`` (default: the path field) in the worker thread."""
        if path is not None:
            self.path_edit.setText(path)
        target = self.path_edit.text().strip()
        if not target:
            self._fail("Choose a file to save the report to.")
            return
        if self.job is not None:
            self.status.setText("Busy; Save again when the preview is ready.")
            return
        job = ReportJob(self.options(), Path(target).expanduser(), None, self)
        if self._preview_key == self._key() and self.preview_pdf is not None:
            job.copy_from = self.preview_pdf
        job.saved.connect(self._on_saved)
        self.save_button.setEnabled(False)
        self.status.setText(f"Saving {target} ...")
        self._start(job)

    def _start(self, job: ReportJob) -> None:
        job.failed.connect(self._fail)
        job.finished.connect(self._on_job_done)
        self.job = job
        job.start()

    def _on_job_done(self) -> None:
        job, self.job = self.job, None
        if job is not None:
            job.deleteLater()
        self.save_button.setEnabled(True)
        if self._pending_preview:
            self.refresh_preview()

    def _on_preview(self, pngs: list, pdf: Path, note: str) -> None:
        if not Path(pdf).exists():
            return  # the dialog closed (and removed its folder) while this was on its way
        self.preview_pdf = Path(pdf)
        self.preview_pngs = [Path(p) for p in pngs]
        self.preview_note = note
        for label in self.page_labels:
            label.setParent(None)
            label.deleteLater()
        self.page_labels = []
        if note:
            label = QtWidgets.QLabel(note)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.pages_layout.addWidget(label)
            self.page_labels.append(label)
        for png in self.preview_pngs:
            label = QtWidgets.QLabel()
            pixmap = QtGui.QPixmap(str(png))
            label.setPixmap(pixmap)
            label.setFixedSize(pixmap.size())  # whole pages side by side; the area scrolls
            label.setFrameShape(QtWidgets.QFrame.Shape.Box)
            self.pages_layout.addWidget(label)
            self.page_labels.append(label)
        for label in self.page_labels:
            label.show()  # now, not on the next event-loop turn (a grab right after sees them)
        total = count_pages(self.preview_pdf)
        shown = len(self.preview_pngs)
        self.status.setText(
            f"Preview: first {shown} of {total} page(s)" if shown else "Preview: summary only"
        )

    def _on_saved(self, path: str) -> None:
        self.last_saved = path
        self.last_error = ""
        self.status.setText(f"Saved {path}")
        self.report_saved.emit(path)

    def _fail(self, message: str) -> None:
        self.last_error = message
        self.status.setText(
            f"<span style='color:#c03030'><b>Report failed:</b> {html.escape(message)}</span>"
        )
        box = QtWidgets.QMessageBox(
            QtWidgets.QMessageBox.Icon.Warning, "Report", message, parent=self
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setModal(False)
        box.show()

    def wait_idle(self, ms: int = 30000) -> None:
        if self.job is not None:
            self.job.wait(ms)

    def done(self, result: int) -> None:  # Close, Esc, accept: finish the running job first
        self._debounce.stop()
        self._pending_preview = False
        self.wait_idle()
        super().done(result)
        self._tmp.cleanup()

    def closeEvent(self, ev) -> None:  # noqa: N802
        self.wait_idle()
        super().closeEvent(ev)
        self._tmp.cleanup()
