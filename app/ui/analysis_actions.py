"""The main window's analysis side: which tasks the open study can feed, which series fills each
input slot (the user may assign one, or load a mask), running a task, showing its result (one
view per input when it has several) and centring on a clicked finding.

A mixin of ``MainWindow``: it uses the window's ``layers``, ``view_area``, ``input_views``,
``findings`` panel, ``browser`` and status bar. The decisions (which inputs get a view, which
layers each view draws, where a finding points) are made in ``app.viewstate``.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets
from PySide6.QtCore import Qt

from app.findings.types import AnalysisResult, Finding, HeatmapOverlay
from app.study.model import LoadResult, Series, Study
from app.ui.findings_panel import NO_TASK
from app.ui.workers import AnalysisWorker, ExplainWorker, LoadWorker
from app.viewstate.inputs import input_panes, needs_side_by_side
from app.viewstate.regions import find_target

SERIES_ROLE = Qt.ItemDataRole.UserRole + 1


def _spec(task_id: str):
    from app.analysis.tasks import get_spec

    return get_spec(task_id)


class AnalysisActions:
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

    # ---- which series fills each slot ------------------------------------------------------
    def analysis_request(self, task_id: str, adapter=None, use_overrides: bool = True):
        """The inputs of ``task_id`` from the open study, the shown series first; the series the
        user assigned to a slot (``slot_overrides``) win. InputRejected says what is missing."""
        from app.analysis.request import resolve_inputs

        spec = adapter.spec if adapter is not None else _spec(task_id)
        loaded = self.load_result or LoadResult()
        if not any(s is self.series for s in loaded.all_series()):
            loaded = LoadResult([Study("", series=[self.series])])
        overrides = dict(self.slot_overrides.get(task_id, {})) if use_overrides else {}
        return resolve_inputs(
            spec, loaded, self.study_path, adapter=adapter, overrides=overrides, prefer=self.series
        )

    def assign_to_slot(self, task_id: str, slot: str, series: Series | None) -> None:
        """Use ``series`` as ``task_id``'s input ``slot`` (None: choose automatically again)."""
        chosen = self.slot_overrides.setdefault(task_id, {})
        if series is None:
            chosen.pop(slot, None)
            self.statusBar().showMessage(f"{task_id}: {slot} is chosen automatically", 8000)
        else:
            for other in [s for s, v in chosen.items() if v is series and s != slot]:
                chosen.pop(other)  # one series fills one slot
            chosen[slot] = series
            name = series.description or series.modality or series.series_uid
            self.statusBar().showMessage(f"{task_id}: {name} will be used as {slot}", 8000)
        if not chosen:
            self.slot_overrides.pop(task_id, None)
        self.update_task_choice()

    def slot_menu(self, series: Series) -> QtWidgets.QMenu:
        """ "Use as" for ``series``: the current task's slots (every task's when no task can run
        yet: assigning a series may be what makes one runnable)."""
        menu = QtWidgets.QMenu("Use as", self)
        current = self.findings.current_task()
        tasks = [current] if current else self.available_task_ids()
        for task_id in tasks:
            try:
                spec = _spec(task_id)
            except Exception:  # noqa: BLE001 - a task whose declaration went away
                continue
            target = menu if len(tasks) == 1 else menu.addMenu(task_id)
            chosen = self.slot_overrides.get(task_id, {})
            for slot in spec.slots:
                action = target.addAction(f"{slot.name}: {slot.description}")
                action.setCheckable(True)
                action.setChecked(chosen.get(slot.name) is series)
                action.triggered.connect(
                    lambda on, t=task_id, s=slot.name: self.assign_to_slot(
                        t, s, series if on else None
                    )
                )
        return menu

    def _on_browser_menu(self, pos) -> None:
        item = self.browser.itemAt(pos)
        series = item.data(SERIES_ROLE) if item is not None else None
        if series is None:
            return
        menu = QtWidgets.QMenu(self)
        menu.addMenu(self.slot_menu(series))
        menu.exec(self.browser.viewport().mapToGlobal(pos))

    # ---- loading a mask into a slot ----------------------------------------------------------
    def mask_slots(self, task_id: str) -> list[str]:
        try:
            return [s.name for s in _spec(task_id).slots if s.is_mask]
        except Exception:  # noqa: BLE001 - unknown task: no mask slots
            return []

    def _mask_target(self) -> tuple[str, str] | None:
        """(task, slot) a loaded mask goes to: the current task's mask slot, else the only task
        that has one; asks when there are several."""
        current = self.findings.current_task()
        tasks = [current] if self.mask_slots(current) else self.available_task_ids()
        choices = [f"{t}: {s}" for t in tasks for s in self.mask_slots(t)]
        if not choices:
            self.findings.show_message("No task here takes a mask as input.")
            return None
        choice = choices[0]
        if len(choices) > 1:
            choice, ok = QtWidgets.QInputDialog.getItem(
                self, "Load mask into slot", "Input slot:", choices, 0, False
            )
            if not ok:
                return None
        task, _, slot = choice.partition(": ")
        return task, slot

    def _load_mask_dialog(self) -> None:
        target = self._mask_target()
        if target is None:
            return
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, f"Load mask into {target[1]}", "", "Masks (*.png *.nii *.nii.gz *.dcm);;All (*)"
        )
        if path:
            self.load_mask_into_slot(path, *target)

    def load_mask_into_slot(self, path: str, task_id: str, slot: str) -> None:
        """Load a mask (PNG, NIfTI, DICOM) in a worker and assign it to ``task_id``'s ``slot``."""
        if self.mask_worker is not None and self.mask_worker.isRunning():
            self.mask_worker.cancel()
            self.mask_worker.wait()
        worker = LoadWorker(str(path), self)
        worker.loaded.connect(lambda result, _t: self._on_mask_loaded(path, task_id, slot, result))
        worker.failed.connect(lambda msg: self.findings.show_message(f"Mask not loaded: {msg}"))
        self.mask_worker = worker
        worker.start()

    def _on_mask_loaded(self, path: str, task_id: str, slot: str, loaded: LoadResult) -> None:
        series = loaded.all_series()
        if not series:
            why = "; ".join(e.reason for e in loaded.errors[:2]) or "no image in it"
            self.findings.show_message(f"Mask not loaded: {path}: {why}")
            return
        mask = series[0]
        problem = self._mask_mismatch(task_id, slot, mask)
        if problem:
            self.findings.show_message(f"Mask not used: {Path(path).name}: {problem}")
            return
        self.assign_to_slot(task_id, slot, mask)
        self.findings.show_message(f"{Path(path).name} will be used as {task_id}'s {slot}.")

    def _mask_mismatch(self, task_id: str, slot: str, mask: Series) -> str:
        """Why the mask cannot lie on its image's grid, or "" (also when the image is unknown)."""
        from app.engine.adapter import InputRejected

        try:
            image_slot = _spec(task_id).slot(slot).mask_of
            request = self.analysis_request(task_id)
        except (InputRejected, KeyError):
            return ""
        image = request.get(image_slot)
        if image is None or image is mask or mask.shape[-2:] == image.shape[-2:]:
            return ""
        rows, cols = mask.shape[-2:]
        irows, icols = image.shape[-2:]
        return (
            f"it is {cols}x{rows} pixels; the {image_slot} it lies on "
            f"({image.description or image.modality}) is {icols}x{irows}"
        )

    # ---- running --------------------------------------------------------------------------
    def run_task(self, task_id: str, adapter=None) -> None:
        if self.series is None:
            self.findings.show_message("Open a study first.")
            return
        if self.analysis_worker is not None and self.analysis_worker.isRunning():
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
            self.requests[id(result)] = worker.request
            self.result_adapters[id(result)] = worker.adapter  # None: the registered one
        self.findings.set_running(False)
        self.findings.stage_label.setText(f"{result.task_id}: done")
        self.apply_result(result, centroids)

    # ---- showing a result -------------------------------------------------------------------
    def result_panes(self, result: AnalysisResult) -> list:
        """The image inputs of ``result``'s request (masks are drawn on their image)."""
        request = self.requests.get(id(result))
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
        inputs = self.requests[id(result)].inputs if side_by_side else {}
        overlays = list(result.overlays) if side_by_side else self.overlays_for_shown(result)
        heatmaps = [ov for ov in overlays if isinstance(ov, HeatmapOverlay)]
        # one class map at a time (the panel chooses which): the adapter's pick, else the first
        shown_map = next((ov for ov in heatmaps if ov.visible), heatmaps[0] if heatmaps else None)
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
        request = self.requests.get(id(result))
        if request is None or self.series is None:
            return list(result.overlays)
        mine = {slot for slot, s in request.inputs.items() if s is self.series}
        return [ov for ov in result.overlays if not ov.slot or ov.slot in mine]

    def show_side_by_side(self, panes: list) -> None:
        self.input_views.show_panes(panes)
        self.central.setCurrentWidget(self.input_views)

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

    # ---- explaining a finding -------------------------------------------------------------
    def _adapter_of(self, result: AnalysisResult):
        adapter = self.result_adapters.get(id(result))
        if adapter is None:
            from app.analysis.tasks import get_adapter

            adapter = get_adapter(result.task_id)
        return adapter

    def _explain_methods(self, result: AnalysisResult) -> tuple[str, ...]:
        """The methods that can explain ``result``'s findings (none without the run's inputs)."""
        if id(result) not in self.requests:
            return ()
        adapter = self.result_adapters.get(id(result))
        if adapter is not None:
            return tuple(adapter.explain_methods)
        try:
            from app.analysis.tasks import adapter_class

            return tuple(adapter_class(result.task_id).explain_methods)
        except Exception:  # noqa: BLE001 - a task whose adapter went away explains nothing
            return ()

    def explain_finding(self, finding: Finding, method: str) -> None:
        """Explain ``finding`` of the shown result by ``method`` in a worker (progress, Cancel);
        the explanation's maps become layers on the views of their inputs."""
        result = self.result
        request = self.requests.get(id(result)) if result is not None else None
        if result is None or request is None:
            self.findings.show_message("Run the task first: an explanation needs its inputs.")
            return
        if self.is_busy():
            return
        from app.analysis.tasks import UnknownTask
        from app.engine.runtime import WeightsError

        try:
            adapter = self._adapter_of(result)
        except (UnknownTask, WeightsError) as exc:
            self.findings.show_message(f"Not explained: {exc}")
            return
        worker = ExplainWorker(adapter, request, result, finding, method, self)
        worker.progress.connect(self.findings.set_progress)
        worker.finished_overlays.connect(self._on_explained)
        worker.failed.connect(lambda msg: self._end_analysis(f"Not explained: {msg}"))
        worker.cancelled.connect(lambda: self._end_analysis("Explanation cancelled."))
        self.explain_worker = worker
        self._explained_result = result
        self._analysing = True
        self.findings.set_running(True, f"{result.task_id} {method} of {finding.label}")
        worker.start()

    def _on_explained(self, overlays: list, finding: Finding) -> None:
        self._analysing = False
        self.findings.set_running(False)
        result = self._explained_result
        if result is not self.result:
            self._end_analysis("The explained result is no longer shown; explain it again.")
            return
        inputs = self.requests[id(result)].inputs
        source = f"explain:{result.task_id}"
        names = {ov.name for ov in overlays}
        for layer in [la for la in self.layers if la.source == source and la.name in names]:
            self.layers.remove(layer.id)  # asked again: the new maps replace the old
        added = []
        for ov in overlays:
            series = inputs.get(ov.slot, self.series)
            added.append(self.layers.add_overlay(ov, source, series.image, series.series_uid))
        if any(la.kind == "heatmap" for la in added):
            for layer in self.layers.of_kind("heatmap"):  # one map at a time: the new one
                self.layers.set_visible(layer.id, layer in added)
        self.findings.stage_label.setText(f"{finding.label}: explained ({len(overlays)} maps)")
