"""The spine adapter with the shipped demo weights: a demo study end to end through the product
path, one-view studies, other body parts and modalities, SHAP maps on both views, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.analysis.explain import explain
from app.analysis.request import resolve_inputs
from app.analysis.runner import run_analysis
from app.engine.adapter import AnalysisRequest, InputRejected
from app.findings import DEMO_DISCLAIMER, HeatmapOverlay, LabelMapOverlay
from app.findings.truth import load_truth
from app.study import load
from app.study.geometry import ImageVolume
from app.study.model import Series
from models.spine_xray.adapter import SpineXrayAdapter
from models.spine_xray.metrics import dice

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "resources" / "demo" / "spine-xray"
STUDY = DEMO / "02_damaged_L1_wedge"


@pytest.fixture(scope="module")
def adapter():
    return SpineXrayAdapter()


@pytest.fixture(scope="module")
def run(adapter):
    loaded = load(STUDY)
    request = resolve_inputs(adapter.spec, loaded, STUDY, adapter=adapter)
    return request, run_analysis(adapter, request)


def test_the_adapter_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['monai'] = None\n"
        "from models.spine_xray.adapter import SpineXrayAdapter\n"
        "from app.analysis.tasks import get_adapter\n"
        "assert type(get_adapter('spine-xray')) is SpineXrayAdapter\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_demo_study_gives_both_views_masks_on_the_truth(run):
    request, r = run
    assert request.inputs["ap"].view_position == "AP"
    assert request.inputs["lateral"].view_position in ("LL", "LAT", "RL")
    maps = {o.name: o for o in r.overlays if isinstance(o, LabelMapOverlay)}
    assert maps["AP structures"].slot == "ap" and maps["LAT structures"].slot == "lateral"
    for tag, slot in (("AP", "ap"), ("LAT", "lateral")):
        truth = {o.name: o for o in load_truth(STUDY / tag).overlays}
        ref = request.inputs[slot].image
        combined = maps[f"{tag} structures"]
        assert combined.image.shape == ref.shape
        assert np.allclose(combined.image.origin, ref.origin)
        assert set(np.unique(combined.image.array)) <= {0, *combined.labels}
        for name in truth:
            if name not in maps:
                continue  # the truth's level map
            pred = maps[name].image.array[0] > 0
            assert maps[name].slot == slot and maps[name].visible is False
            # Loose bounds: the point is that each mask lies on its structure in this view.
            assert dice(pred, truth[name].image.array[0] > 0) > 0.3, name
        assert dice(maps[f"{tag} Vertebra"].image.array[0] > 0,
                    truth[f"{tag} Vertebra"].image.array[0] > 0) > 0.8  # fmt: skip


def test_damaged_call_levels_and_provenance(run):
    request, r = run
    f = r.finding("damaged")
    assert f.group == "patient" and f.threshold == 0.5
    # The demo's L1 wedge is mild (anterior/posterior 0.77 in its truth): the measurements on
    # the predicted masks find it as the third body from the top (T11, T12, L1) whatever the
    # classifier's call.
    assert r.extra["suspected_level"]["name"] == "LAT vertebra 3", r.extra["vertebrae"]
    levels = next(o for o in r.overlays if o.name == "LAT vertebrae")
    names = [n for n, _ in levels.labels.values()]
    assert len(names) >= 5 and names[0] == "LAT vertebra 1"
    rows = [np.nonzero(levels.image.array[0] == k)[0].mean() for k in levels.labels]
    assert rows == sorted(rows)  # numbered from the top
    if f.region_id:  # a click on the finding centres the views on that vertebra
        assert f.region_id in names
    assert len(r.extra["vertebrae"]["lateral"]) == len(names)
    json.dumps(r.extra)
    assert r.provenance.disclaimer == DEMO_DISCLAIMER and DEMO_DISCLAIMER in r.summary
    assert set(r.provenance.inputs) == {"ap", "lateral"}
    assert {"segmentation", "classification"} <= set(r.provenance.timings_s)


def test_normal_demo_study_scores_lower_than_the_damaged_one(adapter, run):
    loaded = load(DEMO / "01_normal")
    r = run_analysis(
        adapter, resolve_inputs(adapter.spec, loaded, DEMO / "01_normal", adapter=adapter)
    )
    assert r.finding("damaged").probability < run[1].finding("damaged").probability


@pytest.mark.parametrize(("view", "missing"), [("AP", "a lateral radiograph"), ("LAT", "an AP")])
def test_study_with_one_view_names_the_missing_one(adapter, view, missing):
    loaded = load(STUDY / view)
    with pytest.raises(InputRejected) as err:
        resolve_inputs(adapter.spec, loaded, STUDY / view, adapter=adapter)
    text = str(err.value)
    assert "needs an AP and a lateral radiograph of one study" in text
    have = "an AP" if view == "AP" else "a lateral radiograph"
    assert f"this study has only {have}." in text
    assert missing in text


def _series(modality="DX", body_part="LSPINE", view="AP", shape=(1, 256, 200), kind="projection"):
    return Series("1.2.3", modality, "x", ImageVolume(np.zeros(shape, np.uint16)), kind=kind,
                  body_part=body_part, view_position=view)  # fmt: skip


@pytest.mark.parametrize("part", ["FOOT", "HIP", "Chest", "KNEE"])
def test_radiograph_of_another_body_part_is_declined_with_its_reason(adapter, part):
    with pytest.raises(InputRejected, match=f"BodyPartExamined={part.upper()}"):
        adapter.check_slot(adapter.spec.slot("ap"), _series(body_part=part))
    adapter.check_slot(adapter.spec.slot("ap"), _series(body_part="L-SPINE"))  # accepted
    adapter.check_slot(adapter.spec.slot("ap"), _series(body_part=""))  # many files leave it empty


def test_ct_mr_and_wrong_views_are_declined(adapter):
    with pytest.raises(InputRejected, match="CT volume with 40 slice"):
        adapter.check_slot(
            adapter.spec.slot("ap"), _series("CT", shape=(40, 64, 64), kind="volume")
        )
    with pytest.raises(InputRejected, match="MR"):
        adapter.check_slot(adapter.spec.slot("lateral"), _series("MR", view="", kind="volume",
                                                                 shape=(12, 64, 64)))  # fmt: skip
    with pytest.raises(InputRejected, match="AP view"):
        adapter.check_slot(adapter.spec.slot("lateral"), _series(view="AP"))


def test_shap_maps_for_both_views(adapter, run, monkeypatch):
    import models.spine_xray.adapter as mod

    monkeypatch.setattr(mod, "SHAP_MAX_EVALS", 120)  # fewer evaluations: the shape is tested
    request, r = run
    steps = []
    maps = explain(adapter, request, r, r.finding("damaged"), "shap",
                   progress=lambda s, f: steps.append(f), cache=None)  # fmt: skip
    assert [m.slot for m in maps] == ["ap", "lateral"]
    for m, slot in zip(maps, ("ap", "lateral"), strict=True):
        assert isinstance(m, HeatmapOverlay) and m.colormap == "coolwarm"
        # named as every SHAP layer is (shap_maps.signed_overlay): masker, evaluations, view
        assert m.name.startswith("SHAP damaged (blur(") and "120 evals" in m.name, m.name
        lo, hi = m.value_range
        assert lo == -hi and hi > 0
        assert np.isfinite(m.image.array).all() and np.abs(m.image.array).max() > 0
        ref = request.inputs[slot].image
        # The map's grid covers the radiograph: its far corner lands on the image's.
        far = m.image.index_to_world(np.array([m.image.shape[2] - 0.5, m.image.shape[1] - 0.5, 0]))
        ref_far = ref.index_to_world(np.array([ref.shape[2] - 0.5, ref.shape[1] - 0.5, 0]))
        assert np.allclose(far, ref_far, atol=4 * ref.spacing[1])
    assert steps and steps[-1] == 1.0
    with pytest.raises(Exception, match="SHAP or CAM"):  # CAM: tests/test_explain_gradcam_spine.py
        adapter.explain(request, r, r.finding("damaged"), "lime", None)


def test_cli_analyze_writes_both_label_maps(tmp_path):
    import os

    out = tmp_path / "o"
    env = dict(os.environ)
    subprocess.run([sys.executable, "-m", "app.cli", "analyze", str(DEMO / "01_normal"),
                    "--task", "spine-xray", "--out", str(out)], check=True, cwd=ROOT,
                   env=env)  # fmt: skip
    files = {p.name for p in out.rglob("*")}
    for stem in ("ap_structures", "lat_structures"):  # the combined map of each view
        assert any(f.startswith("labelmap_") and f.endswith(f"_{stem}.nii.gz") for f in files), (
            stem,
            sorted(files),
        )
    findings = json.loads(next(out.rglob("findings.json")).read_text())
    assert findings["task_id"] == "spine-xray"


def test_request_with_an_unknown_slot_is_refused(adapter, run):
    request, _ = run
    bad = AnalysisRequest("spine-xray", {**request.inputs, "mask": request.inputs["ap"]})
    with pytest.raises(InputRejected, match="no input named mask"):
        run_analysis(adapter, bad)
