"""The femur's own class activation map as an explanation ("cam"), with the sanity checks that
fail on a broken explainer:

- truth region: the hottest tenth of the fracture CAM on the fractured side's window lies mostly
  in the proximal-femur box (chance = the box's share of the window). A map inverted by its
  normalisation (MONAI's default CAM normaliser does that) puts its hottest tenth elsewhere;
- model randomisation (Adebayo et al.): the adapter on a copy of the weights with every weight
  tensor shuffled gives a map that does not correlate with the trained one.

Measured per phantom (top-tenth share / chance): 0.88/0.27, 0.74/0.29, 0.23/0.34 (seed 21, a B1
neck fracture: the CAM peaks outside the box), 0.89/0.34; asserted over the four together.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from app.analysis.explain import explain
from app.analysis.request import single_input
from app.analysis.runner import run_analysis
from app.study import load
from tests.test_explain_femur import PHANTOMS

MIN_TOP_SHARE = 0.5
MIN_OVER_CHANCE = 2.0
MAX_RANDOMISED_CORRELATION = 0.5


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """The shipped adapter and one on shuffled weights (same graph, same manifest otherwise)."""
    import onnx
    from onnx import numpy_helper

    from models.femur_ao.adapter import MODEL_FILE, WEIGHTS_DIR, FemurAOAdapter

    folder = tmp_path_factory.mktemp("shuffled_weights")
    model = onnx.load(str(WEIGHTS_DIR / MODEL_FILE))
    rng = np.random.default_rng(0)
    for t in model.graph.initializer:
        arr = numpy_helper.to_array(t)
        if arr.dtype == np.float32 and arr.ndim >= 2:
            shuffled = rng.permutation(arr.ravel()).reshape(arr.shape)
            t.CopyFrom(numpy_helper.from_array(shuffled, t.name))
    onnx.save(model, str(folder / MODEL_FILE))
    manifest = json.loads((WEIGHTS_DIR / "manifest.json").read_text())
    digest = hashlib.sha256((folder / MODEL_FILE).read_bytes()).hexdigest()
    manifest["files"][MODEL_FILE]["sha256"] = digest
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return FemurAOAdapter(), FemurAOAdapter(folder)


def _cam_on_window(adapter, series, side):
    """The fracture CAM's cells on the side's window and their (column, row) image pixels."""
    request = single_input(adapter, series)
    result = run_analysis(adapter, request)
    [ov] = explain(adapter, request, result, result.finding("fracture", side), "cam", cache=None)
    assert ov.name == "CAM fracture"
    values = ov.image.array[0]
    jj, ii = np.mgrid[0 : values.shape[0], 0 : values.shape[1]]
    ijk = np.stack([ii, jj, np.zeros_like(ii)], -1).reshape(-1, 3).astype(float)
    pix = series.image.world_to_index(ov.image.index_to_world(ijk))
    ci, cj = pix[:, 0].reshape(values.shape), pix[:, 1].reshape(values.shape)
    w = result.extra["sides"][side]["window_px"]
    r0, c0, size = w["row0"], w["col0"], w["size"]
    window = (ci >= c0) & (ci < c0 + size) & (cj >= r0) & (cj < r0 + size)
    return values, ci, cj, window


def test_cam_hot_region_on_the_fractured_femur_and_randomisation(adapters, tmp_path_factory):
    from models.femur_ao.phantom import generate, write_study

    trained, shuffled = adapters
    shares, chances = [], []
    for seed, labels in PHANTOMS:
        sample = generate(seed, labels=labels)
        series = load(write_study(sample, tmp_path_factory.mktemp(f"cam_{seed}"))).all_series()[0]
        side = next(s for s, c in labels.items() if c != "normal")
        values, ci, cj, window = _cam_on_window(trained, series, side)
        i0, j0, i1, j1 = sample.head_boxes[side]
        box = window & (ci >= i0) & (ci <= i1) & (cj >= j0) & (cj <= j1)
        top = window & (values >= np.quantile(values[window], 0.9))
        shares.append(float((top & box).sum() / top.sum()))
        chances.append(float(box.sum() / window.sum()))
        other, *_ = _cam_on_window(shuffled, series, side)
        corr = float(np.corrcoef(values[window], other[window])[0, 1]) if other.std() else 0.0
        print(f"\nseed {seed} {side}: CAM top tenth in box {shares[-1]:.3f} (chance "
              f"{chances[-1]:.3f}); trained vs shuffled weights correlation {corr:.3f}")  # fmt: skip
        assert values[window].std() > 0
        assert corr < MAX_RANDOMISED_CORRELATION
    share, chance = float(np.mean(shares)), float(np.mean(chances))
    print(f"mean over {len(PHANTOMS)} phantoms: {share:.3f} in the box, chance {chance:.3f}")
    assert share >= MIN_TOP_SHARE and share >= MIN_OVER_CHANCE * chance
