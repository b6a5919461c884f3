"""The mask editor's file and task actions: save as NIfTI or DICOM SEG, import a SEG, and re-run
the task on the edited mask with the findings before and after side by side.

Saving never clears the undo history (``History.mark_saved`` only remembers the revision) and
tells the journal, so recovery does not offer what the saved file holds.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets
from PySide6.QtCore import Qt

from app.editing.export import import_seg, save_nifti, save_seg
from app.editing.rerun import compare, with_edited_mask


class EditorFiles:
    def __init__(self, ui) -> None:
        self.ui = ui
        self.window = ui.window
        self.compare_table: QtWidgets.QTableWidget | None = None
        self.before = None  # the result the re-run started from

    def add_actions(self, menu) -> list:
        a = self.ui._action
        out = [
            a(menu, "Save mask as &NIfTI...", lambda: self.save_dialog("nifti")),
            a(menu, "Save mask as DICOM &SEG...", lambda: self.save_dialog("seg")),
            a(menu, "&Re-run task on edited mask", self.rerun),
        ]
        menu.addSeparator()
        a(menu, "Import DICOM SE&G...", self.import_dialog)  # also with no mask being edited
        return out

    # ---- saving -----------------------------------------------------------------------
    def save_dialog(self, kind: str) -> None:
        suffix = "NIfTI (*.nii.gz)" if kind == "nifti" else "DICOM SEG (*.dcm)"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self.window, "Save mask", "", suffix)
        if path:
            self.save(Path(path), kind)

    def save(self, path: Path, kind: str) -> Path | None:
        ui = self.ui
        if ui.editor is None:
            return None
        try:
            if kind == "nifti":
                out = save_nifti(ui.editor.overlay, path)
            else:
                series = ui._series_of(ui.layer)
                edited = ui.editor.history.edited or ui.layer.source == "user"
                out = save_seg(ui.editor.overlay, series, path, edited=edited)
        except (OSError, ValueError) as exc:  # the edits stay in memory and in the journal
            self.window.statusBar().showMessage(f"Mask not saved: {exc}", 30000)
            return None
        ui.editor.history.mark_saved()
        if ui.journal is not None:
            ui.journal.mark_saved()
        self.window.statusBar().showMessage(f"Mask saved to {out}", 8000)
        return out

    # ---- importing --------------------------------------------------------------------
    def import_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self.window, "Import DICOM SEG", "",
                                                        "DICOM SEG (*.dcm);;All files (*)")  # fmt: skip
        if path:
            self.import_seg(Path(path))

    def import_seg(self, path: Path):
        series = self.window.series
        if series is None:
            return None
        try:
            overlay = import_seg(path, series)
        except Exception as exc:  # noqa: BLE001 - any unreadable SEG is one message, not a crash
            self.window.statusBar().showMessage(f"{path.name}: not imported ({exc})", 30000)
            return None
        layer = self.window.layers.add_overlay(overlay, "user", series.image, series.series_uid)
        self.window.statusBar().showMessage(f"Imported {overlay.name} from {path.name}", 8000)
        return layer

    # ---- re-run on the corrected mask -------------------------------------------------
    def rerun(self) -> bool:
        """Run the task whose output is being edited again, its mask slot filled by the edited
        layer. The edited layer becomes the user's (a re-run replaces the task's layers)."""
        from app.analysis.tasks import get_spec
        from app.ui.workers import AnalysisWorker

        ui, win = self.ui, self.window
        result = win.result
        request = win.request_of_result.get(id(result)) if result is not None else None
        if ui.editor is None or request is None:
            win.statusBar().showMessage("Re-run: analyse the study first, then edit its mask", 8000)
            return False
        adapter = win.result_adapters.get(id(result))
        spec = adapter.spec if adapter is not None else get_spec(result.task_id)
        try:
            edited = with_edited_mask(spec, request, ui.editor.overlay)
        except ValueError as exc:
            win.statusBar().showMessage(f"Re-run: {exc}", 10000)
            return False
        if win.analysis_worker is not None and win.analysis_worker.isRunning():
            return False
        ui.layer.source = "user"  # kept when the run replaces the task's layers
        if not ui.layer.overlay.name.endswith("(edited)"):
            ui.layer.overlay.name = f"{ui.layer.overlay.name} (edited)"
        self.before = result
        worker = AnalysisWorker(edited, win, adapter=adapter)
        worker.progress.connect(win.findings.set_progress)
        worker.finished_result.connect(win._on_result)
        worker.finished_result.connect(self._show_compare)
        worker.rejected.connect(lambda msg: win._end_analysis(f"Not analysed: {msg}"))
        worker.failed.connect(lambda msg: win._end_analysis(f"Analysis failed: {msg}"))
        worker.cancelled.connect(lambda: win._end_analysis("Analysis cancelled."))
        win.analysis_worker = worker
        win._analysed_series = win.series
        win._analysing = True
        win.findings.set_running(True, result.task_id)
        worker.start()
        return True

    def _show_compare(self, after, _centroids=None) -> None:
        if self.before is None:
            return
        rows = compare(self.before, after)
        table = self._table()
        table.setRowCount(len(rows))
        for n, row in enumerate(rows):
            cells = [row.label, _p(row.before), _p(row.after),
                     "" if row.delta is None else f"{row.delta:+.3f}"]  # fmt: skip
            for c, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                table.setItem(n, c, item)
        table.parentWidget().show()

    def _table(self) -> QtWidgets.QTableWidget:
        if self.compare_table is None:
            table = QtWidgets.QTableWidget(0, 4)
            table.setHorizontalHeaderLabels(["finding", "before", "after (edited mask)", "change"])
            table.horizontalHeader().setStretchLastSection(True)
            dock = QtWidgets.QDockWidget("Before / after the mask edit", self.window)
            dock.setObjectName("mask_compare_dock")
            dock.setWidget(table)
            self.window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
            self.compare_table = table
        return self.compare_table


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
