"""Explaining a finding of the shown result: ``app.analysis.explain`` in a worker thread with
progress and Cancel (SHAP runs the model hundreds of times); the maps become layers on the view
of the input they were computed on. A mixin of ``MainWindow``."""

from __future__ import annotations

from dataclasses import replace

from app.findings.types import AnalysisResult, Finding
from app.ui.workers import ExplainWorker


class ExplainActions:
    """Mixin: the findings panel's Explain."""

    # ---- explaining a finding -------------------------------------------------------------
    def _adapter_of(self, result: AnalysisResult):
        adapter = self.result_adapters.get(id(result))
        if adapter is None:
            from app.analysis.tasks import get_adapter

            adapter = get_adapter(result.task_id)
        return adapter

    def _explain_methods(self, result: AnalysisResult) -> tuple[str, ...]:
        """The methods that can explain ``result``'s findings (none without the run's inputs)."""
        if id(result) not in self.request_of_result:
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
        request = self.request_of_result.get(id(result)) if result is not None else None
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
        inputs = self.request_of_result[id(result)].inputs
        source = f"explain:{result.task_id}"
        names = {ov.name for ov in overlays}
        for layer in [la for la in self.layers if la.source == source and la.name in names]:
            self.layers.remove(layer.id)  # asked again: the new maps replace the old
        added = []
        for ov in overlays:
            series = inputs.get(ov.slot, self.series)
            added.append(self.layers.add_overlay(ov, source, series.image, series.series_uid))
        by_result = self._explanation_maps()
        kept = [ov for ov in by_result.get(id(result), []) if ov.name not in names]
        by_result[id(result)] = list(overlays) + kept
        if any(la.kind == "heatmap" for la in added):
            for layer in self.layers.of_kind("heatmap"):  # one map at a time: the new one
                self.layers.set_visible(layer.id, layer in added)
        self.findings.stage_label.setText(f"{finding.label}: explained ({len(overlays)} maps)")

    def _explanation_maps(self) -> dict[int, list]:
        """The maps explaining each result (by id, as ``request_of_result``), newest first."""
        if not hasattr(self, "_explained_maps"):
            self._explained_maps: dict[int, list] = {}
        return self._explained_maps

    def result_with_explanations(self, result: AnalysisResult) -> AnalysisResult:
        """``result`` with the maps explaining it that are still layers put first and shown, as
        the CLI's ``--explain`` puts them: the report's key images then include them (a 3-D map
        cut through its peak). The result itself is left as the run made it."""
        present = {id(layer.overlay) for layer in self.layers}
        maps = [
            replace(ov, visible=True)
            for ov in self._explanation_maps().get(id(result), [])
            if id(ov) in present
        ]
        return replace(result, overlays=maps + list(result.overlays)) if maps else result
