"""Run a task on a resolved request: check, infer, provenance, stage timings; the same for every
adapter (MONAI Label's pre -> infer -> post, with each stage timed)."""

from __future__ import annotations

from datetime import UTC, datetime

from app.engine.adapter import (
    Adapter,
    AnalysisRequest,
    CancelFn,
    InputRejected,
    ProgressFn,
    StageTimer,
)
from app.engine.domain import NO_CALL_REASON, domain_check
from app.engine.runtime import available_device
from app.findings.types import DEMO_DISCLAIMER, AnalysisResult, Provenance


def input_record(request: AnalysisRequest) -> dict[str, dict]:
    """What each slot was filled with, for the provenance."""
    return {
        slot: {
            "series_uid": s.series_uid,
            "description": s.description,
            "modality": s.modality,
            "kind": s.kind,
            "origin": request.origins.get(slot, "auto"),
        }
        for slot, s in request.inputs.items()
    }


def tie_overlays_to_slots(adapter: Adapter, request: AnalysisRequest, overlays) -> None:
    """An overlay names the input it was computed on; the first input when the adapter is silent."""
    for ov in overlays:
        if not ov.slot:
            ov.slot = request.primary_slot
        elif ov.slot not in request.inputs:
            raise ValueError(
                f"{adapter.task_id}: overlay '{ov.name}' names input '{ov.slot}', which this "
                f"run does not have ({', '.join(request.inputs)})"
            )


def run_analysis(
    adapter: Adapter,
    request: AnalysisRequest,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> AnalysisResult:
    """Check the inputs, run the model(s) and return findings, overlays tied to their inputs and
    complete provenance. Raises InputRejected, AnalysisCancelled or WeightsError."""
    if request.task_id != adapter.task_id:
        raise InputRejected(f"request for {request.task_id} given to {adapter.task_id}")
    timer = StageTimer(progress, cancel)
    with timer.stage("check input", 0.0):
        adapter.check_input(request)
    # The model still runs outside its domain: the probabilities are kept for reference, greyed,
    # and no decision is taken on them (issue 14 item 5).
    with timer.stage("domain check", 0.0):  # the adapter reports its own fractions from 0
        domain = domain_check(adapter, request)
    output = adapter.infer(request, timer)
    timer.check_cancel()
    tie_overlays_to_slots(adapter, request, output.overlays)
    info = adapter.model_info()
    provenance = Provenance(
        task_id=adapter.task_id,
        model_name=info.model_name,
        model_version=info.version,
        weights_sha256=dict(info.weights_sha256),
        paper=adapter.paper,
        trained_on=info.trained_on,
        device=available_device(),
        disclaimer=DEMO_DISCLAIMER,
        timings_s=dict(timer.timings),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        inputs=input_record(request),
        domain_check=domain.to_json(),
    )
    no_call = "" if domain.in_domain else NO_CALL_REASON
    summary = output.summary
    if no_call:
        # the maps, boxes and masks of a run with no call are kept for reference but switched
        # off: drawn in colour on the film they would read as the calls the model did not make
        for overlay in output.overlays:
            overlay.visible = False
        summary = (
            f"{no_call[0].upper()}{no_call[1:]} (distance {_num(domain.distance)}, "
            f"threshold {_num(domain.threshold)}). Model output for reference only: {summary}"
        )
    if progress:
        progress("done", 1.0)
    return AnalysisResult(
        adapter.task_id,
        output.findings,
        output.overlays,
        provenance,
        summary,
        output.extra,
        no_call,
    )


def run_on_series(
    adapter: Adapter,
    series,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> AnalysisResult:
    """``run_analysis`` for a one-input task given its series (tests, benchmarks, evaluations)."""
    from app.analysis.request import single_input

    return run_analysis(adapter, single_input(adapter, series), progress, cancel)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"
