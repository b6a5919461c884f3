"""Explanations in a long-lived child process, warmed up while the viewer starts.

SHAP needs ``shap`` (with numba, llvmlite, pandas, scikit-learn and matplotlib: ~4 s of imports)
and numba's compilation of shap's functions (10-25 s on this shared CPU) before its first map.
Done in a thread of the viewer, both hold the GIL for long stretches (extension modules
initialising, LLVM building its pass pipeline, seen with ``py-spy --gil``): the event loop
stalled 0.33-0.65 s, against 19 ms with the child and 16 ms with nothing warming up
(``tests/benchmarks/test_bench_warmup.py``, a 10 ms QTimer). shap compiles without numba's
on-disk cache (``cache=True`` is not set on its functions), so a child cannot pre-compile for
the viewer either. Instead the explaining itself runs in a child: ``python -m
app.analysis.explain_child`` imports shap and compiles at start-up (``shap_maps.warm_up`` in a
nice-19 thread), then explains on request, so the viewer never imports shap and its first
"Explain" finds a warm process.

Messages are ``app.ipc`` frames (JSON and raw arrays, never pickle) over the child's
stdin/stdout, as for the loader's decode children (a plain subprocess: spawn would re-import
the caller's ``__main__``). The request, result and finding go in (``app.engine.messages``,
``app.findings.serial``; a CT is a few MB, ~10 ms for the femur demo against ~28 ms pickled),
the overlays come back; progress comes back as it is made, Cancel goes in and is read before
each model batch. A frame that does not read ends that child (``ExplainChildError``). The
parent keeps the explanation cache, so asking twice costs nothing here either. Only a registered task's own adapter is explained there
(the child builds it from the task id); any other adapter, or a child that cannot start,
explains in this process.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import threading
import time
from multiprocessing.connection import Connection

from app import ipc
from app.analysis.explain import DEFAULT_CACHE, ExplanationCache, cache_key, explain
from app.engine.adapter import (
    Adapter,
    AnalysisCancelled,
    AnalysisRequest,
    CancelFn,
    ExplainUnavailable,
    ProgressFn,
)
from app.engine.messages import request_from_record, request_record
from app.findings.serial import (
    finding_from_json,
    finding_record,
    overlays_from_record,
    overlays_record,
    result_from_record,
    result_record,
)
from app.findings.types import AnalysisResult, Finding, Overlay

_PART_TIMEOUT_S = 60.0  # the overlays of a "done" follow its header at once


class ExplainChildError(RuntimeError):
    """The child ended or could not be reached; the message says how."""


def serve(rx: Connection, tx: Connection) -> None:
    """Child main: warm up, then explain requests until the parent closes the pipe. A frame
    that does not read ends the child (the stream is out of step; the parent reports it)."""
    from app.analysis.tasks import get_adapter

    ipc.send(tx, "ready", {"warm": _warm_up_idle()})
    adapters: dict[str, Adapter] = {}
    while True:
        try:
            kind, body, arrays = ipc.recv(rx)
        except (EOFError, OSError, ipc.ProtocolError):
            return
        if kind != "explain":
            continue  # a Cancel that arrived after its explanation finished
        cancelled = broken = False

        def cancel() -> bool:
            nonlocal cancelled, broken
            try:
                while not cancelled and rx.poll():
                    cancelled = ipc.recv(rx)[0] == "cancel"
            except (EOFError, OSError, ipc.ProtocolError):
                cancelled = broken = True  # the parent is gone or out of step: stop here
            return cancelled

        def progress(stage: str, fraction: float) -> None:
            ipc.send(tx, "progress", {"stage": stage, "fraction": float(fraction)})

        table = ipc.ArrayTable()
        try:
            task_id, request, result, finding, method = explain_from_record(body, arrays)
            adapter = adapters.get(task_id) or adapters.setdefault(task_id, get_adapter(task_id))
            overlays = explain(adapter, request, result, finding, method, progress, cancel,
                               cache=None)  # fmt: skip
            answer = ("done", {"overlays": overlays_record(overlays, table)})
        except AnalysisCancelled:
            answer = ("cancelled", {})
        except ExplainUnavailable as exc:
            answer = ("unavailable", {"message": str(exc)})
        except Exception as exc:  # noqa: BLE001 - reported to the parent, never a dead child
            answer = ("error", {"message": f"{type(exc).__name__}: {exc}"})
        if broken:
            return
        try:
            ipc.send(tx, *answer, arrays=table.arrays)
        except (BrokenPipeError, EOFError, OSError):
            return


def explain_record(task_id: str, request: AnalysisRequest, result: AnalysisResult,
                   finding: Finding, method: str) -> tuple[dict, list]:  # fmt: skip
    """The body and arrays of an "explain" message: one array table for the request and the
    result, so a CT that is both an input and a box overlay's grid is sent once."""
    table = ipc.ArrayTable()
    body = {"task_id": task_id, "method": method, "request": request_record(request, table),
            "result": result_record(result, table), "finding": finding_record(finding)}  # fmt: skip
    return body, table.arrays


