"""Findings panel: choose a task, run it with per-stage progress and Cancel, read the summary and
the findings table (``findings_tree``: bars with the threshold marked, decisions in words,
sortable, filtered to abnormal findings on request), with the provenance folded under one click
and the demo disclaimer in plain sight."""

from __future__ import annotations

import html

from PySide6 import QtWidgets
from PySide6.QtCore import Qt, Signal

from app.findings.types import DEMO_DISCLAIMER, AnalysisResult, Finding
from app.ui.findings_tree import (  # noqa: F401  (re-exported: tests and callers use them here)
    FINDING_ROLE,
    NO_CALL_GREY,
    FindingsTree,
    ProbabilityBar,
)

NO_TASK = "no task for this series"
ORIGIN_WORDS = {"auto": "chosen automatically", "user": "assigned by you", "edited": "edited"}
METHOD_TITLES = {"shap": "SHAP", "cam": "CAM (class activation map)"}  # the context menu's words


def inputs_text(inputs: dict[str, dict]) -> str:
    """Which series filled each input slot (``Provenance.inputs``), as rich text."""
    rows = []
    for slot, rec in inputs.items():
        what = " ".join(p for p in (rec.get("modality", ""), rec.get("description", "")) if p)
        origin = ORIGIN_WORDS.get(rec.get("origin", ""), rec.get("origin", ""))
        rows.append(
            f"<b>{html.escape(slot)}</b>: {html.escape(what or rec.get('series_uid', ''))}"
            + (f" <i>({html.escape(origin)})</i>" if origin else "")
        )
    return "Inputs: " + "; ".join(rows) if rows else ""


