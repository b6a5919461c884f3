"""Spine Grad-CAM (explain method "cam") through the product path, with the sanity checks that
fail on a broken explainer:

- truth region: on damaged phantoms the damaged vertebra is known on both views. The share of
  the map's mass on it, over the share of the film it covers (what an even map would score),
  was measured at 1.93 on average (seeds 1-12, both views; per map 0.74-3.24); an even map
  scores 1. The map lies on the spine, so that alone is not enough: its density on the damaged
  vertebra over its density on all the vertebrae was 1.27 (0.56-2.60; the AP maps pick the
  level better than the lateral ones), and 0.92 for the same maps turned upside down;
- model randomisation (Adebayo et al. 2018): the classifier and its head with their weights
  shuffled give maps that do not correlate with the trained ones (mean correlation measured at
  0.05 over the same twelve maps);
- the maps lie on each view's radiograph (slot, grid), in [0, 1] on one scale for both views;
- ``analyze --explain cam`` writes them as NPY + PNG with their geometry.

The figures above are the classifier before its mild-wedge retraining. The shipped classifier
(25 epochs with mild wedges, models/spine_xray/MODEL_CARD.md) measured 1.64x chance and 1.28x
the spine's density over the same 24 maps, correlation 0.00 with shuffled weights (`pytest -s`).
"""

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
from app.findings import HeatmapOverlay
from app.study import load
from tests.gradcam_helpers import correlation, mass_share, shuffled_weights

ROOT = Path(__file__).resolve().parents[1]
SEEDS = tuple(range(1, 13))
MIN_OVER_CHANCE = (
    1.3  # measured 1.64 (1.93 before the retraining; module docstring); an even map scores 1.0
)
MIN_OVER_SPINE = 1.1  # measured 1.28 (1.27 before); the maps upside down 0.92
MAX_RANDOMISED_CORRELATION = 0.5


@pytest.fixture(scope="module")
def adapter():
    from models.spine_xray.adapter import SpineXrayAdapter

    return SpineXrayAdapter()


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """(sample, request) for damaged phantoms, written as DICOM and loaded as a user would."""
    from models.spine_xray import phantom
    from models.spine_xray.adapter import SpineXrayAdapter

    spec = SpineXrayAdapter.spec
    cases = []
    for seed in SEEDS:
        sample = phantom.generate(seed, damaged=True)
        folder = phantom.write_study(sample, tmp_path_factory.mktemp(f"spine_{seed}"))
        cases.append((sample, resolve_inputs(spec, load(folder), folder)))
    return cases


def _truth_under(overlay: HeatmapOverlay, series, truth: np.ndarray) -> np.ndarray:
    """The truth mask (on the radiograph's pixels) at each cell of the map, through world space."""
    grid = overlay.image
    jj, ii = np.mgrid[0 : grid.shape[1], 0 : grid.shape[2]]
    ijk = np.stack([ii, jj, np.zeros_like(ii)], -1).reshape(-1, 3).astype(float)
    idx = np.round(series.image.world_to_index(grid.index_to_world(ijk))).astype(int)
    j = np.clip(idx[:, 1], 0, truth.shape[0] - 1)
    i = np.clip(idx[:, 0], 0, truth.shape[1] - 1)
    return truth[j, i].reshape(grid.shape[1:])


def test_the_map_lies_on_the_damaged_vertebra(adapter, damaged):
    from models.spine_xray.anatomy import LEVELS

    over_film, over_spine = [], []
    for sample, request in damaged:
        result = run_analysis(adapter, request)
        maps = explain(adapter, request, result, result.finding("damaged"), "cam", cache=None)
        level = LEVELS.index(sample.damaged_level) + 1
        for ov, levels in zip(maps, (sample.ap_levels, sample.lat_levels), strict=True):
            values = ov.image.array[0]
            share, chance = mass_share(values, _truth_under(ov, request[ov.slot], levels == level))
            on_spine, spine = mass_share(values, _truth_under(ov, request[ov.slot], levels > 0))
            over_film.append(share / chance)
            over_spine.append((share / chance) / (on_spine / spine))
            print(f"\nseed {sample.seed} {sample.damaged_level} {ov.slot}: share {share:.3f}, "
                  f"chance {chance:.3f}: {over_film[-1]:.2f}x; {over_spine[-1]:.2f}x the "
                  "spine's density")  # fmt: skip
    print(f"mean {np.mean(over_film):.2f}x chance, {np.mean(over_spine):.2f}x the spine's "
          f"density over {len(over_film)} maps")  # fmt: skip
    assert np.mean(over_film) > MIN_OVER_CHANCE
    assert np.mean(over_spine) > MIN_OVER_SPINE


