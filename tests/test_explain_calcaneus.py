"""Calcaneus explanations (issue 12): SHAP (models/calcaneus_msrt/explain.py) and the MSRT
attention map ("cam"), with the sanity checks that fail on a broken explainer.

- Truth region: single-label phantoms (models/calcaneus_msrt/phantom.py records which label drew
  each fracture pixel), their rough masks given as the paper's mask input. Over the finding's
  map, the share of the positive attribution inside that label's truth region (mapped onto the
  map's cells: a cell is in when any of its pixels is) is compared with the region's share of
  the cells, what an even map scores. The same map turned over is the control.
- Model randomisation (Adebayo et al.): the classifier's weights shuffled, the maps must change.
- The CLI writes both maps (NPY + PNG with geometry).

Measured with the shipped weights (retrained with the attention maps' own pooled loss,
``train.msrt_loss``; `pytest -s` on this file): SHAP on seeds 11, 12, 14 30.35x, 16.48x, 21.17x
chance (mean 22.67x; turned over 0.08x). The attention maps over four phantoms per label (seeds
100-123): mean 1.51x chance, per label Tuberosity 1.95x, Primary Line 1.14x, Collapse 2.15x,
Body 0.62x, Posterior Articular Surface 1.46x, Tongue 1.75x; turned over 1.30x (Primary Line's
turned map lands on its line, 4.57x). The weights before that loss: mean 0.69x, one label in
27 cases above chance. So the maps now lean towards their regions on five labels of six, weakly;
``test_attention_maps_lean_towards_their_regions`` keeps that, and
``test_attention_map_lies_on_the_truth_region`` records as an expected failure that they do not
yet localise every label or beat the turned-over control.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.analysis.explain import explain
from app.analysis.runner import run_analysis
from app.cli import main
from app.engine.adapter import AnalysisRequest
from app.findings.types import HeatmapOverlay
from app.study.model import Series
from models.calcaneus_msrt import phantom
from models.calcaneus_msrt.adapter import MODEL_FILE, WEIGHTS_DIR, CalcaneusAdapter
from models.calcaneus_msrt.labels import LABELS
from models.calcaneus_msrt.preprocess import pad_square, resize_area
from tests.gradcam_helpers import correlation, mass_share, shuffled_weights

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources/demo/calcaneus-fracture/01_normal"
CASES = {11: "Primary Line", 12: "Collapse Fracture Block", 14: "Calcaneal Tuberosity"}
MIN_SHAP_OVER_CHANCE = 5.0  # measured mean 22.67x; an even map 1.0x, turned over 0.08x
MIN_ATTENTION_OVER_CHANCE = 1.2  # measured mean 1.51x over 24 phantoms (before the map loss 0.69x)
MIN_LABELS_ABOVE_CHANCE = 4  # of six; measured 5 (Calcaneal Body 0.62x is not)
ATTENTION_SEEDS = {100 + n: LABELS[n % 6] for n in range(24)}  # four single-label phantoms each
MAX_RANDOMISED_CORRELATION = 0.5


@pytest.fixture(autouse=True)
def _secret(monkeypatch, tmp_path):
    monkeypatch.setenv("OSTEOVIEW_SECRET_FILE", str(tmp_path / "secret" / "pseudonym.key"))


def _request(sample: phantom.CalcaneusSample) -> AnalysisRequest:
    image = Series("1.2.826.0.1.1", "DX", "calcaneus lateral", sample.volume(), "projection")
    image.view_position = "LL"
    mask = sample.volume(sample.rough_mask.astype(np.uint8))
    inputs = {"radiograph": image, "fracture_mask": Series("1.2.826.0.1.2", "SEG", "rough mask",
                                                           mask, "labelmap")}  # fmt: skip
    return AnalysisRequest("calcaneus-fracture", inputs, origins=dict.fromkeys(inputs, "user"))


def _on_grid(region: np.ndarray, overlay: HeatmapOverlay, image) -> np.ndarray:
    """The truth region (on the radiograph) on the overlay's cells: a cell is in when any of its
    pixels is. Checks first that the overlay's cell (r, c) covers pixels [r f, (r + 1) f)."""
    n_rows, n_cols = overlay.image.shape[1:3]
    f = max(region.shape) / 128
    first = image.world_to_index(overlay.image.index_to_world(np.array([0.0, 0.0, 0.0])))
    assert np.allclose(first[:2], (f - 1) / 2, atol=1e-6)
    cells = resize_area(pad_square(region.astype(np.float32), 0.0), 128) > 0
    return cells[:n_rows, :n_cols]


def _maps(adapter, seeds=CASES):
    """Per case: (label, probability, region on the map's cells, SHAP map, attention map)."""
    out = []
    for seed, label in seeds.items():
        sample = phantom.generate(seed, labels={label: True})
        request = _request(sample)
        result = run_analysis(adapter, request)
        finding = result.finding(label)
        [shap] = explain(adapter, request, result, finding, "shap", cache=None)
        [cam] = explain(adapter, request, result, finding, "cam", cache=None)
        truth = sample.fracture_regions == LABELS.index(label) + 1
        region = _on_grid(truth, shap, sample.volume())
        assert shap.image.shape == cam.image.shape  # one grid for both maps
        out.append((label, finding.probability, region, shap.image.array[0], cam.image.array[0]))
    return out


