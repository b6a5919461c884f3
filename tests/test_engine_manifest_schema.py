"""The one weights-manifest schema: the shipped manifests follow it, and each way of breaking it
is refused with a message that names the file and the problem."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.engine.manifest_schema import validate_manifest
from app.engine.runtime import WeightsError, sha256_of

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(ROOT.glob("models/*/weights/manifest.json"))
GOOD = {
    "model_name": "m-demo",
    "version": "0.1.0",
    "trained_on": "synthetic phantoms",
    "files": {"m.onnx": {"sha256": "ab" * 32, "bytes": 10}},
    "config": {"name": "demo", "width": 8},
    "metrics": {},
    "groups": {"any": "task-specific extra"},
}


def test_the_shipped_manifests_follow_the_schema_and_match_their_weights():
    assert {p.parent.parent.name for p in SHIPPED} >= {"cervical_fracture", "femur_ao"}
    for path in SHIPPED:
        data = json.loads(path.read_text())
        validate_manifest(data, path)
        assert data["metrics"], f"{path}: no held-out metrics"
        for name, entry in data["files"].items():
            assert sha256_of(path.parent / name) == entry["sha256"], f"{path}: {name}"


def test_a_minimal_manifest_passes():
    validate_manifest(copy.deepcopy(GOOD), "w/manifest.json")


def _broken(change) -> dict:
    data = copy.deepcopy(GOOD)
    change(data)
    return data


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("metrics"), "lacks 'metrics'"),
        (lambda d: d.pop("trained_on"), "lacks 'trained_on'"),
        (lambda d: d.update(version=""), "'version' is empty"),
        (lambda d: d.update(config={"width": 8}), "'config' has no 'name'"),
        (lambda d: d.update(metrics=[0.9]), "'metrics' is .*, not an object"),
        (lambda d: d.update(files={}), "lists no weights files"),
        (lambda d: d.update(files={"../m.onnx": {"sha256": "ab" * 32}}), "not a plain file name"),
        (lambda d: d.update(files={"m.onnx": "ab" * 32}), "entry for m.onnx is not an object"),
        (lambda d: d["files"]["m.onnx"].update(sha256="AB" * 32), "not 64 lowercase"),
        (lambda d: d["files"]["m.onnx"].update(sha256="ab" * 31), "not 64 lowercase"),
        (lambda d: d["files"]["m.onnx"].update(bytes=True), "bytes of m.onnx is True"),
        (lambda d: d["files"]["m.onnx"].update(md5="x"), r"unknown key\(s\) \['md5'\]"),
        (lambda d: d.update(seed="0"), "'seed' is '0', not an integer"),
        (lambda d: d.update(export_check_max_abs_diff={"a": "x"}), "not a number"),
        # The other schema's names are refused with the name to use instead.
        (lambda d: d.update(held_out={}), "old key 'held_out'; the schema calls it 'metrics'"),
        (lambda d: d.update(config_name="demo"), "calls it 'config.name'"),
        (lambda d: d.update(train_command="x"), "calls it 'training_command'"),
        (lambda d: d.update(onnx_vs_torch_max_abs_diff=[0.0]), "'export_check_max_abs_diff'"),
    ],
)
def test_each_problem_is_named(change, message):
    with pytest.raises(WeightsError, match=r"^w/manifest.json: manifest .*" + message):
        validate_manifest(_broken(change), "w/manifest.json")


def test_not_an_object():
    with pytest.raises(WeightsError, match="not a JSON object"):
        validate_manifest([GOOD], Path("w/manifest.json"))  # type: ignore[arg-type]


def test_imports_without_a_cycle_whichever_module_comes_first():
    # runtime.py may import the schema at its top; the schema imports runtime only to fail.
    for first in ("app.engine.manifest_schema", "app.engine.runtime"):
        code = f"import {first}; from app.engine.manifest_schema import validate_manifest"
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
