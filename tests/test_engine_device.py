"""The engine's device choice (``app.engine.device``): CUDA only when a test session really ran
on it, else the CPU with the reason in the provenance; IO binding on CUDA, the CPU path as it
was. This machine has no GPU, so the CUDA side runs against a stand-in ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine import device as D
from app.engine import runtime


@pytest.fixture(autouse=True)
def fresh_choice(monkeypatch):
    monkeypatch.delenv("OSTEOVIEW_DEVICE", raising=False)
    D.forget_choice()
    yield
    D.forget_choice()


def test_probe_model_is_what_onnx_writes():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "probe", [x], [y])
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="osteoview"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    assert model.SerializeToString() == D.PROBE_MODEL


def test_this_cpu_build_runs_on_cpu_and_says_why():
    import onnxruntime as ort

    if D.CUDA in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    choice = D.choose_device()
    assert choice.providers == (D.CPU,)
    assert runtime.available_device() == "CPU (this ONNX Runtime has no CUDA provider)"
    sess = ort.InferenceSession(D.PROBE_MODEL, providers=list(choice.providers))
    (y,) = runtime.run_session(sess, {"x": np.arange(4).reshape(1, 4)})  # cast to float32
    np.testing.assert_array_equal(y, [[0, 2, 4, 6]])


def test_env_forces_cpu(monkeypatch):
    monkeypatch.setenv("OSTEOVIEW_DEVICE", "cpu")
    assert D.choose_device(FakeOrt(works=True)).describe() == "CPU (OSTEOVIEW_DEVICE=cpu)"


class FakeSession:
    def __init__(self, providers, answer=None):
        self._providers = providers
        self.answer = answer

    def get_providers(self):
        return self._providers

    def run(self, _names, feeds):
        return [self.answer if self.answer is not None else 2 * feeds["x"]]


class FakeOrt:
    """onnxruntime with a CUDA provider listed, which works, falls back or raises."""

    def __init__(self, works=False, falls_back=False, raises=None, wrong=False):
        self.works, self.falls_back, self.raises, self.wrong = works, falls_back, raises, wrong

    def get_available_providers(self):
        return [D.CUDA, D.CPU]

    def InferenceSession(self, model, providers):  # noqa: N802 - onnxruntime's name
        assert model == D.PROBE_MODEL and providers == [D.CUDA, D.CPU]
        if self.raises:
            raise RuntimeError(self.raises)
        if self.falls_back:
            return FakeSession([D.CPU])
        return FakeSession([D.CUDA, D.CPU], np.zeros((1, 4), np.float32) if self.wrong else None)


@pytest.mark.parametrize(
    "fake, expected",
    [
        (FakeOrt(works=True), "CUDA"),
        (FakeOrt(falls_back=True), "CPU (the CUDA provider did not start (CUDA or cuDNN libraries missing?))"),
        (FakeOrt(raises="libcublasLt.so.12: cannot open shared object file\nmore"),
         "CPU (the CUDA provider failed a test session: libcublasLt.so.12: cannot open shared object file)"),
        (FakeOrt(wrong=True), "CPU (the CUDA provider gave a wrong answer on a test session)"),
    ],
)  # fmt: skip
def test_cuda_is_used_only_when_a_test_session_runs_on_it(fake, expected):
    choice = D.choose_device(fake)
    assert choice.describe() == expected
    assert choice.providers == ((D.CUDA, D.CPU) if expected == "CUDA" else (D.CPU,))
    assert D.choose_device() is choice  # decided once per process


class FakeOrtValue:
    def __init__(self, array):
        self.array = array

    def device_name(self):
        return "cuda"

    def numpy(self):
        return self.array


class FakeBinding:
    def __init__(self, log):
        self.log, self.inputs, self.outputs = log, {}, []

    def bind_ortvalue_input(self, name, value):
        self.log.append(("input", name, value))
        self.inputs[name] = value

    def bind_output(self, name, device, device_id):
        self.log.append(("output", name, device, device_id))
        self.outputs.append(name)

    def get_outputs(self):
        return [FakeOrtValue(self.result)]

    def copy_outputs_to_cpu(self):
        return [self.result]


class FakeCudaSession:
    """A stage on CUDA: y = 2 x, run only through IO binding (``run`` would be the CPU path)."""

    def __init__(self, in_name, dtype="tensor(float)"):
        self.in_name, self.dtype, self.log = in_name, dtype, []

    def get_providers(self):
        return [D.CUDA, D.CPU]

    def get_inputs(self):
        return [type("Meta", (), {"name": self.in_name, "type": self.dtype})()]

    def get_outputs(self):
        return [type("Meta", (), {"name": "y"})()]

    def io_binding(self):
        self.binding = FakeBinding(self.log)
        return self.binding

    def run_with_iobinding(self, binding):
        value = binding.inputs[self.in_name]
        binding.result = 2 * value.array
        self.log.append(("run",))

    def run(self, *_):
        raise AssertionError("a CUDA session must run through IO binding")


def test_two_stages_on_cuda_hand_over_on_the_device(monkeypatch):
    import onnxruntime

    copies = []

    def to_device(arr, device, device_id):
        copies.append((arr.dtype, device, device_id))
        return FakeOrtValue(arr)

    monkeypatch.setattr(onnxruntime, "OrtValue", FakeOrtValue)
    monkeypatch.setattr(FakeOrtValue, "ortvalue_from_numpy", staticmethod(to_device), raising=False)
    stage1, stage2 = FakeCudaSession("slices"), FakeCudaSession("sequence")
    x = np.ones((2, 3), np.float64)
    (on_gpu,) = runtime.run_session(stage1, {"slices": x}, keep_on_device=True)
    assert isinstance(on_gpu, FakeOrtValue)  # stage 1's output stays on the device
    (y,) = runtime.run_session(stage2, {"sequence": on_gpu})
    np.testing.assert_array_equal(y, 4 * x)
    assert copies == [(np.float32, "cuda", 0)]  # one host-to-device copy: stage 1's input
    assert stage2.log[0] == ("input", "sequence", on_gpu)  # bound as it was, not copied
    assert ("output", "y", "cuda", 0) in stage1.log and ("output", "y", "cuda", 0) in stage2.log


def test_sessions_open_with_the_chosen_providers(monkeypatch, tmp_path):
    import hashlib
    import json

    seen = []
    import onnxruntime

    real = onnxruntime.InferenceSession

    def spy(model, sess_options=None, providers=None):
        seen.append(providers)
        return real(model, sess_options=sess_options, providers=[D.CPU])

    (tmp_path / "probe.onnx").write_bytes(D.PROBE_MODEL)
    digest = hashlib.sha256(D.PROBE_MODEL).hexdigest()
    (tmp_path / "manifest.json").write_text(json.dumps({
        "model_name": "probe", "version": "1", "trained_on": "nothing",
        "files": {"probe.onnx": {"sha256": digest}}, "config": {"name": "probe"}, "metrics": {},
    }))  # fmt: skip
    monkeypatch.setattr(onnxruntime, "InferenceSession", spy)
    monkeypatch.setattr(runtime, "choose_device", lambda ort=None: D.DeviceChoice((D.CUDA, D.CPU)))
    runtime.session_for(runtime.Manifest.load(tmp_path), "probe.onnx")
    assert seen == [[D.CUDA, D.CPU]]
