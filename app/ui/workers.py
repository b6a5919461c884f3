"""Background work: loading studies and running analyses in QThreads, with progress and cancel.

The worker threads do all heavy lifting (decoding, inference, label centroids, thumbnails) so the
event loop only receives finished Python objects.
"""

from __future__ import annotations

import os
import threading
import time
import traceback

import numpy as np
from PySide6 import QtCore
from PySide6.QtCore import Signal

from app.engine.adapter import AnalysisRequest
from app.findings.types import AnalysisResult, LabelMapOverlay
from app.study.model import LoadResult, Series
from app.viewstate.layers import label_centroids
from app.viewstate.windowing import WindowLevel

THUMB = 96


def thumbnail(series: Series, size: int = THUMB) -> np.ndarray:
    """A small grey picture of the series' middle slice, through its default window."""
    arr = series.image.array
    mid = arr[arr.shape[0] // 2]
    if mid.ndim == 3:
        mid = mid.mean(axis=-1)
    step = max(1, int(np.ceil(max(mid.shape) / size)))
    small = mid[::step, ::step].astype(np.float32)
    c, w = series.default_window()
    return WindowLevel(c, w, series.invert).to_uint8(small)


def lower_thread_priority(niceness: int = 5) -> None:
    """Make the calling worker thread yield the CPU to the event loop (Linux: per-thread nice).

    Threads it starts (inference pools) inherit the value; elsewhere this is a no-op.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):
        pass


class _Throttle:
    """Pass on at most one progress report per interval (a report per file slows loading)."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval = interval_s
        self.last = 0.0

    def ready(self, final: bool = False) -> bool:
        now = time.monotonic()
        if final or now - self.last >= self.interval:
            self.last = now
            return True
        return False


def _expected_errors() -> tuple[type[BaseException], ...]:
    from app.errors import user_errors

    return user_errors()


class LoadWorker(QtCore.QThread):
    progress = Signal(int, int)
    loaded = Signal(object, object)  # LoadResult, {series_uid: thumbnail}
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, path: str, parent=None) -> None:
        super().__init__(parent)
        self.path = path
        self._cancel = threading.Event()
        self._throttle = _Throttle()

    def cancel(self) -> None:
        self._cancel.set()

    def _report(self, done: int, total: int) -> None:
        if self._throttle.ready(done >= total):
            self.progress.emit(int(done), int(total))

    def run(self) -> None:
        from app.study.model import LoadCancelled, StudyLoadError

        lower_thread_priority()
        try:
            from app.study import load  # the loader lands in app.study (Foundation I)

            result: LoadResult = load(self.path, progress=self._report, cancel=self._cancel.is_set)
            if self._cancel.is_set():
                raise LoadCancelled("cancelled")
            thumbs = {s.series_uid: thumbnail(s) for s in result.all_series()}
        except LoadCancelled:
            self.cancelled.emit()
            return
        except StudyLoadError as exc:
            self.failed.emit(str(exc))
            return
        except ImportError as exc:
            self.failed.emit(f"{self.path}: the study loader is not available ({exc})")
            return
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a crash
            traceback.print_exc()
            self.failed.emit(f"{self.path}: {type(exc).__name__}: {exc}")
            return
        self.loaded.emit(result, thumbs)


def prepare_result(result: AnalysisResult) -> dict[str, dict]:
    """Work done off the event loop once a result arrives: label centroids per label-map name."""
    out: dict[str, dict] = {}
    for ov in result.overlays:
        if isinstance(ov, LabelMapOverlay) and ov.image is not None:
            out[ov.name] = label_centroids(ov.image)
    return out


class AnalysisWorker(QtCore.QThread):
    progress = Signal(str, float)
    finished_result = Signal(object, object)  # AnalysisResult, centroids
    rejected = Signal(str)  # InputRejected: the model needs something else
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, request: AnalysisRequest, parent=None, adapter=None) -> None:
        super().__init__(parent)
        self.task_id = request.task_id
        self.request = request
        self.series = request.primary
        self.adapter = adapter
        self._cancel = threading.Event()
        self._throttle = _Throttle(0.03)
        self._stage = ""

    def cancel(self) -> None:
        self._cancel.set()

    def _report(self, stage: str, fraction: float) -> None:
        if stage != self._stage or self._throttle.ready(fraction >= 1.0):
            self._stage = stage
            self.progress.emit(stage, float(fraction))

    def run(self) -> None:
        from app.engine.adapter import AnalysisCancelled, InputRejected

        lower_thread_priority()
        try:
            adapter = self.adapter
            if adapter is None:
                from app.analysis.tasks import get_adapter

                adapter = get_adapter(self.task_id)
            from app.analysis.runner import run_analysis

            result = run_analysis(
                adapter, self.request, progress=self._report, cancel=self._cancel.is_set
            )
            if self._cancel.is_set():
                raise AnalysisCancelled("cancelled")
            self.progress.emit("preparing overlays", 1.0)
            extra = prepare_result(result)
        except AnalysisCancelled:
            self.cancelled.emit()
            return
        except InputRejected as exc:
            self.rejected.emit(str(exc))
            return
        except _expected_errors() as exc:  # missing weights, unknown task: a message suffices
            self.failed.emit(f"{self.task_id}: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a crash
            traceback.print_exc()
            self.failed.emit(f"{self.task_id}: {type(exc).__name__}: {exc}")
            return
        self.finished_result.emit(result, extra)


class ExplainWorker(QtCore.QThread):
    """Explains one finding by one method (``app.analysis.explain``) off the event loop: SHAP
    runs the model hundreds of times, so it reports progress and stops at Cancel."""

    progress = Signal(str, float)
    finished_overlays = Signal(object, object)  # list[Overlay], Finding
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, adapter, request: AnalysisRequest, result: AnalysisResult, finding,
                 method: str, parent=None) -> None:  # fmt: skip
        super().__init__(parent)
        self.adapter = adapter
        self.request = request
        self.result = result
        self.finding = finding
        self.method = method
        self._cancel = threading.Event()
        self._throttle = _Throttle(0.03)

    def cancel(self) -> None:
        self._cancel.set()

    def _report(self, stage: str, fraction: float) -> None:
        if self._throttle.ready(fraction >= 1.0):
            self.progress.emit(stage, float(fraction))

    def run(self) -> None:
        from app.analysis.explain_child import explain_anywhere
        from app.engine.adapter import AnalysisCancelled, ExplainUnavailable

        lower_thread_priority()
        try:
            # in the child warmed at start-up (app/ui/warmup.py) when there is one
            overlays = explain_anywhere(self.adapter, self.request, self.result, self.finding,
                                        self.method, progress=self._report,
                                        cancel=self._cancel.is_set)  # fmt: skip
        except AnalysisCancelled:
            self.cancelled.emit()
            return
        except ExplainUnavailable as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a crash
            traceback.print_exc()
            self.failed.emit(f"{self.method}: {type(exc).__name__}: {exc}")
            return
        self.finished_overlays.emit(overlays, self.finding)
