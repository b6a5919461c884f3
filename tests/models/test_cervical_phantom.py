"""Neck CT phantoms: anatomy, HU, fractures, LPS geometry, DICOM + truth.json round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.findings.truth import load_truth
from app.study import load
from models.cervical_fracture.phantom import VERTEBRAE, generate, write_demo, write_study


@pytest.fixture(scope="module")
def sample():
    return generate(7, fractures=["C2", "C6"], shape=96)


def test_labels_c1_to_c7_ordered_along_the_body_axis(sample):
    lab = sample.labels.array
    present = set(np.unique(lab).tolist())
    assert {1, 2, 3, 4, 5, 6, 7, 8} <= present
    # direction is identity: k grows toward Superior, so C1 sits above C7
    z = [np.nonzero(lab == c)[0].mean() for c in range(1, 8)]
    assert all(a > b for a, b in zip(z, z[1:], strict=False))
    assert sample.ct.orientation_letters() == ("L", "P", "S")


def test_bone_has_cortical_shell_and_cancellous_core(sample):
    ct, lab = sample.ct.array, sample.labels.array
    c4 = lab == 4
    hu = ct[c4]
    assert np.percentile(hu, 95) > 800  # cortical shell
    # the core of the C4 body: voxels far from the label boundary
    from scipy.ndimage import binary_erosion

    core = binary_erosion(c4, iterations=2)
    assert 120 < np.median(ct[core]) < 450
    assert np.median(ct[lab == 0][::50]) < 100  # soft tissue and air outside the spine


def test_fracture_changes_only_the_chosen_vertebra():
    a = generate(11, fractures=[], shape=96)
    b = generate(11, fractures=["C5"], shape=96)
    assert b.fractures["C5"] == 1 and sum(b.fractures.values()) == 1
    assert a.patient_overall == 0 and b.patient_overall == 1
    changed = a.labels.array != b.labels.array
    assert changed.sum() > 20
    # every changed label voxel belongs to C5 in one of the two (gap or shifted fragment)
    touched = np.union1d(a.labels.array[changed], b.labels.array[changed])
    assert set(touched.tolist()) <= {0, 5}


def test_random_phantoms_vary_and_are_reproducible():
    a1, a2, b = generate(3, shape=64), generate(3, shape=64), generate(4, shape=64)
    assert np.array_equal(a1.ct.array, a2.ct.array)
    assert a1.fractures == a2.fractures
    assert a1.ct.shape != b.ct.shape or not np.array_equal(a1.ct.array, b.ct.array)


def test_write_study_round_trips_through_the_loader(tmp_path, sample):
    folder = write_study(sample, tmp_path / "study")
    result = load(folder)
    cts = [s for s in result.all_series() if s.modality == "CT" and s.kind == "volume"]
    assert len(cts) == 1
    ct = cts[0].image
    assert ct.shape == sample.ct.shape
    np.testing.assert_allclose(ct.spacing, sample.ct.spacing, atol=1e-3)
    np.testing.assert_allclose(ct.origin, sample.ct.origin, atol=1e-3)
    np.testing.assert_allclose(ct.array, np.round(sample.ct.array), atol=1.0)
    truth = load_truth(folder, reference=ct)
    assert truth.labels == {**{v: sample.fractures[v] for v in VERTEBRAE}, "patient_overall": 1}
    labelmap = truth.overlays[0].image
    # the truth label map lands on the same world positions as the CT
    np.testing.assert_allclose(labelmap.affine_lps(), ct.affine_lps(), atol=1e-3)
    assert np.array_equal(labelmap.array, sample.labels.array)


def test_write_demo_makes_two_small_studies(tmp_path):
    paths = write_demo(tmp_path, seed=0)
    assert len(paths) == 2
    labels = [json.loads((p / "truth.json").read_text())["labels"] for p in paths]
    assert sorted(lab["patient_overall"] for lab in labels) == [0, 1]
    for p in paths:
        assert p.parent.name == "cervical-fracture"
        n_files = len(list(p.glob("*.dcm")))
        assert 60 <= n_files <= 140
        assert sum(f.stat().st_size for f in p.iterdir()) < 6_000_000