def test_maps_on_both_radiographs_on_one_scale(adapter, damaged):
    _, request = damaged[4]
    result = run_analysis(adapter, request)
    steps = []
    maps = explain(adapter, request, result, result.finding("damaged"), "cam",
                   progress=lambda s, f: steps.append(s), cache=None)  # fmt: skip
    assert [m.slot for m in maps] == ["ap", "lateral"]
    peaks = []
    for m in maps:
        assert isinstance(m, HeatmapOverlay) and m.colormap == "jet" and m.label == "damaged"
        assert m.value_range == (0.0, 1.0) and m.name.startswith("Grad-CAM damaged")
        values = m.image.array
        assert np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1
        peaks.append(float(values.max()))
        ref = request[m.slot].image  # the grid spans the radiograph, corner to corner
        far = m.image.index_to_world(np.array([m.image.shape[2] - 0.5, m.image.shape[1] - 0.5, 0]))
        ref_far = ref.index_to_world(np.array([ref.shape[2] - 0.5, ref.shape[1] - 0.5, 0]))
        assert np.allclose(far, ref_far, atol=4 * ref.spacing[1])
    assert max(peaks) == pytest.approx(1.0, abs=0.02)  # one view holds the common peak
    assert any("Grad-CAM" in s for s in steps)


def test_shuffled_weights_change_the_map(adapter, damaged, tmp_path):
    from models.spine_xray.adapter import SpineXrayAdapter
    from models.spine_xray.export import FILES, GRADCAM_HEAD

    shuffled = SpineXrayAdapter(
        shuffled_weights(adapter.weights_dir, tmp_path / "w", [FILES["classifier"], GRADCAM_HEAD])
    )
    corrs = []
    for sample, request in damaged[:6]:
        result = run_analysis(adapter, request)
        finding = result.finding("damaged")
        trained = explain(adapter, request, result, finding, "cam", cache=None)
        randomised = explain(shuffled, request, result, finding, "cam", cache=None)
        for a, b in zip(trained, randomised, strict=True):
            assert a.image.array.std() > 0
            corrs.append(correlation(a.image.array, b.image.array))
            print(
                f"\nseed {sample.seed} {a.slot}: trained vs shuffled, correlation {corrs[-1]:.2f}"
            )
    # measured: mean 0.05, one map of twelve at 0.80 (seed 5 lateral, a faint map there)
    assert np.mean(corrs) < MAX_RANDOMISED_CORRELATION


def test_cli_explain_cam_writes_maps_with_geometry(tmp_path):
    study = ROOT / "resources/demo/spine-xray/02_damaged_L1_wedge"
    out = tmp_path / "o"
    subprocess.run([sys.executable, "-m", "app.cli", "analyze", str(study), "--task",
                    "spine-xray", "--out", str(out), "--explain", "cam"],
                   check=True, cwd=ROOT, capture_output=True, timeout=300)  # fmt: skip
    doc = json.loads((out / "findings.json").read_text())
    cams = [o for o in doc["overlays"] if o["name"].startswith("Grad-CAM damaged")]
    assert {o["slot"] for o in cams} == {"ap", "lateral"}
    for o in cams:
        values = np.load(out / o["npy"])
        assert values.max() <= 1 and (out / o["png"]).stat().st_size > 0
        assert "spacing" in json.dumps(o) and "origin" in json.dumps(o)
