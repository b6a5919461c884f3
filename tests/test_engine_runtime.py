"""Weights are verified against their manifest before ONNX Runtime sees them."""

import json

import numpy as np
import pytest

from app.engine.runtime import Manifest, WeightsError, run_session, session_for, sha256_of


def _tiny_onnx(path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    node = helper.make_node("Relu", ["x"], ["y"])
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]))
    model.opset_import[0].version = 17
    model.ir_version = 8
    onnx.save(model, path)


def _write_manifest(folder, sha):
    (folder / "manifest.json").write_text(json.dumps({"files": {"m.onnx": {"sha256": sha}}}))


def test_verified_session_runs(tmp_path):
    _tiny_onnx(tmp_path / "m.onnx")
    _write_manifest(tmp_path, sha256_of(tmp_path / "m.onnx"))
    sess = session_for(Manifest.load(tmp_path), "m.onnx")
    (out,) = run_session(sess, {"x": np.array([[-1.0, 0.0, 2.0]])})
    np.testing.assert_array_equal(out, [[0.0, 0.0, 2.0]])


def test_modified_weights_are_refused(tmp_path):
    _tiny_onnx(tmp_path / "m.onnx")
    _write_manifest(tmp_path, "0" * 64)
    with pytest.raises(WeightsError, match="does not match"):
        session_for(Manifest.load(tmp_path), "m.onnx")


def test_missing_files_are_named(tmp_path):
    with pytest.raises(WeightsError, match="manifest is missing"):
        Manifest.load(tmp_path)
    _write_manifest(tmp_path, "0" * 64)
    with pytest.raises(WeightsError, match=r"m\.onnx: weights file is missing"):
        Manifest.load(tmp_path).verified_path("m.onnx")
