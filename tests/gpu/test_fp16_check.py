"""tests/gpu/fp16_check.py: what counts as a metric, the 0.5% rule, and fp16 conversion of a
graph whose output is also read inside it (femur's ``theta``), which the converter alone breaks."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from tests.gpu import fp16_check as F


def test_metrics_leave_out_timings_lists_and_flags():
    data = {"auc": 0.9, "mean_pipeline_seconds": 3.0, "per_study": [{"p": 1.0}],
            "ok": True, "vertebra": {"C1": {"f1": 0.5}}, "timings_s": {"x": 1.0}}  # fmt: skip
    assert F.flat_metrics(data) == {"auc": 0.9, "vertebra.C1.f1": 0.5}


def test_within_half_a_percent():
    ok, rows = F.compare({"auc": 0.900, "f1": 0.800}, {"auc": 0.9044, "f1": 0.800})
    assert ok and rows[0]["relative"] == pytest.approx(0.0044 / 0.9)
    ok, rows = F.compare({"auc": 0.900}, {"auc": 0.905})
    assert not ok and not rows[0]["within"]


def test_fp16_copy_of_a_graph_whose_output_is_read_inside(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxconverter_common")
    import onnxruntime as ort
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])
    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    nodes = [
        helper.make_node("Mul", ["x", "two"], ["y"], name="mul"),
        helper.make_node("Add", ["y", "x"], ["z"], name="add"),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y, z], initializer=[two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data = model.SerializeToString()
    (tmp_path / "net.onnx").write_bytes(data)
    manifest = {"files": {"net.onnx": {"sha256": hashlib.sha256(data).hexdigest()}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))

    assert F.to_fp16(tmp_path) == ["net.onnx"]
    converted = (tmp_path / "net.onnx").read_bytes()
    saved = json.loads((tmp_path / "manifest.json").read_text())
    assert saved["files"]["net.onnx"]["sha256"] == hashlib.sha256(converted).hexdigest()
    weights = onnx.load_from_string(converted).graph.initializer
    assert {t.data_type for t in weights} == {TensorProto.FLOAT16}  # the weights are fp16 now
    sess = ort.InferenceSession(converted, providers=["CPUExecutionProvider"])
    assert [i.type for i in sess.get_inputs()] == ["tensor(float)"]  # fed as before
    xs = np.array([[0.5, 1.0, 1.5, 2.0]], np.float32)
    ys, zs = sess.run(None, {"x": xs})
    assert ys.dtype == np.float32
    np.testing.assert_allclose(ys, 2 * xs, rtol=1e-3)
    np.testing.assert_allclose(zs, 3 * xs, rtol=1e-3)
