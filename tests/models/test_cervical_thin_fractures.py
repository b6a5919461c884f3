"""Thin, barely displaced fractures: the demo study is called as its name says, the thin
training phantoms are thin, and no held-out seed is a training seed.

The demo (``resources/demo/cervical-fracture``, seed 0, arch fractures at C2 and C6 with gaps
of 1.95 / 2.03 mm) was called negative by the first weights (patient p = 0.31); stage 2 was
retrained with thin-fracture phantoms (``train --n-thin``, see the model card).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.analysis.request import single_input
from app.analysis.runner import run_analysis
from app.study import load
from models.cervical_fracture import pipeline as P
from models.cervical_fracture.fracture import (
    GAP_MM,
    SHIFT_MM,
    THIN_HELDOUT,
    THIN_TRAIN,
    random_fracture,
)
from models.cervical_fracture.phantom import _spine_layout

DEMO = Path(__file__).resolve().parents[2] / "resources/demo/cervical-fracture"


@pytest.fixture(scope="module")
def adapter():
    from models.cervical_fracture.adapter import CervicalFractureAdapter

    return CervicalFractureAdapter()


def _probabilities(adapter, study: str) -> dict[str, float]:
    series = load(DEMO / study).all_series()[0]
    result = run_analysis(adapter, single_input(adapter, series))
    return {f.label: f.probability for f in result.findings}


def test_demo_fracture_study_calls_c2_and_c6(adapter):
    p = _probabilities(adapter, "phantom_fracture_C2_C6")
    assert p["C2"] >= 0.5 and p["C6"] >= 0.5, p
    assert p["patient_overall"] >= 0.5, p
    # the calls are the fractured levels, not a neighbour's
    assert all(p[v] < 0.5 for v in P.VERTEBRAE if v not in ("C2", "C6")), p


def test_demo_intact_study_stays_negative(adapter):
    p = _probabilities(adapter, "phantom_no_fracture")
    assert all(p[v] < 0.5 for v in P.VERTEBRAE), p
    assert p["patient_overall"] < 0.5, p


@pytest.mark.parametrize("shape", [THIN_TRAIN, THIN_HELDOUT])
def test_thin_options_draw_thin_fractures(shape):
    rng = np.random.default_rng(3)
    verts = _spine_layout(rng, 1.0)
    kw = {k: shape[k] for k in ("gap_mm", "shift_mm", "body_share") if k in shape}
    fx = [random_fracture(rng, verts[-2], **kw) for _ in range(200)]
    gaps = np.array([f.gap_mm for f in fx])
    shifts = np.array([np.linalg.norm(f.shift) for f in fx])
    lo, hi = shape["gap_mm"]
    assert gaps.min() >= lo and gaps.max() <= hi
    assert shifts.min() >= shape["shift_mm"][0] - 1e-9
    assert shifts.max() <= shape["shift_mm"][1] + 1e-9
    # thinner than the default distribution on average
    assert gaps.mean() < np.mean(GAP_MM) and shifts.mean() < np.mean(SHIFT_MM)


def test_thin_heldout_slice_is_as_thin_as_the_demo():
    # the demo's fractures (model card): gaps 1.95 / 2.03 mm, displacements 1.81 / 2.54 mm
    assert THIN_HELDOUT["gap_mm"][0] <= 1.95 and 2.03 <= THIN_HELDOUT["gap_mm"][1]
    assert THIN_HELDOUT["shift_mm"][0] <= 1.81 and 2.54 <= THIN_HELDOUT["shift_mm"][1]


def test_heldout_seeds_are_never_training_seeds():
    from models.cervical_fracture.train import (
        HELDOUT_SEED_BASE,
        HELDOUT_THIN_SEED_BASE,
        MAX_SEED,
        TRAIN_SEED_BASE,
        TRAIN_THIN_SEED_BASE,
        VAL_SEED_BASE,
    )

    # train.py allows seeds 0..MAX_SEED-1 and at most 1000 phantoms of each kind per seed
    train = {b + s * 1000 + n for b in (TRAIN_SEED_BASE, TRAIN_THIN_SEED_BASE)
             for s in range(MAX_SEED) for n in range(1000)}  # fmt: skip
    heldout = set(range(HELDOUT_SEED_BASE, HELDOUT_SEED_BASE + 1000))
    heldout |= set(range(HELDOUT_THIN_SEED_BASE, HELDOUT_THIN_SEED_BASE + 1000))
    heldout |= set(range(VAL_SEED_BASE, VAL_SEED_BASE + 10_000))
    assert not train & heldout
    assert len(train) == 2 * MAX_SEED * 1000  # the two training kinds do not overlap either


def test_stage2_alone_reads_stage1_from_the_shipped_onnx():
    import onnxruntime as ort
    import torch

    from models.cervical_fracture.adapter import WEIGHTS_DIR
    from models.cervical_fracture.networks import DEMO
    from models.cervical_fracture.train import stage1_from_onnx

    net = stage1_from_onnx(WEIGHTS_DIR / "stage1.onnx", DEMO)
    x = np.random.default_rng(5).random((1, 3, P.WORK_SIZE, P.WORK_SIZE), np.float32)
    sess = ort.InferenceSession(str(WEIGHTS_DIR / "stage1.onnx"))
    with torch.no_grad():
        got = torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()
    assert np.abs(got - sess.run(None, {"slices": x})[0]).max() < 1e-4
    with pytest.raises(SystemExit, match="not a stage-1 export"):
        stage1_from_onnx(WEIGHTS_DIR / "stage2.onnx", DEMO)
