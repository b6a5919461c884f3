"""Autosave: every edit journaled to a sidecar workspace, off the UI thread; crash recovery.

Workspace: ``$OSTEOVIEW_WORKSPACE_DIR`` or ``$XDG_DATA_HOME/osteoview/workspaces`` (default
``~/.local/share/...``), one folder per study+series (a hash of the two UIDs), one sub-folder per
edited layer holding ``meta.json`` (name, labels, geometry), ``base.zlib`` (the map when editing
began) and one record per change, ``00000001-do.npz`` / ``-undo`` / ``-redo`` / ``-saved``: the
change's sparse diff (a few KB), appended and never rewritten. Each file is written under a
temporary name and renamed, so a SIGKILL leaves whole records or none.

The UI thread only puts (kind, diff) on a queue: the diff's arrays are never changed after the
stroke ends, so nothing is copied there. A writer thread writes them at once (the 1 s promise
is the queue's wait), snapshots the base map slice by slice (so the GIL is never held long) and,
when a write fails, reports through ``on_error`` and keeps the record queued to retry: the edits
are in memory either way.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.editing.history import Diff, History
from app.findings.types import LabelMapOverlay

RETRY_S = 1.0
BASE_FILE = "base.zlib"
_STOP = object()
ErrorFn = Callable[[str], None]


def workspace_root() -> Path:
    override = os.environ.get("OSTEOVIEW_WORKSPACE_DIR")
    if override:
        return Path(override)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "osteoview" / "workspaces"


def series_dir(study_uid: str, series_uid: str, root: Path | None = None) -> Path:
    digest = hashlib.sha256(f"{study_uid}\0{series_uid}".encode()).hexdigest()[:20]
    return (root or workspace_root()) / digest


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


class Journal:
    """Append-only journal of one layer's edits (see the module doc)."""

    def __init__(
        self,
        history: History,
        overlay: LabelMapOverlay,
        study_uid: str,
        series_uid: str,
        source: str = "",
        on_error: ErrorFn | None = None,
        root: Path | None = None,
        folder: Path | None = None,
    ) -> None:
        self.history = history
        self._overlay = overlay
        self.on_error = on_error
        self.folder = folder or series_dir(study_uid, series_uid, root) / (
            f"{_safe(overlay.name)}-{uuid.uuid4().hex[:8]}"
        )
        resumed = folder is not None and (folder / BASE_FILE).exists()
        self._seq = max((_seq_of(p) for p in self.folder.glob("*.npz")), default=0)
        self._queue: queue.Queue = queue.Queue()
        self._failed: list[tuple] = []
        self.written = 0  # records on disk (tests and the status bar)
        self.last_error = ""
        self._meta = {
            "name": overlay.name,
            "labels": {str(v): [n, list(c)] for v, (n, c) in overlay.labels.items()},
            "study_uid": study_uid,
            "series_uid": series_uid,
            "source": source,
            "slot": overlay.slot,
            "shape": list(overlay.image.shape),
            "dtype": str(overlay.image.array.dtype),
            "spacing": list(overlay.image.spacing),
            "origin": overlay.image.origin.tolist(),
            "direction": overlay.image.direction.tolist(),
            "created": time.time(),
        }
        self._thread = threading.Thread(target=self._run, name="osteoview-journal", daemon=True)
        if not resumed:
            self._queue.put(("base", None))
        history.subscribe(self._on_change)
        self._thread.start()

    # ---- UI thread ----------------------------------------------------------
    def _on_change(self, kind: str, diff: Diff) -> None:
        self._seq += 1
        self._queue.put((self._seq, kind, diff, self.history.revision, self._labels()))

    def _labels(self) -> str:
        """The label table now (a label chosen mid-session must come back with its name)."""
        return json.dumps({str(v): [n, list(c)] for v, (n, c) in self._overlay.labels.items()})

    def mark_saved(self) -> None:
        """The user saved: recovery need not offer what is in the saved file."""
        self._seq += 1
        self._queue.put((self._seq, "saved", None, self.history.revision, self._labels()))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued is on disk (True) or the timeout passes."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._queue.unfinished_tasks == 0 and not self._failed:
                return True
            time.sleep(0.01)
        return False

    def close(self, discard: bool = False) -> None:
        """Stop the writer; ``discard`` also deletes the workspace (after a save, or when the
        user chose to throw the edits away)."""
        self.flush()
        self._queue.put(_STOP)
        self._thread.join(timeout=5.0)
        if discard:
            shutil.rmtree(self.folder, ignore_errors=True)

    # ---- writer thread ------------------------------------------------------
    def _run(self) -> None:
        _lower_priority()
        while True:
            try:
                item = self._queue.get(timeout=RETRY_S if self._failed else None)
            except queue.Empty:
                self._retry()
                continue
            try:
                if item is _STOP:
                    return
                self._retry()
                if item[0] == "base":
                    self._write_base()
                else:
                    self._write_record(*item)
            except OSError as exc:
                if item is not _STOP and item[0] == "base":
                    self._failed.insert(0, ("base",))  # type: ignore[arg-type]
                elif item is not _STOP:
                    self._failed.append(item)
                self._report(exc)
            finally:
                self._queue.task_done()

    def _retry(self) -> None:
        while self._failed:
            item = self._failed[0]
            try:
                self._write_base() if item[0] == "base" else self._write_record(*item)
            except OSError as exc:
                self._report(exc)
                return
            self._failed.pop(0)

    def _report(self, exc: OSError) -> None:
        self.last_error = f"Autosave failed ({exc.strerror or exc}); edits kept in memory"
        if self.on_error:
            self.on_error(self.last_error)

    def _write_base(self) -> None:
        """The map as it is now, compressed slice by slice (each slice's copy holds the GIL for
        microseconds; zlib releases it while compressing). The UI may paint meanwhile: the
        snapshot is stamped with the revision at its start and every change after that start
        is replayed over it, and since every change writes absolute values the voxels it
        caught half-painted end up right."""
        self.folder.mkdir(parents=True, exist_ok=True)
        data = self.history.data
        rev = self.history.revision

        def write(path: Path) -> None:
            comp = zlib.compressobj(1)
            with open(path, "wb") as fh:
                for k in range(data.shape[0]):
                    fh.write(comp.compress(data[k].tobytes()))
                fh.write(comp.flush())

        meta = dict(self._meta, base_revision=rev, dtype=str(data.dtype))
        _atomic_write(self.folder / BASE_FILE, write)
        _atomic_write(self.folder / "meta.json", lambda p: p.write_text(json.dumps(meta)))
        self.written += 1

    def _write_record(
        self, seq: int, kind: str, diff: Diff | None, revision: int, labels: str
    ) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        arrays = diff.arrays() if diff is not None else {}
        arrays["labels"] = np.array(labels)
        rev = np.array([revision])
        path = self.folder / f"{seq:08d}-{kind}.npz"
        _atomic_write(path, lambda p: _save_npz(p, revision=rev, **arrays))
        self.written += 1


def read_base(folder: Path, meta: dict) -> np.ndarray:
    raw = zlib.decompress((folder / BASE_FILE).read_bytes())
    return np.frombuffer(raw, dtype=np.dtype(meta["dtype"])).reshape(meta["shape"]).copy()


def _lower_priority(niceness: int = 10) -> None:
    """The writer yields the CPU to the UI thread (Linux nices threads one by one): compressing
    the base snapshot on a busy two-core machine must not make the brush lag."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):
        pass  # not on this platform, or not permitted: the writer still works


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:40] or "layer"


def _seq_of(path: Path) -> int:
    head = path.name.split("-", 1)[0]
    return int(head) if head.isdigit() else 0