def explain_from_record(
    body: dict, arrays: list
) -> tuple[str, AnalysisRequest, AnalysisResult, Finding, str]:
    return (
        ipc.text(body, "task_id"),
        request_from_record(ipc.mapping(body, "request"), arrays),
        result_from_record(ipc.mapping(body, "result"), arrays),
        finding_from_json(ipc.mapping(body, "finding")),
        ipc.text(body, "method"),
    )


def _warm_up_idle() -> float | str:
    """``shap_maps.warm_up`` and the adapters' imports in a thread at the lowest priority
    (Linux nice is per thread; it cannot be raised again, so the explaining thread keeps its
    own): the viewer gets the CPU first while the child warms up. Returns the seconds taken, or
    why it failed (the first request will say it again)."""
    out: list[float | str] = []

    def run() -> None:
        from app.engine.shap_maps import warm_up

        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        t0 = time.perf_counter()
        try:
            warm_up()
            _import_adapters()
            out.append(time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            out.append(f"warm-up failed: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=run, name="shap-warm-up")
    thread.start()
    thread.join()
    return out[0] if out else "warm-up failed"


def _import_adapters() -> None:
    """Import ONNX Runtime and every task's adapter module now: the first request would
    otherwise pay for discovering the tasks (1.8 s here)."""
    import onnxruntime  # noqa: F401

    from app.analysis.tasks import adapter_class, task_ids

    for task_id in task_ids():
        try:
            adapter_class(task_id)
        except Exception:  # noqa: BLE001 - a task whose code does not import is not explained
            pass


class ExplainChild:
    """The parent's handle on one child; one explanation at a time (the viewer asks for one)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self._tx: Connection | None = None
        self._rx: Connection | None = None
        self._lock = threading.Lock()
        self.warm: float | str | None = None  # warm-up seconds (or why it failed) once ready

    def start(self) -> None:
        """Start the child if it is not running (returns at once; it warms up on its own)."""
        with self._lock:
            if self.proc is None or self.proc.poll() is not None:
                self._spawn()

    def _spawn(self) -> None:
        self.proc, self._tx, self._rx = ipc.spawn_python_child("app.analysis.explain_child")
        self.warm = None

    def wait_ready(self, timeout: float) -> bool:
        """Block until the child has warmed up (True), or ``timeout`` s have passed."""
        with self._lock:
            if self.warm is None and self._rx is not None:
                try:
                    if self._rx.poll(timeout):
                        self.warm = self._ready()
                except ipc.ProtocolError:
                    self._stop()  # out of step: the next explanation starts a new child
                    return False
                except (EOFError, OSError):
                    return False
            return self.warm is not None

    def explain(
        self,
        task_id: str,
        request: AnalysisRequest,
        result: AnalysisResult,
        finding: Finding,
        method: str,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> list[Overlay]:
        """``app.analysis.explain.explain`` of the registered ``task_id`` adapter, in the child.
        Raises AnalysisCancelled, ExplainUnavailable, or ExplainChildError (child gone)."""
        with self._lock:
            if self.proc is None or self.proc.poll() is not None:
                self._spawn()
            assert self._tx is not None and self._rx is not None
            try:
                # a child still warming up reads nothing: a request of a few MB would block
                # the send (and Cancel with it) until it is done
                self._until_ready(progress, cancel)
                body, arrays = explain_record(task_id, request, result, finding, method)
                ipc.send(self._tx, "explain", body, arrays)
                return self._answer(progress, cancel)
            except ipc.ProtocolError as exc:  # the child no longer speaks the format: ended
                self._stop()
                raise ExplainChildError(
                    f"the explanation process sent a bad message ({exc})"
                ) from exc
            except (EOFError, OSError) as exc:
                code = self.proc.poll() if self.proc is not None else None
                self._stop()
                why = f"exit status {code}" if code is not None else type(exc).__name__
                raise ExplainChildError(f"the explanation process ended ({why})") from exc

    def _until_ready(self, progress: ProgressFn | None, cancel: CancelFn | None) -> None:
        assert self._rx is not None
        if self.warm is None and progress is not None:
            progress("SHAP warming up", 0.0)
        while self.warm is None:
            if self._rx.poll(0.05):
                self.warm = self._ready()
            elif cancel is not None and cancel():
                raise AnalysisCancelled("explanation cancelled")
            elif self.proc is not None and self.proc.poll() is not None:
                raise EOFError

    def _answer(self, progress: ProgressFn | None, cancel: CancelFn | None) -> list[Overlay]:
        assert self._tx is not None and self._rx is not None
        asked_to_stop = False
        while True:
            if not self._rx.poll(0.05):
                if cancel is not None and not asked_to_stop and cancel():
                    ipc.send(self._tx, "cancel")
                    asked_to_stop = True
                if self.proc is not None and self.proc.poll() is not None:
                    raise EOFError
                continue
            kind, body, arrays = ipc.recv(self._rx, part_timeout=_PART_TIMEOUT_S)
            if kind == "progress":
                stage, fraction = ipc.text(body, "stage"), ipc.number(body, "fraction")
                if progress is not None:
                    progress(stage, fraction)
            elif kind == "done":
                return overlays_from_record(ipc.items(body, "overlays"), arrays)
            elif kind == "cancelled":
                raise AnalysisCancelled("explanation cancelled")
            elif kind == "unavailable":
                raise ExplainUnavailable(ipc.text(body, "message"))
            elif kind == "error":
                raise ExplainChildError(ipc.text(body, "message"))
            else:
                raise ipc.ProtocolError(f"unexpected message {kind!r}")

    def _ready(self) -> float | str:
        """The child's "ready" message: its warm-up seconds, or why the warm-up failed."""
        assert self._rx is not None
        kind, body, _ = ipc.recv(self._rx)
        warm = body.get("warm")
        if kind != "ready" or isinstance(warm, bool) or not isinstance(warm, float | int | str):
            raise ipc.ProtocolError(f"expected ready, got {kind!r}")
        return warm

    def _stop(self) -> None:
        ipc.end_child(self.proc, self._tx, self._rx)
        self.proc = self._tx = self._rx = None

    def stop(self) -> None:
        """End the child (the viewer quitting). An explanation under way ends with it: the
        child is killed before the lock is taken, so its reader sees the pipe close."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        with self._lock:
            self._stop()


_child: ExplainChild | None = None
_child_lock = threading.Lock()


def start_child() -> ExplainChild:
    """Start the process-wide child (the viewer, at start-up); later explanations use it."""
    global _child
    with _child_lock:
        if _child is None:
            _child = ExplainChild()
            atexit.register(_child.stop)
        _child.start()
        return _child


def running_child() -> ExplainChild | None:
    return _child


def explain_anywhere(
    adapter: Adapter,
    request: AnalysisRequest,
    result: AnalysisResult,
    finding: Finding,
    method: str,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    cache: ExplanationCache | None = DEFAULT_CACHE,
) -> list[Overlay]:
    """``explain``, in the warm child when ``start_child`` has started one and ``adapter`` is
    the registered adapter of its task; else in this process. Same cache, same answers."""
    child = _child
    # an unknown method is refused here, by explain, without a trip to the child
    if child is None or not _is_registered(adapter) or method not in adapter.explain_methods:
        return explain(adapter, request, result, finding, method, progress, cancel, cache)
    key = cache_key(adapter, request, finding, method) if cache is not None else None
    if key is not None and (hit := cache.get(key)) is not None:
        if progress:
            progress("explained (cached)", 1.0)
        return hit
    overlays = child.explain(adapter.task_id, request, result, finding, method, progress, cancel)
    if key is not None:
        cache.put(key, overlays)
    return overlays


def _is_registered(adapter: Adapter) -> bool:
    from app.analysis.tasks import adapter_class

    try:
        return type(adapter) is adapter_class(adapter.task_id)
    except Exception:  # noqa: BLE001 - an unregistered task explains in this process
        return False


def main() -> None:
    try:
        os.nice(5)  # as the in-process worker (lower_thread_priority): the viewer keeps a core
    except OSError:
        pass
    rx = Connection(os.dup(0), writable=False)
    tx = Connection(os.dup(1), readable=False)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # anything printed goes to stderr, not into the messages
    serve(rx, tx)


if __name__ == "__main__":
    main()
