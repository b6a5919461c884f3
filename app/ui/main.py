"""OsteoView main window: series browser, view area, findings and layer panels, status bar.

``run_viewer(paths)`` is what ``osteoview [PATH]`` calls.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Qt

from app.findings.types import DEMO_DISCLAIMER, AnalysisResult
from app.study.model import LoadResult, Series
from app.ui.analysis_actions import AnalysisActions
from app.ui.findings_panel import FindingsPanel
from app.ui.impression_panel import ImpressionPanel
from app.ui.input_views import InputViews
from app.ui.layer_panel import LayerPanel
from app.ui.opening import OpeningActions
from app.ui.pacs_dialog import open_pacs_dialog
from app.ui.series_browser import SeriesBrowser, primary_series
from app.ui.slot_actions import SERIES_ROLE
from app.ui.state_actions import StateActions
from app.ui.view_area import ViewArea
from app.ui.view_keys import view_key
from app.ui.workers import AnalysisWorker, LoadWorker
from app.viewstate.layers import LayerList
from app.viewstate.state import ViewerState

__all__ = ["MainWindow", "primary_series", "run_viewer"]


class MainWindow(OpeningActions, AnalysisActions, StateActions, QtWidgets.QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("OsteoView")
        self.setAcceptDrops(True)
        # OSTEOVIEW_SETTINGS points tests (and portable installs) at an ini file of their own
        ini = os.environ.get("OSTEOVIEW_SETTINGS")
        self.settings = (
            QtCore.QSettings(ini, QtCore.QSettings.Format.IniFormat)
            if ini
            else QtCore.QSettings("OsteoView", "OsteoView")
        )
        self.layers = LayerList()
        self.load_result: LoadResult | None = None
        self.study_path = ""
        self.series: Series | None = None
        self.result: AnalysisResult | None = None
        self.load_worker: LoadWorker | None = None
        self.analysis_worker: AnalysisWorker | None = None
        self._loading = False
        self._analysing = False
        self.last_error = ""
        self._pending_state: ViewerState | None = None
        # every result of this session per series UID (the report lists them all)
        self.session_results: dict[str, list[AnalysisResult]] = {}
        # the request each result was computed from (its inputs by slot), by result identity
        self.request_of_result: dict[int, object] = {}
        # task id -> slot -> series the user assigned ("Use as" in the series browser)
        self.slot_overrides: dict[str, dict[str, Series]] = {}
        self.mask_worker: LoadWorker | None = None
        self.explain_worker = None  # ExplainWorker while a finding is being explained
        self.result_adapters: dict[int, object] = {}  # the adapter instance each result came from
        self._explained_result: AnalysisResult | None = None
        self._analysed_series: Series | None = None

        # the shown series, or (a result with several image inputs) one view per input
        self.view_area = ViewArea(self.layers, layer_filter=self._on_shown_series)
        self.input_views = InputViews(self.layers)
        self.central = QtWidgets.QStackedWidget()
        self.central.addWidget(self.view_area)
        self.central.addWidget(self.input_views)
        self.setCentralWidget(self.central)
        self.browser = SeriesBrowser()
        self.browser.currentItemChanged.connect(self._on_series_chosen)
        self.browser.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.browser.customContextMenuRequested.connect(self._on_browser_menu)
        self._dock("Series", self.browser, Qt.DockWidgetArea.LeftDockWidgetArea, 150)
        self.findings = FindingsPanel()
        self.layer_panel = LayerPanel(self.layers)
        self.impression = ImpressionPanel()
        self.impression.default_reader = str(self.settings.value("reader_name", "") or "")
        self.impression.error.connect(lambda msg: self.statusBar().showMessage(msg, 15000))
        self.impression.saved.connect(self._remember_reader)
        side = QtWidgets.QSplitter(Qt.Orientation.Vertical)
        side.addWidget(self.findings)
        side.addWidget(self.layer_panel)
        side.addWidget(self.impression)
        side.setSizes([450, 220, 200])
        self._dock("Findings", side, Qt.DockWidgetArea.RightDockWidgetArea, 360)

        self.findings.run_requested.connect(self.run_task)
        self.findings.cancel_requested.connect(self.cancel_analysis)
        self.findings.finding_clicked.connect(self.on_finding_clicked)
        self.findings.explain_requested.connect(self.explain_finding)
        self.view_area.status.connect(self._show_cursor)
        self.input_views.status.connect(self._show_cursor)

        self._build_status_bar()
        self._build_menus()
        from app.ui.editor_actions import install_mask_editor

        install_mask_editor(self)  # the Mask menu and toolbar: self.mask_editor
        from app.ui.measure_tools import install_measurements

        install_measurements(self)  # Measure menu and dock, W/L dialog, tags: self.measurements
        self._refresh_tasks()
        self.resize(1500, 900)
        from app.ui.viewer_habits import install_viewer_habits

        install_viewer_habits(self)  # layouts, link, cine, shortcut sheet, saved window state

    # ---- construction ----------------------------------------------------------------
    def _dock(self, title: str, widget, area, width: int) -> None:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
        widget.setMinimumWidth(width)
        self.addDockWidget(area, dock)
        self.resizeDocks([dock], [width], Qt.Orientation.Horizontal)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.cursor_label = QtWidgets.QLabel("")
        self.load_progress = QtWidgets.QProgressBar()
        self.load_progress.setMaximumWidth(200)
        self.load_progress.setVisible(False)
        self.load_cancel = QtWidgets.QPushButton("Cancel")
        self.load_cancel.setVisible(False)
        self.load_cancel.clicked.connect(self.cancel_load)
        bar.addWidget(self.cursor_label, 1)
        bar.addPermanentWidget(QtWidgets.QLabel(f"Demo weights: {DEMO_DISCLAIMER}"))
        bar.addPermanentWidget(self.load_progress)
        bar.addPermanentWidget(self.load_cancel)

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        m.addAction("&Open file...", QtGui.QKeySequence.StandardKey.Open, self._open_file_dialog)
        m.addAction("Open &folder...", self._open_folder_dialog)
        m.addAction("Open from &PACS...", lambda: open_pacs_dialog(self))
        self.recent_menu = m.addMenu("Open &recent")
        self._rebuild_recent()
        m.addAction("Overlay &ground truth", self.add_truth_layers)
        m.addAction("Load &mask into slot...", self._load_mask_dialog)
        m.addSeparator()
        m.addAction("&Save viewer state...", self._save_state_dialog)
        m.addAction("Restore viewer s&tate...", self._open_state_dialog)
        m.addAction("Save &screenshot...", self._save_screenshot_dialog)
        m.addAction("Export &report...", QtGui.QKeySequence("Ctrl+E"), self.export_report)
        m.addSeparator()
        m.addAction("&Quit", QtGui.QKeySequence.StandardKey.Quit, self.close)

        v = self.menuBar().addMenu("&View")
        self.preset_menu = v.addMenu("Window &presets")
        # the keys the views handle themselves, shown in the menu (app.ui.view_keys)
        invert = v.addAction(
            "&Invert", lambda: [a.toggle_invert() for a in self.visible_view_areas()]
        )
        view_key(invert, "I")
        view_key(
            v.addAction("&Reset", lambda: [a.reset() for a in self.visible_view_areas()]), "Space"
        )
        self.ruler_action = view_key(v.addAction("R&uler"), "R")
        self.ruler_action.setCheckable(True)
        self.ruler_action.toggled.connect(
            lambda on: [a.set_ruler_mode(on) for a in self.visible_view_areas()]
        )
        self.view_area.ruler_toggled.connect(self._sync_ruler_action)

        self.task_menu = self.menuBar().addMenu("&Task")
        h = self.menuBar().addMenu("&Help")
        h.addAction("&About", self._about)

    def _sync_ruler_action(self, on: bool) -> None:
        self.ruler_action.blockSignals(True)
        self.ruler_action.setChecked(on)
        self.ruler_action.blockSignals(False)

    def _rebuild_presets(self) -> None:
        self.preset_menu.clear()
        for n, name in enumerate(self.view_area.presets):
            c, w = self.view_area.presets[name]
            label = f"{name} (L {c:g} / W {w:g})"
            # each shown view takes the preset its own series has (side by side: both inputs)
            act = self.preset_menu.addAction(
                label, lambda nm=name: [a.apply_preset(nm) for a in self.visible_view_areas()]
            )
            if n < 9:  # the digit keys of the views
                view_key(act, str(n + 1))

    def is_busy(self) -> bool:
        """True from the request until its outcome has been shown (not just the thread's life:
        the worker's last signal is still queued when its thread ends)."""
        return (
            self._loading
            or self._analysing
            or any(
                w is not None and w.isRunning()
                for w in (self.load_worker, self.analysis_worker, self.explain_worker)
            )
        )

    def show_load_result(
        self, result: LoadResult, thumbs: dict | None = None, path: str = ""
    ) -> None:
        """Fill the browser and show the primary series (also used directly by screenshots)."""
        self.load_result = result
        self.study_path = path or self.study_path
        # results of series no longer loaded are let go (a long session keeps no stale volumes)
        loaded = {s.series_uid for s in result.all_series()}
        self.session_results = {k: v for k, v in self.session_results.items() if k in loaded}
        # the dock, report and saved state list this study's measurements; others' are kept
        self.measurements.set_scope(loaded)
        self.browser.blockSignals(True)
        self.browser.clear()
        first = primary_series(result)
        chosen_item = None
        for series in result.all_series():
            item = self.browser.add_series(series, (thumbs or {}).get(series.series_uid))
            if series is first:
                chosen_item = item
        if result.errors:  # the files that did not load, each with its reason
            self.browser.add_unreadable(result.errors)
        if first is not None:
            self.browser.setCurrentItem(chosen_item)
        self.browser.blockSignals(False)
        if first is not None:
            self.show_series(first)
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            self.apply_state(state)

    def _on_series_chosen(self, item, _previous=None) -> None:
        if item is not None:
            series = item.data(SERIES_ROLE)
            if series is not None and series is not self.series:
                self.show_series(series)

    def show_series(self, series: Series) -> None:
        study = self.study_of(series)
        # saves the previous series' draft, shows this one's saved draft
        self.impression.set_series(study.study_uid if study else "", series.series_uid)
        self.series = series
        self.result = None
        self.findings.clear_result()
        self.layers.clear()
        self.show_single_layout()
        self.update_task_choice()  # before the layout: the chosen task's protocol hangs it
        self.layout_actions.show_series(series)
        self._rebuild_presets()
        self.add_truth_layers(quiet=True)
        title = f"OsteoView - {series.modality} {series.description}"
        self.setWindowTitle(title)
        self.mask_editor.offer_recovery()  # unsaved mask edits a crash left on this series

    def _on_shown_series(self, layer) -> bool:
        """The single view draws the layers of the shown series (a loaded mask may lie on
        another series of the study) and layers tied to no series."""
        return not layer.series_uid or (
            self.series is not None and layer.series_uid == self.series.series_uid
        )

    def study_of(self, series: Series | None):
        if self.load_result is None or series is None:
            return None
        # identity, not ==: Series equality would compare pixel arrays
        studies = self.load_result.studies
        return next((st for st in studies if any(s is series for s in st.series)), None)

    def add_truth_layers(self, quiet: bool = False) -> int:
        """Ground truth written beside demo studies (truth.json) as layers: the shown series'
        and the other series' the layout shows beside it (app.ui.truth_layers)."""
        if self.series is None:
            return 0
        from app.ui.truth_layers import add_truth

        shown = [self.series, *(g.series for g in self.view_area.guests)]
        return sum(add_truth(self, s, quiet or n > 0) for n, s in enumerate(shown))

    def results_for(self, series: Series | None) -> list[AnalysisResult]:
        """This session's analysis results of ``series``, oldest first."""
        if series is None:
            return []
        return list(self.session_results.get(series.series_uid, []))

    def _remember_reader(self, _path: str = "") -> None:
        """The last reader's name fills the field of a new draft."""
        draft = self.impression.draft
        if draft is not None and draft.reader_name.strip():
            self.impression.default_reader = draft.reader_name.strip()
            self.settings.setValue("reader_name", self.impression.default_reader)

    def make_report_dialog(self):
        """The export dialog for the shown series (views captured now, on the GUI thread)."""
        from app.ui.report_dialog import ReportDialog, collect_report_input

        inp = collect_report_input(self)
        folder = str(self.settings.value("report_dir", "") or Path.home())
        stem = (self.series.description or self.series.modality or "report").strip()
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:40] or "report"
        dialog = ReportDialog(inp, str(Path(folder) / f"{stem}-report.pdf"), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.report_saved.connect(
            lambda p: self.settings.setValue("report_dir", str(Path(p).parent))
        )
        return dialog

    def export_report(self) -> None:
        if self.series is None:
            QtWidgets.QMessageBox.information(self, "Export report", "Open a study first.")
            return
        dialog = self.make_report_dialog()
        dialog.open()
        dialog.refresh_preview()

    def _show_cursor(self, text: str) -> None:
        self.cursor_label.setText(text)

    def _about(self) -> None:
        QtWidgets.QMessageBox.about(
            self,
            "OsteoView",
            "OsteoView: radiographs, CT and MR with AI predictions.\n"
            f"Demo weights: {DEMO_DISCLAIMER}.",
        )

    # ---- closing --------------------------------------------------------------------------
    def confirm_close(self) -> bool:
        """Asked when work is running; tests replace this."""
        answer = QtWidgets.QMessageBox.question(
            self,
            "Work in progress",
            "A study is loading or being analysed. Stop it and close?",
        )
        return answer == QtWidgets.QMessageBox.StandardButton.Yes

    def closeEvent(self, ev) -> None:  # noqa: N802
        if self.is_busy() and not self.confirm_close():
            ev.ignore()
            return
        workers = (self.load_worker, self.analysis_worker, self.mask_worker, self.explain_worker)
        for worker in workers:
            if worker is not None and worker.isRunning():
                worker.cancel()
                worker.wait(10000)
        self._loading = self._analysing = False
        self.impression.flush()  # the draft is never lost
        self.mask_editor.close()  # mask edits: journals flushed (kept until saved)
        from app.ui.report_dialog import ReportDialog

        for dialog in self.findChildren(ReportDialog):
            dialog.wait_idle()  # a report being written finishes before its thread is destroyed
        self.view_area.shutdown()
        self.input_views.shutdown()
        ev.accept()


def run_viewer(paths: list[str]) -> int:
    app = QtWidgets.QApplication.instance()
    if app is None:
        has_screen = any(
            os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
        )
        if not has_screen and sys.platform.startswith("linux"):
            print(
                "osteoview: no display to open the viewer on (DISPLAY is not set); "
                "`osteoview screenshot PATH --out FILE.png` renders it headless",
                file=sys.stderr,
            )
            return 2
        app = QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("OsteoView")
    window = MainWindow()
    window.show()
    from app.ui.warmup import start_warm_up

    start_warm_up(app)  # SHAP imported and compiled in a child while the reader starts
    if paths:
        window.open_path(paths[0])
    return int(app.exec())
