"""The exporters write manifests in the one schema (``app/engine/manifest_schema.py``).

Each exporter runs for real on untrained networks (a few seconds) and its manifest must validate.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

import torch  # noqa: E402

from app.engine.manifest_schema import validate_manifest  # noqa: E402


def test_femur_exporter_writes_the_schema(tmp_path):
    from models.femur_ao.export import export_trained
    from models.femur_ao.networks import DEMO, build

    torch.manual_seed(0)
    metrics = {"n_test": 2, "2-class": {"weighted_f1": 1.0}, "phases": []}
    x = np.zeros((2, 1, DEMO.input_size, DEMO.input_size), np.float32)
    export_trained(build(DEMO), DEMO, tmp_path, metrics, x, command="python -m x")
    path = tmp_path / "manifest.json"
    validate_manifest(json.loads(path.read_text()), path)


def test_cervical_exporter_writes_the_schema(tmp_path):
    from models.cervical_fracture.export import main
    from models.cervical_fracture.networks import DEMO, build_stage1, build_stage2

    torch.manual_seed(0)
    run = tmp_path / "run"
    run.mkdir()
    torch.save(build_stage1(DEMO.stage1).state_dict(), run / "stage1.pt")
    torch.save(build_stage2(DEMO.stage2).state_dict(), run / "stage2.pt")
    # What train.py writes beside the weights (the keys export.py reads).
    meta = {
        "config": DEMO.to_json(),
        "config_name": "demo",
        "seed": 0,
        "data": "phantom",
        "train_studies": ["phantom-0"],
        "command": "python -m models.cervical_fracture.train --data phantom",
    }
    (run / "config.json").write_text(json.dumps(meta))
    assert main(["--run", str(run), "--out", str(tmp_path / "out")]) == 0
    path = tmp_path / "out" / "manifest.json"
    validate_manifest(json.loads(path.read_text()), path)
