"""Findings panel: choose a task, run it with per-stage progress and Cancel, read the findings as
bars with the threshold marked (grouped by side and hierarchy), the summary and the provenance
with the demo disclaimer in plain sight."""

from __future__ import annotations

import html

from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Qt, Signal

from app.findings.types import DEMO_DISCLAIMER, AnalysisResult, Finding

FINDING_ROLE = Qt.ItemDataRole.UserRole + 1
NO_TASK = "no task for this series"
NO_CALL_GREY = QtGui.QColor(140, 140, 140)  # a no-call result's probabilities and calls
ORIGIN_WORDS = {"auto": "chosen automatically", "user": "assigned by you", "edited": "edited"}


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


class ProbabilityBar(QtWidgets.QWidget):
    """A bar for one probability with a tick at the decision threshold."""

    def __init__(self, finding: Finding, parent=None, no_call: bool = False) -> None:
        super().__init__(parent)
        self.finding = finding
        self.no_call = no_call  # outside the training domain: drawn grey, no decision
        self.setMinimumSize(120, 18)
        call = "no call" if no_call else "positive" if finding.positive else "negative"
        self.setToolTip(
            f"p = {finding.probability:.3f}; threshold {finding.threshold:.2f} -> {call}"
        )

    def paintEvent(self, ev) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        r = self.rect().adjusted(1, 2, -1, -2)
        p.fillRect(r, QtGui.QColor(60, 60, 60))
        f = self.finding
        w = int(r.width() * min(max(f.probability, 0.0), 1.0))
        colour = QtGui.QColor(220, 70, 60) if f.positive else QtGui.QColor(70, 150, 220)
        if self.no_call:
            colour = NO_CALL_GREY
        p.fillRect(QtCore.QRect(r.left(), r.top(), w, r.height()), colour)
        tx = r.left() + int(r.width() * min(max(f.threshold, 0.0), 1.0))
        p.setPen(QtGui.QPen(QtGui.QColor(255, 255, 255), 2))
        p.drawLine(tx, r.top() - 2, tx, r.bottom() + 2)
        p.setPen(QtGui.QColor(255, 255, 255))
        p.drawText(r.adjusted(4, 0, -4, 0), Qt.AlignmentFlag.AlignVCenter, f"{f.probability:.2f}")
        p.end()


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
        layout.addWidget(self.summary)
        self.inputs = QtWidgets.QLabel("")  # which series filled each input slot
        self.inputs.setWordWrap(True)
        layout.addWidget(self.inputs)
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setHeaderLabels(["Finding", "Probability", "Call"])
        self.tree.setColumnWidth(0, 150)
        self.tree.setColumnWidth(1, 150)
        self.tree.itemClicked.connect(self._on_item)
        layout.addWidget(self.tree, 1)
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
        self.provenance = QtWidgets.QLabel("")
        self.provenance.setWordWrap(True)
        self.provenance.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
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
        self.tree.clear()
        self.summary.setText("")
        self.inputs.setText("")
        self.provenance.setText("")

    def show_result(self, result: AnalysisResult) -> None:
        self.result = result
        self.tree.clear()
        text = result.summary or f"{result.task_id}: {len(result.findings)} findings"
        if result.no_call and result.no_call.lower() not in text.lower():
            text = f"{result.no_call[0].upper()}{result.no_call[1:]}. {text}"
        self.summary.setText(text)
        sides = sorted({f.side for f in result.findings})
        side_roots: dict[str, QtWidgets.QTreeWidget | QtWidgets.QTreeWidgetItem] = {}
        for side in sides:
            if side:
                item = QtWidgets.QTreeWidgetItem(self.tree, [f"{side.capitalize()} side"])
                item.setFirstColumnSpanned(True)
                side_roots[side] = item
            else:
                side_roots[side] = self.tree.invisibleRootItem()
        items: dict[tuple[str, str], QtWidgets.QTreeWidgetItem] = {}
        pending = list(result.findings)
        # parents first: a finding whose parent is not (yet) placed waits a round
        for _ in range(len(pending) + 1):
            waiting = []
            for f in pending:
                parent_key = (f.side, f.parent)
                if (
                    f.parent
                    and parent_key not in items
                    and any(g.label == f.parent and g.side == f.side for g in result.findings)
                ):
                    waiting.append(f)
                    continue
                parent = items.get(parent_key, side_roots[f.side])
                items[(f.side, f.label)] = self._add_finding(parent, f)
            pending = waiting
            if not pending:
                break
        self.tree.expandAll()
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

    def _add_finding(self, parent, f: Finding) -> QtWidgets.QTreeWidgetItem:
        label = f.label if not f.group else f"{f.label}  ({f.group})"
        no_call = bool(self.result is not None and self.result.no_call)
        call = "no call" if no_call else "positive" if f.positive else "-"
        item = QtWidgets.QTreeWidgetItem(parent, [label, "", call])
        item.setData(0, FINDING_ROLE, f)
        if f.region_id:
            item.setToolTip(0, "Click to centre the views on this region")
        if no_call:
            for col in (0, 2):
                item.setForeground(col, QtGui.QBrush(NO_CALL_GREY))
            item.setToolTip(2, self.result.no_call)
        self.tree.setItemWidget(item, 1, ProbabilityBar(f, no_call=no_call))
        return item

    def finding_items(self) -> list[QtWidgets.QTreeWidgetItem]:
        out = []
        it = QtWidgets.QTreeWidgetItemIterator(self.tree)
        while it.value():
            if it.value().data(0, FINDING_ROLE) is not None:
                out.append(it.value())
            it += 1
        return out

    def _on_item(self, item: QtWidgets.QTreeWidgetItem, column: int) -> None:
        f = item.data(0, FINDING_ROLE)
        self._sync_explain()
        if f is not None:
            self.finding_clicked.emit(f)
