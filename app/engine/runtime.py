"""ONNX Runtime sessions: weights verified before ONNX Runtime sees them, sessions cached per file.

A manifest (``manifest.json`` beside the weights) describes the model::

    {"model_name": "...", "version": "...", "trained_on": "...",
     "files": {"stage1.onnx": {"sha256": "..."}},
     "config": {"name": "demo", ...}, "metrics": {...}}

(the one schema, checked by ``app/engine/manifest_schema.py``).

A manifest cannot vouch for the weights beside it: whoever can change a weights file can change
the manifest too. So a task pins the sha256 of each file it ships in its code
(``models/<task>/weights_digest.py``, reviewed with the code), and ``OnnxAdapter`` passes those
pins here; the manifest's digests then serve only as metadata. A manifest loaded without pins
(training and evaluation of weights just exported) is checked against itself only.

Each file is read once, hashed, and its session opened from those very bytes (never by reopening
the path, which another process could swap in between); later lookups reuse the session without
hashing again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.engine.device import choose_device, on_cuda, run_bound
from app.engine.manifest_schema import validate_manifest


class WeightsError(Exception):
    """Missing weights, a sha256 mismatch or an unreadable manifest; names the file."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Manifest:
    folder: Path
    data: dict
    # file name -> sha256 pinned in the task's code; None: trust the manifest (not for shipping)
    pinned: Mapping[str, str] | None = None

    @classmethod
    def load(cls, folder: Path, pinned: Mapping[str, str] | None = None) -> Manifest:
        path = Path(folder) / "manifest.json"
        if not path.is_file():
            raise WeightsError(f"{path}: weights manifest is missing")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WeightsError(f"{path}: unreadable manifest ({exc})") from exc
        validate_manifest(data, path)
        return cls(Path(folder), data, None if pinned is None else dict(pinned))

    def expected_sha256(self, name: str) -> str:
        """The digest ``name`` must have: the pinned one when pins were given."""
        path = self.folder / name
        entry = self.data["files"].get(name)
        if entry is None:
            raise WeightsError(f"{path}: not listed in {self.folder / 'manifest.json'}")
        if self.pinned is not None:
            pin = self.pinned.get(name)
            if not pin:
                raise WeightsError(
                    f"{path}: no sha256 is pinned for it in the task's code (weights_digest.py); "
                    "refusing to load weights nobody reviewed"
                )
            return pin
        return str((entry.get("sha256") if isinstance(entry, dict) else "") or "")

    def verified_bytes(self, name: str) -> bytes:
        """The file's bytes, read once and checked against the expected sha256."""
        expected = self.expected_sha256(name)
        path = self.folder / name
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise WeightsError(f"{path}: weights file is missing") from exc
        except OSError as exc:
            raise WeightsError(f"{path}: cannot read the weights ({exc.strerror or exc})") from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected:
            where = "pinned in the task's code" if self.pinned is not None else "in the manifest"
            raise WeightsError(
                f"{path}: sha256 {digest[:12]}... does not match the one {where} "
                f"({expected[:12]}...); refusing to load modified weights"
            )
        return data

    def verified_path(self, name: str) -> Path:
        """The path of a file whose contents check out (for tools that need a path)."""
        self.verified_bytes(name)
        return self.folder / name

    def sha256s(self) -> dict[str, str]:
        """The digests a run's provenance records: the pinned ones when pins were given."""
        listed = {
            k: (v.get("sha256", "") if isinstance(v, dict) else "")
            for k, v in self.data["files"].items()
        }
        if self.pinned is None:
            return listed
        return {k: self.pinned.get(k, "") for k in listed}


_sessions: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


def available_device() -> str:
    """What a run's provenance records: "CUDA", or "CPU (why not CUDA)" (``app.engine.device``)."""
    return choose_device().describe()


def intra_op_threads() -> int:
    """Threads per session: ``OSTEOVIEW_THREADS`` when set; else every core this process may
    use, less one on a machine with two to four, so the viewer's UI thread and the loader keep a
    core while a model runs (ONNX Runtime would otherwise take them all)."""
    configured = os.environ.get("OSTEOVIEW_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return cores - 1 if 2 <= cores <= 4 else max(1, cores)


def session_for(manifest: Manifest, name: str):
    """A cached onnxruntime.InferenceSession for a verified weights file.

    The cache key is the file, the digest it must have and the providers (``app.engine.device``),
    so a lookup after the first costs a dictionary access: the file is read and hashed once per
    process and device, and the session holds the very bytes that were hashed, whatever happens
    to the file afterwards.
    """
    import onnxruntime as ort

    path = manifest.folder / name
    providers = list(choose_device(ort).providers)
    key = (str(path.resolve()), manifest.expected_sha256(name), tuple(providers))
    with _lock:
        sess = _sessions.get(key)
        if sess is None:
            model_bytes = manifest.verified_bytes(name)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = intra_op_threads()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            try:
                sess = ort.InferenceSession(model_bytes, sess_options=opts, providers=providers)
            except Exception as exc:  # onnxruntime raises its own opaque types
                raise WeightsError(f"{path}: ONNX Runtime could not load it ({exc})") from exc
            _sessions[key] = sess
    return sess


def run_session(sess, inputs: dict[str, np.ndarray], keep_on_device: bool = False) -> list:
    """Run with inputs cast to the dtype each graph input declares (fp16 weights take fp16).

    On CUDA the inputs and outputs are bound on the device (``app.engine.device.run_bound``);
    with ``keep_on_device`` the outputs stay there as ``OrtValue``s, which a next stage's
    ``run_session`` takes as inputs without a copy. On the CPU: a plain ``run``.
    """
    feeds: dict[str, object] = {}
    for meta in sess.get_inputs():
        arr = inputs[meta.name]
        if not isinstance(arr, np.ndarray) and hasattr(arr, "device_name"):
            feeds[meta.name] = arr  # an OrtValue a previous stage left on the device
            continue
        want = np.float16 if meta.type == "tensor(float16)" else np.float32
        if meta.type.startswith("tensor(int"):
            want = np.int64
        feeds[meta.name] = np.ascontiguousarray(arr, dtype=want)
    if on_cuda(sess):
        outputs = run_bound(sess, feeds, keep_on_device)
        if keep_on_device:
            return outputs
    else:
        outputs = sess.run(None, feeds)
    return [np.asarray(o, dtype=np.float32) if o.dtype == np.float16 else o for o in outputs]
