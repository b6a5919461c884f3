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
    doc = {
        "model_name": "tiny",
        "version": "0",
        "trained_on": "nothing",
        "files": {"m.onnx": {"sha256": sha}},
        "config": {"name": "tiny"},
        "metrics": {},
    }
    (folder / "manifest.json").write_text(json.dumps(doc))


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


# ---- pinned digests: the manifest cannot vouch for the weights beside it ---------------------
def _tampered_copy(src, dst):
    """A copy of a weights folder with one byte of the model changed and the manifest updated to
    the new sha256: what an attacker with write access to the weights folder would leave."""
    import shutil

    shutil.copytree(src, dst)
    onnx_file = next(p for p in sorted(dst.glob("*.onnx")))
    data = bytearray(onnx_file.read_bytes())
    data[-1] ^= 0x01
    onnx_file.write_bytes(bytes(data))
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["files"][onnx_file.name]["sha256"] = sha256_of(onnx_file)
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return onnx_file.name


def test_pins_refuse_weights_whose_manifest_was_rewritten_to_match(tmp_path):
    _tiny_onnx(tmp_path / "m.onnx")
    good = sha256_of(tmp_path / "m.onnx")
    _write_manifest(tmp_path, good)
    pinned = {"m.onnx": good}
    assert session_for(Manifest.load(tmp_path, pinned=pinned), "m.onnx") is not None
    tampered = tmp_path / "t"
    name = _tampered_copy(tmp_path, tampered)
    with pytest.raises(WeightsError, match="pinned in the task's code"):
        session_for(Manifest.load(tampered, pinned=pinned), name)
    # Without pins the rewritten manifest would have vouched for it: the hole pins close.
    assert Manifest.load(tampered).verified_path(name).is_file()


def test_a_file_with_no_pin_is_refused(tmp_path):
    _tiny_onnx(tmp_path / "m.onnx")
    _write_manifest(tmp_path, sha256_of(tmp_path / "m.onnx"))
    with pytest.raises(WeightsError, match="no sha256 is pinned"):
        session_for(Manifest.load(tmp_path, pinned={}), "m.onnx")


@pytest.mark.parametrize(
    "adapter_path",
    [
        "models.cervical_fracture.adapter:CervicalFractureAdapter",
        "models.femur_ao.adapter:FemurAOAdapter",
    ],
)
def test_shipped_weights_are_pinned_and_a_tampered_install_is_refused(
    adapter_path, tmp_path, monkeypatch
):
    import importlib

    module_name, cls_name = adapter_path.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    shipped = cls()
    names = list(shipped.manifest.data["files"])
    assert set(shipped.pinned_digests()) == set(names)  # every shipped file pinned
    for name in names:
        session_for(shipped.manifest, name)  # the shipped bytes match their pins
    assert shipped.model_info().weights_sha256 == shipped.pinned_digests()
    # The same class with its installed weights folder tampered with (weights + manifest).
    name = _tampered_copy(cls.default_weights_dir, tmp_path / "weights")
    monkeypatch.setattr(cls, "default_weights_dir", tmp_path / "weights")
    with pytest.raises(WeightsError, match="does not match the one pinned"):
        session_for(cls().manifest, name)


def test_a_session_is_opened_from_the_bytes_that_were_hashed(tmp_path, monkeypatch):
    """The file is read once: swapping it after the check cannot change what runs, and a second
    lookup neither reads nor hashes it again."""
    import onnxruntime as ort

    _tiny_onnx(tmp_path / "m.onnx")
    digest = sha256_of(tmp_path / "m.onnx")
    _write_manifest(tmp_path, digest)
    manifest = Manifest.load(tmp_path, pinned={"m.onnx": digest})
    opened_with = []
    real = ort.InferenceSession

    def spy(model, *args, **kwargs):
        opened_with.append(model)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    reads = []
    real_read = Manifest.verified_bytes
    monkeypatch.setattr(
        Manifest, "verified_bytes", lambda self, n: reads.append(n) or real_read(self, n)
    )
    first = session_for(manifest, "m.onnx")
    assert isinstance(opened_with[0], bytes) and len(opened_with) == 1
    (tmp_path / "m.onnx").write_bytes(b"not a model any more")
    assert session_for(manifest, "m.onnx") is first
    assert reads == ["m.onnx"]


def test_thread_count_leaves_a_core_on_small_machines(monkeypatch):
    from app.engine import runtime

    monkeypatch.delenv("OSTEOVIEW_THREADS", raising=False)
    for cores, expected in ((1, 1), (2, 1), (4, 3), (8, 8)):
        monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid, n=cores: set(range(n)))
        assert runtime.intra_op_threads() == expected
    monkeypatch.setenv("OSTEOVIEW_THREADS", "3")
    assert runtime.intra_op_threads() == 3
