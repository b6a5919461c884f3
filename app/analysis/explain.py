"""Explanations as their own step: asked for per finding, run with progress and Cancel, cached.

A method such as SHAP runs the model hundreds of times, so it is never part of ``run_analysis``;
the viewer's "Explain" and the CLI's ``--explain`` call ``explain`` for the findings they want.
Results are cached by (weights sha256, input hash, finding, method): asking twice costs nothing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from app.analysis.runner import tie_overlays_to_slots
from app.engine.adapter import (
    Adapter,
    AnalysisRequest,
    CancelFn,
    ExplainUnavailable,
    ProgressFn,
    StageTimer,
)
from app.findings.types import AnalysisResult, Finding, Overlay


def finding_key(finding: Finding) -> str:
    return "|".join((finding.side, finding.group, finding.label, finding.region_id))


class ExplanationCache:
    """A small LRU of explanation overlays, shared by the viewer's workers (thread-safe)."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple, list[Overlay]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> list[Overlay] | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item

    def put(self, key: tuple, overlays: list[Overlay]) -> None:
        with self._lock:
            self._items[key] = overlays
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


DEFAULT_CACHE = ExplanationCache()


def cache_key(adapter: Adapter, request: AnalysisRequest, finding: Finding, method: str) -> tuple:
    weights = tuple(sorted(adapter.model_info().weights_sha256.items()))
    return (adapter.task_id, weights, request.input_hash(), finding_key(finding), method)


def explain(
    adapter: Adapter,
    request: AnalysisRequest,
    result: AnalysisResult,
    finding: Finding,
    method: str,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    cache: ExplanationCache | None = DEFAULT_CACHE,
) -> list[Overlay]:
    """Overlays explaining ``finding`` by ``method`` (one of ``adapter.explain_methods``), tied to
    the inputs they were computed on. Raises ExplainUnavailable or AnalysisCancelled."""
    if method not in adapter.explain_methods:
        have = ", ".join(adapter.explain_methods) or "none"
        raise ExplainUnavailable(f"{adapter.title} cannot explain by '{method}' (it has: {have})")
    key = cache_key(adapter, request, finding, method) if cache is not None else None
    if key is not None and (hit := cache.get(key)) is not None:
        if progress:
            progress("explained (cached)", 1.0)
        return hit
    timer = StageTimer(progress, cancel)
    overlays = adapter.explain(request, result, finding, method, timer)
    timer.check_cancel()
    tie_overlays_to_slots(adapter, request, overlays)
    if key is not None:
        cache.put(key, overlays)
    if progress:
        progress("explained", 1.0)
    return overlays


# ---- explaining a finished run (CLI --explain) ---------------------------------------------
def explain_positives(
    adapter: Adapter,
    request: AnalysisRequest,
    result: AnalysisResult,
    methods: tuple[str, ...] | list[str],
    progress: Callable[[str, float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list:
    """Explain the positive findings (the most probable top-level one when none is) by
    ``methods`` ("all": every method the task has) and add the maps to ``result.overlays``, so
    findings.json and the report carry them; the explaining maps are moved to the front of the
    list, so the report's key images show them first. A positive finding under a negative
    parent (a femur's "normal" type when it is not fractured) is not explained: it is the detail
    of a negative call. What was explained, and what could not be and why, is recorded in
    ``result.extra["explanations"]``. Returns the overlays added."""
    # imported here: only --explain needs the explain step
    from app.analysis.explain import explain
    from app.engine.adapter import ExplainUnavailable

    wanted = list(adapter.explain_methods) if "all" in methods else list(dict.fromkeys(methods))
    # outside the training domain no finding is called positive: explain the top one only;
    # a called normal class ("no fracture") is not a finding to explain
    chosen = [
        f
        for f in result.findings
        if not result.no_call and f.positive and not f.normal_class and _parent_positive(result, f)
    ]
    if not chosen and result.findings:
        top = [f for f in result.findings if not f.parent] or result.findings
        chosen = [max(top, key=lambda f: f.probability)]
    records: list[dict] = result.extra.setdefault("explanations", [])
    added: list = []
    shown: list = []  # every overlay explaining a chosen finding, in the order explained
    jobs = [(f, m) for f in chosen for m in wanted]
    for n, (finding, method) in enumerate(jobs):
        who = f"{finding.side} {finding.label}".strip()
        record = {"finding": who, "method": method}
        t0 = time.perf_counter()

        def step(stage: str, fraction: float, n: int = n, who: str = who, m: str = method) -> None:
            if progress:
                progress(f"explain {who} by {m}: {stage}", (n + fraction) / len(jobs))

        try:
            overlays = explain(adapter, request, result, finding, method, step, cancel)
        except ExplainUnavailable as exc:
            record["unavailable"] = str(exc)
            records.append(record)
            continue
        for ov in overlays:
            if all(ov is not o for o in result.overlays):  # a CAM made by the run is there already
                result.overlays.append(ov)
                added.append(ov)
            if all(ov is not o for o in shown):
                shown.append(ov)
        record["overlays"] = [ov.name for ov in overlays]
        record["seconds"] = round(time.perf_counter() - t0, 3)
        records.append(record)
    # The maps asked for go first, per finding (its SHAP beside its CAM): the report's key
    # images take heatmaps in this order, up to its limit.
    rest = [o for o in result.overlays if all(o is not s for s in shown)]
    result.overlays[:] = shown + rest
    return added


def _parent_positive(result: AnalysisResult, finding) -> bool:
    """True when the finding has no parent finding, or its parent (same side) is positive."""
    parents = [
        f
        for f in result.findings
        if finding.parent and f.side == finding.side and finding.parent in (f.label, f.group)
    ]
    return not parents or any(p.positive for p in parents)


# ---- discovering studies ------------------------------------------------------------------------
