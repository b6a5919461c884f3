"""Cervical SHAP per vertebra through the product path: the map lies on the vertebra's slices and
box in the study's geometry, it explains the run's own stage-2 input, and shuffled stage-2
weights change it (Adebayo et al.'s model-randomisation check).

The truth-region check (positive attribution on the fracture, above chance) is in
tests/test_explain_shap_cervical_truth.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.analysis.explain import explain
from app.analysis.request import single_input
from app.analysis.runner import run_analysis
from app.study import load

DEMO = Path(__file__).resolve().parents[1] / "resources/demo/cervical-fracture"
STUDY = DEMO / "phantom_fracture_C2_C6"


@pytest.fixture(scope="module")
def run():
    from app.engine.shap_maps import warm_up
    from models.cervical_fracture.adapter import CervicalFractureAdapter

    warm_up()
    adapter = CervicalFractureAdapter()
    series = load(STUDY).all_series()[0]
    request = single_input(adapter, series)
    return adapter, request, run_analysis(adapter, request)


def _labels_under(overlay, labelmap):
    """The run's vertebra label at every cell of the heatmap's grid (through world space)."""
    grid = overlay.image
    kk, jj, ii = np.mgrid[0 : grid.shape[0], 0 : grid.shape[1], 0 : grid.shape[2]]
    ijk = np.stack([ii, jj, kk], -1).reshape(-1, 3).astype(float)
    idx = np.round(labelmap.world_to_index(grid.index_to_world(ijk))).astype(int)
    lab = labelmap.array
    k, j, i = (np.clip(idx[:, n], 0, lab.shape[2 - n] - 1) for n in (2, 1, 0))
    return lab[k, j, i].reshape(grid.shape)


@pytest.mark.parametrize("name", ["C2", "C6"])
def test_map_lies_on_the_vertebra_in_the_study_geometry(run, name):
    adapter, request, result = run
    [ov] = explain(adapter, request, result, result.finding(name), "shap", cache=None)
    assert ov.slot == "ct" and ov.label == name and ov.colormap == "coolwarm"
    assert "blur(16,16)" in ov.name
    lo, hi = ov.value_range
    assert lo == -hi and hi == pytest.approx(float(np.abs(ov.image.array).max()))
    ct = request["ct"].image
    # the map's slices are the study slices stage 2 read, first to last
    first = ct.world_to_index(ov.image.index_to_world(np.zeros(3)))
    picked = result.extra["stage2_slices"][name]
    assert (
        first[2] == pytest.approx(min(picked))
        and ov.image.shape[0] == max(picked) - min(picked) + 1
    )
    # in plane it is the vertebra's box plus the crop margin: the vertebra fills a good part of
    # it (the CT's other voxels are almost all something else)
    under = _labels_under(ov, result.overlays[0].image)
    share = float((under == int(name[1])).mean())
    print(f"\n{name}: the vertebra fills {share:.2f} of its map's grid")
    assert share > 0.15
    box = result.extra["vertebra_boxes"][name]
    centre = ov.image.index_to_world(np.array([31.5, 31.5, 0.0]))
    ci, cj, _ = ct.world_to_index(centre)
    assert ci == pytest.approx((box["i0"] + box["i1"]) / 2 - 0.5, abs=0.6)
    assert cj == pytest.approx((box["j0"] + box["j1"]) / 2 - 0.5, abs=0.6)


def test_the_explained_input_is_the_one_the_run_classified(run):
    from app.engine.runtime import session_for
    from models.cervical_fracture.explain import stage2_input, stage2_predict

    adapter, request, result = run
    sess = session_for(adapter.manifest, "stage2.onnx")
    for name in ("C2", "C5"):
        crops, _, _ = stage2_input(request["ct"].image, result, name)
        p = stage2_predict(sess)(np.moveaxis(crops, 0, -1)[None])[0]
        assert p == pytest.approx(result.finding(name).probability, abs=1e-3)


def test_patient_overall_is_explained_by_its_top_vertebra(run):
    adapter, request, result = run
    top = max((f for f in result.findings if f.label != "patient_overall"),
              key=lambda f: f.probability)  # fmt: skip
    [ov] = explain(adapter, request, result, result.finding("patient_overall"), "shap")
    assert ov.label == top.label and "for patient_overall" in ov.name


def test_shuffled_stage2_weights_change_the_map(run):
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from app.engine.runtime import session_for
    from models.cervical_fracture.explain import vertebra_shap

    adapter, request, result = run
    model = onnx.load(str(adapter.manifest.verified_path("stage2.onnx")))
    rng = np.random.default_rng(0)
    for t in model.graph.initializer:
        arr = numpy_helper.to_array(t)
        if arr.dtype == np.float32 and arr.ndim >= 2:
            t.CopyFrom(
                numpy_helper.from_array(rng.permutation(arr.ravel()).reshape(arr.shape), t.name)
            )
    shuffled = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ct, finding = request["ct"].image, result.finding("C2")
    a = vertebra_shap(session_for(adapter.manifest, "stage2.onnx"), ct, result, finding)
    b = vertebra_shap(shuffled, ct, result, finding)
    x, y = a.image.array.ravel(), b.image.array.ravel()
    corr = float(np.corrcoef(x, y)[0, 1]) if y.std() > 0 else 0.0
    print(f"\nC2: trained vs shuffled stage-2 weights, map correlation {corr:.3f}")
    assert x.std() > 0 and corr < 0.5