class FindingsPanel(QtWidgets.QWidget):
    run_requested = Signal(str)
    cancel_requested = Signal()
    finding_clicked = Signal(object)  # Finding
    explain_requested = Signal(object, str)  # Finding, method

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        row = QtWidgets.QHBoxLayout()
        self.task_combo = QtWidgets.QComboBox()
        self.task_combo.setToolTip("Analysis task (one per paper)")
        self.run_button = QtWidgets.QPushButton("Analyse")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        row.addWidget(self.task_combo, 1)
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.stage_label = QtWidgets.QLabel("")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        layout.addWidget(self.stage_label)
        layout.addWidget(self.progress)
        self.message = QtWidgets.QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #e06c00; font-weight: bold;")
        self.message.setVisible(False)
        layout.addWidget(self.message)
        self.summary = QtWidgets.QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("font-weight: bold; font-size: 13px;")
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # a long summary (a no-call reason, a caveat) scrolls in a few lines: the table below
        # keeps the room
        self.summary_area = QtWidgets.QScrollArea()
        self.summary_area.setWidget(self.summary)
        self.summary_area.setWidgetResizable(True)
        self.summary_area.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.summary_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.summary_area.setMaximumHeight(5 * self.summary.fontMetrics().lineSpacing() + 12)
        self.summary_area.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Maximum
        )
        layout.addWidget(self.summary_area)
        self.inputs = QtWidgets.QLabel("")  # which series filled each input slot
        self.inputs.setWordWrap(True)
        layout.addWidget(self.inputs)
        self.abnormal_only = QtWidgets.QCheckBox("Abnormal findings only")
        self.abnormal_only.setToolTip("Hide the findings whose decision is normal")
        self.abnormal_only.toggled.connect(lambda on: self.tree.set_abnormal_only(on))
        layout.addWidget(self.abnormal_only)
        self.tree = FindingsTree()
        self.tree.itemClicked.connect(self._on_item)
        # right-click on a finding: "Explain by ..." for each method of its task (as the button)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._on_context_menu)
        layout.addWidget(self.tree, 1)  # the table takes the room the window gives
        # Explain the selected finding (a separate, slower step: SHAP runs the model many times)
        explain_row = QtWidgets.QHBoxLayout()
        self.explain_method = QtWidgets.QComboBox()
        self.explain_method.setToolTip("How to explain the selected finding")
        self.explain_button = QtWidgets.QPushButton("Explain")
        self.explain_button.setToolTip("Explain the selected finding (runs in the background)")
        self.explain_button.clicked.connect(self._on_explain)
        explain_row.addWidget(self.explain_method, 1)
        explain_row.addWidget(self.explain_button)
        layout.addLayout(explain_row)
        self.set_explain_methods(())
        # provenance folded under one button (collapsed: the table needs the room)
        self.provenance_toggle = QtWidgets.QToolButton()
        self.provenance_toggle.setText("Provenance")
        self.provenance_toggle.setCheckable(True)
        self.provenance_toggle.setChecked(False)
        self.provenance_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.provenance_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.provenance_toggle.setAutoRaise(True)
        self.provenance_toggle.setToolTip("Model, paper, training data, weights, timings")
        self.provenance_toggle.toggled.connect(self._show_provenance)
        layout.addWidget(self.provenance_toggle)
        self.provenance = QtWidgets.QLabel("")
        self.provenance.setWordWrap(True)
        self.provenance.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.provenance.setVisible(False)
        layout.addWidget(self.provenance)
        self.disclaimer = QtWidgets.QLabel(f"Demo weights: {DEMO_DISCLAIMER}.")
        self.disclaimer.setWordWrap(True)
        self.disclaimer.setStyleSheet("color: #d03030; font-weight: bold;")
        layout.addWidget(self.disclaimer)
        # long texts wrap inside the panel instead of widening the dock over the views
        for label in (self.stage_label, self.message, self.summary, self.inputs, self.provenance):
            label.setSizePolicy(
                QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred
            )
            label.setWordWrap(True)
        self.disclaimer.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Minimum
        )
        self.run_button.clicked.connect(self._on_run)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.result: AnalysisResult | None = None
        self.tasks: list[str] = []
        self._running_task = ""

    # ---- tasks -----------------------------------------------------------------------
    def set_tasks(self, tasks: list[str], why_none: str = "", placeholder: str = NO_TASK) -> None:
        """The tasks the open study can feed; none: "no task for this series", the reasons on
        hover, and Analyse disabled."""
        keep = self.task_combo.currentText()
        self.task_combo.blockSignals(True)
        self.task_combo.clear()
        self.tasks = list(tasks)
        if tasks:
            self.task_combo.addItems(tasks)
            if keep in tasks:
                self.task_combo.setCurrentText(keep)
            self.task_combo.setToolTip("Analysis task (one per paper)")
        else:
            self.task_combo.addItem(placeholder)
            self.task_combo.setToolTip(why_none or "No analysis task is available in this build.")
        self.task_combo.blockSignals(False)
        self.run_button.setEnabled(bool(tasks) and not self.cancel_button.isEnabled())
        self.run_button.setToolTip("" if tasks else self.task_combo.toolTip())

    def current_task(self) -> str:
        """The chosen task id, or "" when no task can run on the open study."""
        text = self.task_combo.currentText()
        return text if text in self.tasks else ""

    def _on_run(self) -> None:
        if self.current_task():
            self.run_requested.emit(self.current_task())

    # ---- run state ------------------------------------------------------------------
    def set_explain_methods(self, methods) -> None:
        """The result's task's explanation methods; none: the Explain row is hidden."""
        self.explain_method.clear()
        self.explain_method.addItems(list(methods))
        for widget in (self.explain_method, self.explain_button):
            widget.setVisible(bool(methods))
        self._sync_explain()

    def selected_finding(self) -> Finding | None:
        item = self.tree.currentItem()
        return item.data(0, FINDING_ROLE) if item is not None else None

    def _sync_explain(self) -> None:
        idle = not self.cancel_button.isEnabled()
        self.explain_button.setEnabled(
            idle and self.explain_method.count() > 0 and self.selected_finding() is not None
        )

    def explain_menu(self, finding: Finding) -> QtWidgets.QMenu | None:
        """A finding's context menu: one "Explain by <method>" per method the result's task has
        (none: no menu), disabled while a run or an explanation is under way."""
        methods = [self.explain_method.itemText(n) for n in range(self.explain_method.count())]
        if not methods:
            return None
        menu = QtWidgets.QMenu(self)
        idle = not self.cancel_button.isEnabled()
        for method in methods:
            action = menu.addAction(f"Explain by {METHOD_TITLES.get(method, method)}")
            action.setData(method)
            action.setEnabled(idle)
            action.triggered.connect(
                lambda _checked=False, m=method: self.explain_requested.emit(finding, m)
            )
        return menu

    def _on_context_menu(self, pos) -> None:
        item = self.tree.itemAt(pos)
        finding = item.data(0, FINDING_ROLE) if item is not None else None
        if finding is None:
            return
        self.tree.setCurrentItem(item)
        self._sync_explain()
        menu = self.explain_menu(finding)
        if menu is not None:
            menu.exec(self.tree.viewport().mapToGlobal(pos))
            menu.deleteLater()  # one menu per right-click: not kept for the panel's lifetime

    def _on_explain(self) -> None:
        finding = self.selected_finding()
        if finding is not None and self.explain_method.currentText():
            self.explain_requested.emit(finding, self.explain_method.currentText())

    def set_running(self, running: bool, task: str = "") -> None:
        self._running_task = task if running else ""
        self.run_button.setEnabled(not running and bool(self.tasks))
        self.cancel_button.setEnabled(running)
        self.task_combo.setEnabled(not running)
        self.progress.setVisible(running)
        if running:
            self.progress.setValue(0)
            self.stage_label.setText(f"{task}: starting")
            self.message.setVisible(False)
        self._sync_explain()

    def set_progress(self, stage: str, fraction: float) -> None:
        task = self._running_task or self.current_task()
        self.stage_label.setText(f"{task}: {stage} ({fraction:.0%})")
        self.progress.setValue(int(1000 * min(max(fraction, 0.0), 1.0)))

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(True)

    # ---- result ----------------------------------------------------------------------
    def clear_result(self) -> None:
        self.result = None
        self.set_explain_methods(())
        self.tree.set_result(None)
        self.summary.setText("")
        self.inputs.setText("")
        self.provenance.setText("")

    def show_result(self, result: AnalysisResult) -> None:
        self.result = result
        text = result.summary or f"{result.task_id}: {len(result.findings)} findings"
        if result.no_call and result.no_call.lower() not in text.lower():
            text = f"{result.no_call[0].upper()}{result.no_call[1:]}. {text}"
        self.summary.setText(text)
        self.tree.set_result(result)
        prov = result.provenance
        self.inputs.setText(inputs_text(prov.inputs))
        timings = ", ".join(f"{k} {v:.2f}s" for k, v in prov.timings_s.items())
        sha = ", ".join(f"{k}: {v[:12]}" for k, v in prov.weights_sha256.items())
        self.provenance.setText(
            f"<b>{prov.model_name}</b> {prov.model_version} on {prov.device}<br>"
            f"Paper: {prov.paper}<br>Trained on: {prov.trained_on}<br>"
            f"Weights sha256: {sha or 'n/a'}<br>Timings: {timings or 'n/a'}"
        )
        self.disclaimer.setText(f"Demo weights: {prov.disclaimer or DEMO_DISCLAIMER}.")

    def finding_items(self) -> list[QtWidgets.QTreeWidgetItem]:
        return self.tree.finding_items()

    def _show_provenance(self, shown: bool) -> None:
        self.provenance.setVisible(shown)
        self.provenance_toggle.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        )

    def _on_item(self, item: QtWidgets.QTreeWidgetItem, column: int) -> None:
        f = item.data(0, FINDING_ROLE)
        self._sync_explain()
        if f is not None:
            self.finding_clicked.emit(f)
