"""Stage 2 sees the same inputs through the product path (DICOM written, loaded, adapter) as in
training and evaluation, and stray stage-1 voxels do not reach its crops."""

from __future__ import annotations

import numpy as np
import pytest

from app.analysis.one_study import load_study, request_for
from app.analysis.runner import run_on_series
from app.engine.runtime import Manifest, run_session, session_for
from models.cervical_fracture import pipeline as P
from models.cervical_fracture.adapter import WEIGHTS_DIR, CervicalFractureAdapter
from models.cervical_fracture.evaluate import evaluate
from models.cervical_fracture.inference import run_pipeline
from models.cervical_fracture.phantom import generate, write_study


def _block_labels() -> np.ndarray:
    labels = np.zeros((12, 40, 40), dtype=np.uint8)
    labels[2:10, 15:30, 12:28] = 3  # the vertebra: 8 x 15 x 16 = 1920 voxels
    return labels


def test_a_stray_voxel_does_not_widen_the_box():
    labels = _block_labels()
    clean = P.vertebra_regions(labels)["C3"]
    labels[6, 2, 20] = 3  # one voxel 13 rows in front of the body (stage 1 on the hyoid)
    with_speck = P.vertebra_regions(labels)["C3"]
    assert clean.box_work == (15, 12, 30, 28)
    assert with_speck.box_work == clean.box_work
    assert with_speck.slices_work.tolist() == clean.slices_work.tolist()
    assert with_speck.voxels == clean.voxels + 1  # the label map itself is left alone


def test_a_real_separate_piece_still_counts():
    labels = _block_labels()
    labels[4:8, 33:38, 18:22] = 3  # 80 voxels (4%): a process tip or a displaced fragment
    assert P.vertebra_regions(labels)["C3"].box_work == (15, 12, 38, 28)


@pytest.fixture(scope="module")
def both_paths(tmp_path_factory):
    """One held-out phantom in memory and through DICOM + loader + series choice."""
    sample = generate(900_003)
    folder = write_study(sample, tmp_path_factory.mktemp("cs") / "study")
    series = request_for(load_study(folder), CervicalFractureAdapter(), folder).primary
    return sample, series


def test_stage2_inputs_are_the_same_through_dicom(both_paths):
    sample, series = both_paths
    m = Manifest.load(WEIGHTS_DIR)
    s1, s2 = session_for(m, "stage1.onnx"), session_for(m, "stage2.onnx")
    seqs: dict[str, list[np.ndarray]] = {}

    def stage1(x):
        return run_session(s1, {"slices": x})[0]

    def stage2(x):
        seqs.setdefault("now", []).append(x)
        return run_session(s2, {"sequence": x})[0]

    outs = {}
    for key, ct in (("memory", sample.ct), ("dicom", series.image)):
        seqs["now"] = []
        outs[key] = run_pipeline(ct, stage1, stage2, require_all=False)
        seqs[key] = seqs.pop("now")
    mem, dcm = outs["memory"], outs["dicom"]
    assert series.image.shape == sample.ct.shape
    assert list(mem.vertebrae) == list(dcm.vertebrae) == list(P.VERTEBRAE)
    for name in P.VERTEBRAE:
        a, b = mem.vertebrae[name], dcm.vertebrae[name]
        assert a.picked_slices == b.picked_slices, name
        np.testing.assert_allclose(a.box_ji, b.box_ji, atol=0.02)
        assert abs(a.probability - b.probability) < 0.01, name
    for x, y in zip(seqs["memory"], seqs["dicom"], strict=True):
        # int16 storage rounds to 1 HU: at most 0.5 HU / 1800 HU window after windowing
        assert np.abs(x - y).max() < 1e-3


def test_adapter_boxes_match_the_truth_boxes(both_paths):
    """Stage 2 was trained on boxes from truth label maps; the adapter's must agree (the demo's
    C3 crop was 19 mm too tall because of one stray voxel and C3 was called fractured)."""
    sample, series = both_paths
    adapter = CervicalFractureAdapter()
    res = run_on_series(adapter, series)
    grid = P.make_working_grid(series.image)
    truth = P.vertebra_regions(P.labels_to_working(sample.labels.array, grid))
    tol = 1.5 * P.PIXEL_MM / series.image.spacing[1]  # about one working-grid pixel
    for name in P.VERTEBRAE:
        got = res.extra["vertebra_boxes"][name]
        want = P.study_box_for(truth[name], grid)
        np.testing.assert_allclose(
            [got["j0"], got["i0"], got["j1"], got["i1"]], want, atol=tol, err_msg=name
        )


def test_product_path_evaluation_separates_fractures(tmp_path):
    """Held-out phantoms through the product path: fractured vertebrae rank above intact ones."""
    metrics = evaluate(WEIGHTS_DIR, n=3, seed_base=900_003, path="dicom")
    assert metrics["path"] == "dicom" and metrics["studies_with_missing_vertebra"] == 0
    assert metrics["adapter_labelmap_differs_from_evaluation"] == 0
    assert metrics["vertebra_positives"] >= 1
    assert metrics["vertebra_fracture_auc"] > 0.9
    assert min(metrics["dice"]["ordered"]["per_vertebra"].values()) > 0.8
