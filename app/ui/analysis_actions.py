"""The main window's analysis side: which tasks the open study can feed, running a task, showing
its result (one view per input when it has several) and centring on a clicked finding. The slots'
inputs (``slot_actions``) and explanations (``explain_actions``) are mixins of their own.

A mixin of ``MainWindow``: it uses the window's ``layers``, ``view_area``, ``input_views``,
``findings`` panel, ``browser`` and status bar. The decisions (which inputs get a view, which
layers each view draws, where a finding points) are made in ``app.viewstate``.
"""

from __future__ import annotations

from app.findings.types import AnalysisResult, Finding, HeatmapOverlay
from app.ui.explain_actions import ExplainActions
from app.ui.findings_panel import NO_TASK
from app.ui.slot_actions import SlotActions
from app.ui.workers import AnalysisWorker
from app.viewstate.inputs import input_panes, needs_side_by_side
from app.viewstate.regions import find_target


class AnalysisActions(SlotActions, ExplainActions):
    """Mixin: everything between the findings panel, the analysis layer and the views."""

    # ---- which tasks the open study can feed ------------------------------------------
    def available_task_ids(self) -> list[str]:
        try:
            from app.analysis.tasks import available_tasks

            return available_tasks()
        except Exception:  # noqa: BLE001 - a broken registry must not stop the viewer
            return []

    def tasks_for_open_study(self) -> tuple[list[str], list[str]]:
        """(tasks whose inputs the open study fills, why each other task cannot run), from the
        metadata alone (``resolve_inputs`` without an adapter); the shown series first."""
        from app.engine.adapter import InputRejected

        if self.series is None:
            return [], ["Open a study first."]
        usable, reasons = [], []
        for task_id in self.available_task_ids():
            try:
                self.analysis_request(task_id)
            except InputRejected as exc:
                # the user's own assignment does not hide the task: running it says what is wrong
                if not self.slot_overrides.get(task_id) or not self._feeds(task_id):
                    reasons.append(f"{task_id}: {exc}")
                    continue
            except Exception as exc:  # noqa: BLE001 - one broken task must not hide the others
                reasons.append(f"{task_id}: {type(exc).__name__}: {exc}")
                continue
            usable.append(task_id)
        accepting = self._tasks_accepting_shown()
        usable.sort(key=lambda t: t not in accepting)  # a task the shown series feeds first
        return usable, reasons

    def _feeds(self, task_id: str) -> bool:
        """Whether the open study fills the task's slots without the user's assignments."""
        from app.engine.adapter import InputRejected

        try:
            self.analysis_request(task_id, use_overrides=False)
        except InputRejected:
            return False
        return True

    def _tasks_accepting_shown(self) -> list[str]:
        from app.analysis.tasks import tasks_accepting

        try:
            return tasks_accepting(self.series) if self.series is not None else []
        except Exception:  # noqa: BLE001 - a broken adapter module must not stop the viewer
            return []

    def update_task_choice(self) -> None:
        """The task box lists the tasks the open study can feed (preferring one the shown series
        fills); otherwise it says so, with the reasons on hover."""
        usable, reasons = self.tasks_for_open_study()
        current = self.findings.current_task()
        placeholder = NO_TASK if self.series is not None else "open a study"
        self.findings.set_tasks(usable, "\n".join(reasons), placeholder)
        if usable and current not in usable:
            self.findings.task_combo.setCurrentText(usable[0])

    def _refresh_tasks(self) -> None:
        tasks = self.available_task_ids()
        self.task_menu.clear()
        for task in tasks:
            self.task_menu.addAction(task, lambda t=task: self._choose_and_run(t))
        self.update_task_choice()

    def _choose_and_run(self, task: str) -> None:
        if task in self.findings.tasks:
            self.findings.task_combo.setCurrentText(task)
        self.run_task(task)

    # ---- running --------------------------------------------------------------------------
    def run_task(self, task_id: str, adapter=None) -> None:
        if self.series is None:
            self.findings.show_message("Open a study first.")
            return
        if self.analysis_worker is not None and self.analysis_worker.isRunning():
            return
        if adapter is None and self._rerun_on_edited_mask(task_id):
            return
        from app.analysis.tasks import UnknownTask
        from app.engine.adapter import InputRejected

        try:
            request = self.analysis_request(task_id, adapter)
        except (InputRejected, UnknownTask) as exc:
            self.findings.show_message(f"Not analysed: {exc}")
            return
        worker = AnalysisWorker(request, self, adapter=adapter)
        worker.progress.connect(self.findings.set_progress)
        worker.finished_result.connect(self._on_result)
        worker.rejected.connect(lambda msg: self._end_analysis(f"Not analysed: {msg}"))
        worker.failed.connect(lambda msg: self._end_analysis(f"Analysis failed: {msg}"))
        worker.cancelled.connect(lambda: self._end_analysis("Analysis cancelled."))
        self.analysis_worker = worker
        self._analysed_series = self.series  # the result belongs to what was on screen
        self._analysing = True
        self.findings.set_running(True, task_id)
        worker.start()

    def _rerun_on_edited_mask(self, task_id: str) -> bool:
        """Analyse while a mask of this task's result is being edited: the task reads the edited
        mask (as Mask > Re-run does), so pressing Analyse never drops a correction."""
        ui = getattr(self, "mask_editor", None)
        result = self.result
        if ui is None or ui.editor is None or result is None or result.task_id != task_id:
            return False
        from app.analysis.tasks import get_spec
        from app.editing.rerun import mask_slot_for

        if mask_slot_for(get_spec(task_id), ui.editor.overlay.slot) is None:
            return False
        return ui.files.rerun()

    def cancel_analysis(self) -> None:
        """Cancel: the analysis or the explanation that is running."""
        for worker in (self.analysis_worker, self.explain_worker):
            if worker is not None and worker.isRunning():
                worker.cancel()

    def _end_analysis(self, message: str) -> None:
        self._analysing = False
        self.findings.set_running(False)
        self.findings.stage_label.setText("")
        self.findings.show_message(message)

    def _on_result(self, result: AnalysisResult, centroids: dict) -> None:
        self._analysing = False
        worker = self.sender()
        if isinstance(worker, AnalysisWorker):
            if self._analysed_series is not self.series:
                self._end_analysis("The analysed series is no longer shown; run it again.")
                return
            self.request_of_result[id(result)] = worker.request
            self.result_adapters[id(result)] = worker.adapter  # None: the registered one
        self.findings.set_running(False)
        self.findings.stage_label.setText(f"{result.task_id}: done")
        self.apply_result(result, centroids)

    # ---- showing a result -------------------------------------------------------------------
    def result_panes(self, result: AnalysisResult) -> list:
        """The image inputs of ``result``'s request (masks are drawn on their image)."""
        request = self.request_of_result.get(id(result))
        if request is None:
            return []
        return input_panes(request.inputs, self.mask_slots(result.task_id))

    def apply_result(self, result: AnalysisResult, centroids: dict | None = None) -> None:
        """Show a result: findings in the panel, overlays as layers (a re-run replaces them);
        several image inputs are shown side by side, each with only its own overlays."""
        self.result = result
        if self.series is not None:
            runs = self.session_results.setdefault(self.series.series_uid, [])
            if not any(r is result for r in runs):
                runs.append(result)
        source = f"task:{result.task_id}"
        self.layers.clear(source)
        panes = self.result_panes(result)
        side_by_side = needs_side_by_side(panes)
        inputs = self.request_of_result[id(result)].inputs if side_by_side else {}
        overlays = list(result.overlays) if side_by_side else self.overlays_for_shown(result)
        heatmaps = [ov for ov in overlays if isinstance(ov, HeatmapOverlay)]
        # one class map at a time: the adapter's pick, or none (a click on a finding shows its
        # own); an adapter marks none when its maps should not be drawn unasked (calcaneus)
        shown_map = next((ov for ov in heatmaps if ov.visible), None)
        for ov in overlays:
            series = inputs.get(ov.slot, self.series)
            layer = self.layers.add_overlay(ov, source, series.image, series.series_uid)
            if layer.kind == "labelmap" and centroids and ov.name in centroids:
                layer._centroids = centroids[ov.name]
            if layer.kind == "heatmap":
                layer.visible = ov is shown_map
        if side_by_side:
            self.show_side_by_side(panes)
        else:
            self.show_single_layout()
        self.findings.show_result(result)
        self.findings.set_explain_methods(self._explain_methods(result))
        self.view_area.request_update()

    def overlays_for_shown(self, result: AnalysisResult) -> list:
        """The result's overlays computed on the series on screen: an overlay is drawn only on
        the input it belongs to (spine draws the AP masks on the AP view, not on the lateral)."""
        request = self.request_of_result.get(id(result))
        if request is None or self.series is None:
            return list(result.overlays)
        mine = {slot for slot, s in request.inputs.items() if s is self.series}
        return [ov for ov in result.overlays if not ov.slot or ov.slot in mine]

    def show_side_by_side(self, panes: list) -> None:
        if self.result is not None:  # the task's hanging protocol, unless the user chose
            self.input_views.layout_name = self.layout_actions.layout_for_result(
                self.result.task_id
            )
        self.input_views.show_panes(panes)
        self.central.setCurrentWidget(self.input_views)
        self.layout_actions.sync()  # the menu and the Layout button say what is shown

    def show_single_layout(self) -> None:
        """The normal layout: the shown series in the view area."""
        if self.central.currentWidget() is not self.view_area:
            self.central.setCurrentWidget(self.view_area)
            self.input_views.clear()

    @property
    def side_by_side(self) -> bool:
        return self.central.currentWidget() is self.input_views

    def visible_view_areas(self) -> list:
        """The view areas on screen: one, or one per input."""
        if self.side_by_side:
            return list(self.input_views.areas.values())
        return [self.view_area]

    def on_finding_clicked(self, finding: Finding) -> None:
        """Centre the view showing the finding's region on it; show the map explaining its class."""
        target = find_target(self.layers, finding.region_id)
        if target is not None:
            if self.side_by_side:
                self.input_views.centre_on(target.layer, target.world)
            else:
                self.view_area.centre_on(target.world)
            x, y, z = target.world
            where = target.layer.slot or "view"
            self.statusBar().showMessage(
                f"{finding.label}: {where} centred on {target.what} at "
                f"({x:.1f}, {y:.1f}, {z:.1f}) mm LPS",
                5000,
            )
        if any(
            isinstance(la.overlay, HeatmapOverlay) and la.overlay.label == finding.label
            for la in self.layers
        ):
            self.layers.show_only_heatmap(finding.label)
