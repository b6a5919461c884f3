"""ONNX Runtime sessions: weights verified against their manifest, sessions cached per file.

A manifest (``manifest.json`` beside the weights) lists each file with its sha256::

    {"model_name": "...", "version": "...", "trained_on": "...",
     "files": {"stage1.onnx": {"sha256": "..."}}}
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np


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

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        path = Path(folder) / "manifest.json"
        if not path.is_file():
            raise WeightsError(f"{path}: weights manifest is missing")
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise WeightsError(f"{path}: unreadable manifest ({exc})") from exc
        if not isinstance(data.get("files"), dict):
            raise WeightsError(f"{path}: manifest has no 'files' table")
        return cls(Path(folder), data)

    def verified_path(self, name: str) -> Path:
        entry = self.data["files"].get(name)
        path = self.folder / name
        if entry is None:
            raise WeightsError(f"{path}: not listed in {self.folder / 'manifest.json'}")
        if not path.is_file():
            raise WeightsError(f"{path}: weights file is missing")
        digest = sha256_of(path)
        if digest != entry.get("sha256"):
            raise WeightsError(
                f"{path}: sha256 {digest[:12]}... does not match the manifest "
                f"({str(entry.get('sha256'))[:12]}...); refusing to load modified weights"
            )
        return path

    def sha256s(self) -> dict[str, str]:
        return {k: v.get("sha256", "") for k, v in self.data["files"].items()}


_sessions: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


def available_device() -> str:
    import onnxruntime as ort

    return "CUDA" if "CUDAExecutionProvider" in ort.get_available_providers() else "CPU"


def session_for(manifest: Manifest, name: str):
    """A cached onnxruntime.InferenceSession for a verified weights file."""
    import onnxruntime as ort

    path = manifest.verified_path(name)
    key = (str(path.resolve()), manifest.sha256s().get(name, ""))
    with _lock:
        sess = _sessions.get(key)
        if sess is None:
            opts = ort.SessionOptions()
            # ORT defaults to one thread per core; keep one core for the UI when there are few.
            threads = int(os.environ.get("OSTEOVIEW_THREADS", "0")) or max(1, (os.cpu_count() or 2))
            opts.intra_op_num_threads = threads
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            providers = ["CPUExecutionProvider"]
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            try:
                sess = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
            except Exception as exc:  # onnxruntime raises its own opaque types
                raise WeightsError(f"{path}: ONNX Runtime could not load it ({exc})") from exc
            _sessions[key] = sess
    return sess


def run_session(sess, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run with inputs cast to the dtype each graph input declares (fp16 weights take fp16)."""
    feeds = {}
    for meta in sess.get_inputs():
        arr = inputs[meta.name]
        want = np.float16 if meta.type == "tensor(float16)" else np.float32
        if meta.type.startswith("tensor(int"):
            want = np.int64
        feeds[meta.name] = np.ascontiguousarray(arr, dtype=want)
    return [
        np.asarray(o, dtype=np.float32) if o.dtype == np.float16 else o
        for o in sess.run(None, feeds)
    ]
