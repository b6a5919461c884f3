"""The one training command: ``--recipe demo`` renders phantoms once, runs both phases for a
fixed number of epochs in one process and exports ONNX with its sha256 manifest."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from app.engine.runtime import sha256_of  # noqa: E402
from models.femur_ao.train import RECIPES, main  # noqa: E402


def _run(out, seed=0):
    argv = ["--data", "phantom", "--recipe", "demo", "--out", str(out), "--seed", str(seed)]
    argv += ["--phantoms", "4", "--test-phantoms", "2", "--phase1-epochs", "1"]
    argv += ["--phase2-epochs", "1", "--batch", "4", "--workers", "1"]
    assert main(argv) == 0
    return json.loads((out / "metrics.json").read_text())


def test_recipe_runs_both_phases_and_exports(tmp_path):
    report = _run(tmp_path / "a")
    phases = report["phases"]
    assert [p["phase"]["name"] for p in phases] == ["phase1", "phase2"]
    assert [p["epochs_run"] for p in phases] == [1, 1]
    assert all(p["stopped_by"] == "epochs" for p in phases)
    # Phase 2 is the recipe's noise-augmented, lower-lr continuation with alpha complemented.
    p1, p2 = phases[0]["phase"], phases[1]["phase"]
    assert p2["noise_aug"] > 0 and p2["lr"] < p1["lr"] and p2["alpha"] == 1 - p1["alpha"]
    assert [h["phase"] for h in report["history"]] == ["phase1", "phase2"]
    assert report["n_test"] == 4 and "weighted_f1" in report["3-class"]
    export = tmp_path / "a" / "export"
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["files"]["femur_ao.onnx"]["sha256"] == sha256_of(export / "femur_ao.onnx")
    assert manifest["trained"] and "--recipe demo" in manifest["training_command"]
    assert [p["epochs_run"] for p in manifest["training_phases"]] == [1, 1]
    assert max(manifest["export_check_max_abs_diff"].values()) < 1e-3


def test_recipe_is_deterministic_from_the_seed(tmp_path):
    a, b = _run(tmp_path / "a"), _run(tmp_path / "b")
    assert [h["val_loss"] for h in a["history"]] == [h["val_loss"] for h in b["history"]]
    import torch

    wa = torch.load(tmp_path / "a" / "best.pt", weights_only=True)
    wb = torch.load(tmp_path / "b" / "best.pt", weights_only=True)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_recipe_stops_by_epochs_not_minutes():
    r = RECIPES["demo"]
    assert r.phase1.epochs > 0 and r.phase2.epochs > 0
    assert r.phase1.switch_epoch is not None and r.phase1.switch_epoch < r.phase1.epochs
    from models.femur_ao.train import _parser

    assert _parser().parse_args(["--data", "phantom", "--out", "x"]).minutes is None