@pytest.fixture(scope="module")
def trained():
    from app.engine.shap_maps import warm_up

    warm_up()
    return _maps(CalcaneusAdapter())


def _over_chance(cases, which: int) -> tuple[list[float], list[float]]:
    shares, turned = [], []
    for label, p, region, *maps in cases:
        values = maps[which]
        share, chance = mass_share(values, region)
        flipped, _ = mass_share(values[::-1, ::-1], region)
        shares.append(share / chance)
        turned.append(flipped / chance)
        name = ("SHAP", "attention")[which]
        print(f"\n{name} {label} p={p:.3f}: share {share:.4f}, chance {chance:.4f}: "
              f"{shares[-1]:.2f}x; turned over {turned[-1]:.2f}x")  # fmt: skip
    print(f"{name}: mean {np.mean(shares):.2f}x chance; turned over {np.mean(turned):.2f}x")
    return shares, turned


def test_shap_lies_on_the_truth_region(trained):
    shares, turned = _over_chance(trained, 0)
    assert all(p >= 0.5 for _, p, *_ in trained)  # the findings explained are called
    assert np.mean(shares) > MIN_SHAP_OVER_CHANCE
    assert np.mean(shares) > np.mean(turned)


@pytest.fixture(scope="module")
def attention_cases():
    """Per case (label, over chance, turned over) for the attention map alone (no SHAP)."""
    adapter, out = CalcaneusAdapter(), []
    for seed, label in ATTENTION_SEEDS.items():
        sample = phantom.generate(seed, labels={label: True})
        request = _request(sample)
        result = run_analysis(adapter, request)
        [cam] = explain(adapter, request, result, result.finding(label), "cam", cache=None)
        truth = sample.fracture_regions == LABELS.index(label) + 1
        region = _on_grid(truth, cam, sample.volume())
        values = cam.image.array[0]
        share, chance = mass_share(values, region)
        turned, _ = mass_share(values[::-1, ::-1], region)
        out.append((label, share / chance, turned / chance))
    per_label = {lab: float(np.mean([r for la, r, _ in out if la == lab])) for lab in LABELS}
    print(
        f"\nattention over chance per label: { {k: round(v, 2) for k, v in per_label.items()} }; "
        f"mean {np.mean([r for _, r, _ in out]):.2f}x, turned {np.mean([t for *_, t in out]):.2f}x"
    )
    return out, per_label


def test_attention_maps_lean_towards_their_regions(attention_cases):
    cases, per_label = attention_cases
    assert np.mean([r for _, r, _ in cases]) > MIN_ATTENTION_OVER_CHANCE
    assert sum(v > 1.0 for v in per_label.values()) >= MIN_LABELS_ABOVE_CHANCE, per_label


@pytest.mark.xfail(
    strict=True,
    reason="measured: not every label's attention map is above chance (Calcaneal Body 0.62x), "
    "nor is their mean twice the turned-over map's (1.51x against 1.30x); SHAP 22.67x",
)
def test_attention_map_lies_on_the_truth_region(attention_cases):
    cases, per_label = attention_cases
    assert all(v > 1.0 for v in per_label.values()), per_label
    assert np.mean([r for _, r, _ in cases]) > 2 * np.mean([t for *_, t in cases])


def test_shuffled_weights_change_both_maps(trained, tmp_path):
    folder = shuffled_weights(WEIGHTS_DIR, tmp_path / "w", [MODEL_FILE])
    [(label, p, _, shap_r, cam_r)] = _maps(CalcaneusAdapter(folder), {11: CASES[11]})
    _, _, _, shap_t, cam_t = trained[0]
    r_shap, r_cam = correlation(shap_t, shap_r), correlation(cam_t, cam_r)
    print(f"\nshuffled weights, {label} p={p:.3f}: SHAP r={r_shap:.3f} (peak |value| "
          f"{np.abs(shap_r).max():.2e}, trained {np.abs(shap_t).max():.2e}), attention "
          f"r={r_cam:.3f}")  # fmt: skip
    assert abs(r_shap) < MAX_RANDOMISED_CORRELATION
    assert abs(r_cam) < MAX_RANDOMISED_CORRELATION


def test_cli_writes_both_maps(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["analyze", str(DEMO), "--task", "calcaneus-fracture", "--out", str(out),
               "--explain", "all"])  # fmt: skip
    printed = capsys.readouterr().out
    assert rc == 0, printed
    doc = json.loads((out / "findings.json").read_text())
    records = doc["extra"]["explanations"]
    assert {r["method"] for r in records} == {"cam", "shap"}
    assert all("overlays" in r for r in records), records
    [label] = {r["finding"] for r in records}
    named = {o["name"]: o for o in doc["overlays"]}
    [shap] = [o for name, o in named.items() if name.startswith(f"SHAP {label} (blur(16,16)")]
    cam = named[f"Attention {label}"]
    for o in (shap, cam):
        values = np.load(out / o["npy"])
        assert values.shape == (1, 128, 128) and o["slot"] == "radiograph"
        assert (out / o["png"]).stat().st_size > 0 and o["geometry"]
    assert shap["colormap"] == "coolwarm" and shap["value_range"][0] == -shap["value_range"][1]
    assert "image and mask channels together" in shap["name"]
    info = doc["extra"]["shap"][label]
    assert info["evals"] >= 400 and info["masker"] == "blur(16,16)" and info["why"]
    assert f"explained {label} by shap" in printed
