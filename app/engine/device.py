"""Where the networks run: CUDA when ONNX Runtime has a CUDA provider that works, else the CPU,
with the reason kept so a result's provenance can say why it ran on the CPU.

"Works" is tested, not assumed: ``onnxruntime-gpu`` lists ``CUDAExecutionProvider`` even where
the CUDA or cuDNN libraries are missing, and then quietly runs on the CPU. So the first choice
opens a tiny session (``PROBE_MODEL``: y = x + x) on CUDA, checks that CUDA is really the
provider it got and that the answer is right; the choice is made once per process.
``OSTEOVIEW_DEVICE=cpu`` forces the CPU (for comparisons and for a GPU that is needed elsewhere).

Inputs and outputs of a session on CUDA are bound on the device (ONNX Runtime's IO binding,
``run_bound``): each input is copied to the GPU once, outputs are allocated there, and a stage
can hand its output to the next network without a round trip through the host
(``keep_on_device``). The CPU path does not change: a plain ``session.run``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

# A minimal ONNX model, y = x + x for x float32[1, 4] (opset 13, IR 8): 86 bytes written by
# onnx.helper, embedded so the runtime needs neither the onnx package nor a file to test CUDA.
# tests/test_engine_device.py rebuilds it with onnx and checks these bytes.
PROBE_MODEL = (
    b'\x08\x08\x12\tosteoview:A\n\x0e\n\x01x\n\x01x\x12\x01y"\x03Add\x12\x05probeZ\x13\n\x01x'
    b"\x12\x0e\n\x0c\x08\x01\x12\x08\n\x02\x08\x01\n\x02\x08\x04b\x13\n\x01y\x12\x0e\n\x0c\x08"
    b"\x01\x12\x08\n\x02\x08\x01\n\x02\x08\x04B\x04\n\x00\x10\r"
)


@dataclass(frozen=True)
class DeviceChoice:
    providers: tuple[str, ...]  # what sessions are opened with, best first
    reason: str = ""  # why not CUDA, when the choice is the CPU

    @property
    def device(self) -> str:
        return "CUDA" if self.providers[0] == CUDA else "CPU"

    def describe(self) -> str:
        """What a result's provenance records: "CUDA", or "CPU (why not CUDA)"."""
        return self.device if not self.reason else f"{self.device} ({self.reason})"


_choice: DeviceChoice | None = None
_lock = threading.Lock()


def choose_device(ort=None) -> DeviceChoice:
    """The providers every session of this process uses; decided once (see the docstring)."""
    global _choice
    with _lock:
        if _choice is None:
            if ort is None:
                import onnxruntime as ort
            _choice = _decide(ort)
        return _choice


def forget_choice() -> None:
    """Decide again on the next call (tests)."""
    global _choice
    with _lock:
        _choice = None


def _decide(ort) -> DeviceChoice:
    if os.environ.get("OSTEOVIEW_DEVICE", "").strip().lower() == "cpu":
        return DeviceChoice((CPU,), "OSTEOVIEW_DEVICE=cpu")
    if CUDA not in ort.get_available_providers():
        return DeviceChoice((CPU,), "this ONNX Runtime has no CUDA provider")
    if hasattr(ort, "preload_dlls"):  # onnxruntime-gpu >= 1.21: the nvidia-* wheels' libraries
        try:
            ort.preload_dlls()
        except Exception:  # noqa: BLE001 - then the test session below says what is missing
            pass
    failure = cuda_failure(ort)
    if failure:
        return DeviceChoice((CPU,), failure)
    return DeviceChoice((CUDA, CPU))


def cuda_failure(ort) -> str:
    """Why the CUDA provider cannot be used here, or "" when a test session ran on it."""
    try:
        sess = ort.InferenceSession(PROBE_MODEL, providers=[CUDA, CPU])
        if sess.get_providers()[0] != CUDA:
            return "the CUDA provider did not start (CUDA or cuDNN libraries missing?)"
        x = np.arange(4, dtype=np.float32).reshape(1, 4)
        (y,) = sess.run(None, {"x": x})
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own opaque types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"the CUDA provider failed a test session: {first[:160]}"
    if not np.allclose(y, 2 * x):
        return "the CUDA provider gave a wrong answer on a test session"
    return ""


@contextmanager
def forced(choice: DeviceChoice) -> Iterator[None]:
    """Open sessions with ``choice`` inside the block (the benchmark compares CPU and CUDA in one
    process; sessions are cached per provider list, so each device keeps its own)."""
    global _choice
    with _lock:
        previous, _choice = _choice, choice
    try:
        yield
    finally:
        with _lock:
            _choice = previous


def on_cuda(sess) -> bool:
    return sess.get_providers()[0] == CUDA


def run_bound(sess, feeds: Mapping[str, object], keep_on_device: bool = False) -> list:
    """Run a CUDA session with IO binding. ``feeds`` holds numpy arrays (copied to the GPU once)
    or ``OrtValue``s already there (a previous stage's outputs, bound as they are). Returns numpy
    arrays, or with ``keep_on_device`` the ``OrtValue``s on the GPU for the next stage."""
    from onnxruntime import OrtValue

    binding = sess.io_binding()
    for name, value in feeds.items():
        if isinstance(value, OrtValue):
            binding.bind_ortvalue_input(name, value)
        else:
            binding.bind_ortvalue_input(name, OrtValue.ortvalue_from_numpy(value, "cuda", 0))
    for out in sess.get_outputs():
        binding.bind_output(out.name, "cuda", 0)
    sess.run_with_iobinding(binding)
    if keep_on_device:
        return list(binding.get_outputs())
    return list(binding.copy_outputs_to_cpu())
