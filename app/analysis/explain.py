"""Explanations as their own step: asked for per finding, run with progress and Cancel, cached.

A method such as SHAP runs the model hundreds of times, so it is never part of ``run_analysis``;
the viewer's "Explain" and the CLI's ``--explain`` call ``explain`` for the findings they want.
Results are cached by (weights sha256, input hash, finding, method): asking twice costs nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

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
