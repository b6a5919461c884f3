"""Hip phantom: anatomy on the right side of the image, AO subtypes that differ as AO says,
DICOM + truth.json through the project's loader."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.femur_ao.phantom import SUBTYPES, generate, write_demo, write_study

SMALL = (307, 375)


def _line_distance_to_head(sample, side: str) -> float:
    """Mean distance of fracture-line pixels to the femoral head centre, in head radii."""
    hc = np.array(sample.meta["head_centre_px"][side])
    jj, ii = np.nonzero(sample.fracture_mask)
    return float(np.hypot(ii - hc[0], jj - hc[1]).mean() / sample.meta["head_radius_px"])


def test_generate_is_deterministic_and_labelled():
    a = generate(3, shape=SMALL)
    b = generate(3, shape=SMALL)
    assert np.array_equal(a.image, b.image)
    assert a.image.dtype == np.uint16 and a.image.shape == SMALL
    assert set(a.labels) == {"right", "left"}
    assert not np.array_equal(a.image, generate(4, shape=SMALL).image)


def test_fracture_is_drawn_on_the_patient_side_radiologically():
    # Patient right is on the image LEFT on an AP view.
    s = generate(1, shape=SMALL, labels={"right": "B2", "left": "normal"})
    jj, ii = np.nonzero(s.fracture_mask)
    assert len(ii) > 0 and ii.max() < SMALL[1] / 2
    r, left = s.head_boxes["right"], s.head_boxes["left"]
    assert r[2] < SMALL[1] / 2 < left[0]
    # The head box holds the femoral head centre and the fracture line of a neck fracture.
    hc = s.meta["head_centre_px"]["right"]
    assert r[0] < hc[0] < r[2] and r[1] < hc[1] < r[3]
    assert np.all((ii >= r[0]) & (ii <= r[2]) & (jj >= r[1]) & (jj <= r[3]))
    normal = generate(1, shape=SMALL, labels={"right": "normal", "left": "normal"})
    assert not normal.fracture_mask.any()


def test_cortex_is_brighter_than_medulla_in_the_shaft():
    from scipy.signal import find_peaks

    s = generate(2, shape=(614, 750), labels={"right": "normal", "left": "normal"}, noise=0.0)
    hc = s.meta["head_centre_px"]["left"]
    px = s.spacing_mm[1]
    # A row through the left femoral shaft, 110 mm below the head centre.
    seg = s.image[int(hc[1] + 110 / px), int(hc[0]) :].astype(float)
    peaks, _ = find_peaks(seg, prominence=30)
    assert len(peaks) >= 2
    a, b = peaks[:2]
    assert 10 < (b - a) * px < 45  # two cortices one shaft diameter apart
    valley = seg[a:b].min()
    assert valley < min(seg[a], seg[b]) - 60  # the medulla between them is darker
    assert valley > seg[-1] + 500  # and still brighter than soft tissue / air


def test_neck_fractures_sit_nearer_the_head_than_trochanteric_ones():
    d = {
        st: np.mean(
            [
                _line_distance_to_head(
                    generate(seed, shape=SMALL, labels={"right": "normal", "left": st}), "left"
                )
                for seed in range(3)
            ]
        )
        for st in SUBTYPES
    }
    # B1 subcapital < B2 transcervical < B3 basicervical < A (trochanteric region)
    assert d["B1"] < d["B2"] < d["B3"] < min(d["A1"], d["A2"], d["A3"])


def test_trochanteric_subtypes_differ_in_fragments_and_obliquity():
    for seed in range(4):
        a1 = generate(seed, shape=SMALL, labels={"right": "normal", "left": "A1"})
        a2 = generate(seed, shape=SMALL, labels={"right": "normal", "left": "A2"})
        a3 = generate(seed, shape=SMALL, labels={"right": "normal", "left": "A3"})
        assert a1.meta["fracture_lines"]["left"] == 1
        assert a2.meta["fracture_lines"]["left"] >= 2  # multifragmentary: lesser trochanter off
        # On the patient-left femur (lateral = image right): A1 runs from the greater
        # trochanter down-medially; A3 is reverse oblique (down-laterally) or transverse.
        jj, ii = np.nonzero(a1.fracture_mask)
        assert np.corrcoef(ii, jj)[0, 1] < -0.9
        jj, ii = np.nonzero(a3.fracture_mask)
        assert np.corrcoef(ii, jj)[0, 1] > -0.5


def test_single_hip_view_keeps_one_side():
    s = generate(5, shape=SMALL, view="left", labels={"right": "normal", "left": "A2"})
    assert s.labels == {"left": "A2"} and s.view == "left"
    assert s.image.shape[1] < SMALL[1]
    b = s.head_boxes["left"]
    assert 0 <= b[0] < b[2] <= s.image.shape[1]
    with pytest.raises(ValueError, match="unknown class"):
        generate(0, shape=SMALL, labels={"right": "C1", "left": "normal"})


def test_write_study_roundtrips_through_the_loader(tmp_path):
    from app.findings.truth import load_truth
    from app.study import load

    s = generate(7, shape=SMALL, labels={"right": "A2", "left": "normal"})
    path = write_study(s, tmp_path / "study")
    series = load(path).all_series()[0]
    assert series.modality == "DX" and series.view_position == "AP"
    assert series.shape == (1, *SMALL)
    assert np.allclose(series.spacing_mm[1:], s.spacing_mm, atol=1e-3)
    assert np.array_equal(series.image.array[0], s.image)
    doc = json.loads((tmp_path / "study" / "truth.json").read_text())
    assert doc["task"] == "femur-ao" and doc["labels"] == {"right": "A2", "left": "normal"}
    truth = load_truth(tmp_path / "study", series.image)
    captions = sorted(b.caption for b in truth.overlays[0].boxes)
    assert captions == ["left", "right"]


def test_write_demo_writes_three_small_studies(tmp_path):
    paths = write_demo(tmp_path, seed=0)
    assert len(paths) == 3
    labels = [json.loads((p.parent / "truth.json").read_text())["labels"] for p in paths]
    assert {"right": "normal", "left": "normal"} in labels
    assert any(v.startswith("B") for lab in labels for v in lab.values())
    assert any(v.startswith("A") for lab in labels for v in lab.values())
    for p in paths:
        assert p.parent.parent.name == "femur-ao"
        assert p.stat().st_size < 3_000_000
