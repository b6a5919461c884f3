"""Compressed pixel data decoded in child processes, so that no file can end the viewer.

GDCM and other native codecs abort the whole process (an uncaught C++ exception is SIGABRT) on
some malformed code streams, and a hostile file can also make a decoder loop or allocate
without end. Header checks (``codestream``) catch the known cases with a clear reason; this
pool is the guarantee for the rest: each compressed file is decoded by one of a few long-lived
children (fresh interpreters, not forks: the viewer has Qt threads), and a child that dies or
runs past its time limit is attributed to the file it was decoding, reported as that file's
error and replaced. Two children decode alternately, so a stack still decodes in parallel.
Paths go in and arrays come back as ``app.ipc`` frames, never pickles: a child taken over by a
code stream could send anything, and a malformed answer is that file's error, like a crash.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Iterator
from multiprocessing.connection import Connection

import numpy as np

from app import ipc

POOL_SIZE = max(1, min(2, os.cpu_count() or 1))
BASE_TIMEOUT_S = 4.0  # a hanging decoder is given up on after this, plus PER_MB_S per MB
PER_MB_S = 0.5
MAX_TIMEOUT_S = 120.0
# The limit counts the child's CPU time, not wall time: on a busy machine (a batch beside the
# viewer, a training run) decoding one slice can take many wall seconds without anything being
# wrong, and a slice given up on would silently leave a gap in the series. A decoder that loops
# burns CPU and still meets the limit; one that sleeps or waits is caught by the wall-time cap.
WALL_FACTOR = 10.0
MIN_WALL_S = 60.0
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
IN_PROCESS_ENV = "OSTEOVIEW_DECODE_IN_PROCESS"  # "1": decode in this process (benchmarks only)

Outcome = tuple[str, np.ndarray | str]  # ("ok", array) or ("error", reason)


def timeout_for(n_bytes: int) -> float:
    """Time for decoding ``n_bytes`` of declared pixels (a header may claim any size)."""
    return min(BASE_TIMEOUT_S + PER_MB_S * n_bytes / 1e6, MAX_TIMEOUT_S)


def in_process() -> bool:
    return os.environ.get(IN_PROCESS_ENV, "") == "1"


def decode_here(path: str) -> Outcome:
    """Decode ``path`` in this process; every failure becomes ("error", reason)."""
    from app.study.dicom_decode import decode_file
    from app.study.dicom_values import os_reason

    try:
        return ("ok", decode_file(path))
    except ValueError as exc:
        return ("error", str(exc))
    except MemoryError:
        return ("error", "not enough memory to decode the pixel data")
    except OSError as exc:
        return ("error", os_reason(exc))
    except Exception as exc:  # noqa: BLE001 - any other failure is this file's reason
        return ("error", f"pixel data could not be decoded ({type(exc).__name__}: {exc})")


def serve(rx: Connection, tx: Connection) -> None:
    """Child main (``decode_child``): decode paths until the parent closes the pipe. A message
    that is not a path ends the child (the parent reports a crash; nothing else is read)."""
    while True:
        try:
            kind, body, _ = ipc.recv(rx)
            if kind != "decode":
                return
            path = ipc.text(body, "path")
        except (EOFError, OSError, ipc.ProtocolError):
            return
        status, value = decode_here(path)
        try:
            if status == "ok":
                ipc.send(tx, "ok", arrays=[value])
            else:
                ipc.send(tx, "error", {"reason": value})
        except (BrokenPipeError, EOFError):
            return
        except Exception as exc:  # noqa: BLE001 - e.g. MemoryError copying the array
            why = f"decoded pixels could not be passed back ({type(exc).__name__})"
            ipc.send(tx, "error", {"reason": why})


def read_outcome(rx: Connection) -> Outcome:
    """The child's answer: ("ok", array) or ("error", reason); ProtocolError for anything
    else (a child taken over by a hostile file may send anything)."""
    kind, body, arrays = ipc.recv(rx, part_timeout=MIN_WALL_S)
    if kind == "ok" and len(arrays) == 1 and not body:
        return ("ok", arrays[0])
    if kind == "error" and not arrays:
        return ("error", ipc.text(body, "reason"))
    raise ipc.ProtocolError(f"unexpected answer {kind!r} with {len(arrays)} arrays")


class _Worker:
    """One child: ``python -m app.study.decode_child``, ``app.ipc`` frames over its stdin/stdout
    (never pickle: the child reads hostile files, and its answer must not be able to run code).

    A plain subprocess rather than multiprocessing: spawn and forkserver re-import the
    caller's ``__main__``, which re-runs any script that loads at import time."""

    def __init__(self) -> None:
        self.proc, self.tx, self.rx = ipc.spawn_python_child("app.study.decode_child")

    def submit(self, path: str) -> None:
        self.cpu_at_submit = self.cpu_seconds()
        ipc.send(self.tx, "decode", {"path": path})

    def cpu_seconds(self) -> float | None:
        """The child's CPU time so far (Linux /proc), or None where it cannot be read."""
        try:
            with open(f"/proc/{self.proc.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
        except (OSError, IndexError, ValueError):
            return None

    def _answered(self, timeout: float) -> bool:
        """Wait until the child answers; False once it has used ``timeout`` s of CPU on this
        job (or, where CPU time is unknown, of wall time), or the wall-time cap has passed."""
        cpu0 = getattr(self, "cpu_at_submit", None)
        if cpu0 is None or self.cpu_seconds() is None:
            return self.rx.poll(timeout)
        waited, cap = 0.0, max(MIN_WALL_S, WALL_FACTOR * timeout)
        while waited < cap:
            if self.rx.poll(0.1):
                return True
            waited += 0.1
            cpu = self.cpu_seconds()
            if cpu is not None and cpu - cpu0 > timeout:
                return self.rx.poll(0)
        return False

    def outcome(self, timeout: float) -> tuple[Outcome, bool]:
        """(outcome, alive): the child's answer, or the reason it gave none."""
        try:
            if self._answered(timeout):
                return read_outcome(self.rx), True
        except ipc.ProtocolError as exc:
            self.stop()
            return ("error", f"the image decoder sent back a malformed answer ({exc})"), False
        except (EOFError, OSError):
            try:
                code = self.proc.wait(2.0)
            except subprocess.TimeoutExpired:
                code = None
            self.stop()
            if code is not None and code < 0:
                try:
                    how = signal.Signals(-code).name
                except ValueError:
                    how = f"signal {-code}"
            else:
                how = f"exit status {code}"
            return ("error", f"the image decoder crashed on this file's pixel data ({how})"), False
        self.stop()
        return ("error", f"the image decoder did not finish within {timeout:.0f} s"), False

    def stop(self) -> None:
        ipc.end_child(self.proc, self.tx, self.rx)


class DecodePool:
    """A few decoder children; ``decode_many`` keeps each busy with one file at a time."""

    def __init__(self, size: int = POOL_SIZE) -> None:
        self.size = size
        self._pid = os.getpid()
        self._idle: list[_Worker] = []
        self._lock = threading.RLock()  # re-entered when a file is asked for out of plan

    def _take(self) -> _Worker | None:
        if self._idle:
            return self._idle.pop()
        try:
            return _Worker()
        except OSError:
            # No child possible here (no processes or pipes left): decode in this process
            # rather than refuse every compressed file.
            return None

    def warm(self) -> None:
        """Start the children now (they import while the caller reads headers); no waiting."""
        if not self._lock.acquire(blocking=False):
            return  # busy decoding: already warm
        try:
            while len(self._idle) < self.size:
                try:
                    self._idle.append(_Worker())
                except OSError:
                    return  # decode_many falls back to decoding in process
        finally:
            self._lock.release()

    def decode_many(self, jobs: list[tuple[str, float]]) -> Iterator[tuple[str, Outcome]]:
        """(path, outcome) for each (path, timeout) job, in order, up to ``size`` in flight."""
        with self._lock:
            queue = deque(jobs)
            flight: deque[tuple[_Worker | None, str, float]] = deque()
            try:
                while queue or flight:
                    while queue and len(flight) < self.size:
                        path, timeout = queue.popleft()
                        worker = self._take()
                        if worker is not None:
                            worker.submit(path)
                        flight.append((worker, path, timeout))
                    worker, path, timeout = flight.popleft()
                    if worker is None:
                        yield path, decode_here(path)
                        continue
                    outcome, alive = worker.outcome(timeout)
                    if alive:
                        self._idle.append(worker)
                    yield path, outcome
            finally:  # abandoned early (cancel, error): answers still due are collected
                for worker, _path, timeout in flight:
                    if worker is None:
                        continue
                    _outcome, alive = worker.outcome(timeout)
                    if alive:
                        self._idle.append(worker)

    def close(self) -> None:
        if os.getpid() != self._pid:
            return  # inherited by a fork: the children belong to the parent
        with self._lock:
            for worker in self._idle:
                worker.stop()
            self._idle.clear()


_pool: DecodePool | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def warm() -> None:
    """Start the decoder children ahead of need (nothing when decoding in process)."""
    if not in_process():
        pool().warm()


def pool() -> DecodePool:
    """This process's pool. A forked process (a training data loader) gets its own: the
    parent's children and pipes are the parent's, and sharing them would mix answers."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool, _pool_pid = DecodePool(), os.getpid()
            atexit.register(_pool.close)
        return _pool
