"""Pre/post-processing shared by training and the adapter: grids, level order, slice picking."""

from __future__ import annotations

import numpy as np
import pytest

from app.study.geometry import ImageVolume
from models.cervical_fracture import pipeline as P


def _ct(shape=(200, 256, 256), spacing=(0.8, 0.6, 0.6), flip_k=False):
    direction = np.diag([1.0, 1.0, -1.0 if flip_k else 1.0])
    arr = np.full(shape, -1000.0, dtype=np.float32)
    kk, jj, ii = np.indices(shape)
    body = ((jj - shape[1] / 2) ** 2 + (ii - shape[2] / 2) ** 2) < (shape[1] / 3) ** 2
    arr[body] = 40.0
    return ImageVolume(arr, spacing, np.array([10.0, -20.0, 300.0]), direction)


def test_working_grid_has_the_working_spacing_and_maps_back():
    ct = _ct()
    grid = P.make_working_grid(ct)
    assert grid.axes[1].count == grid.axes[2].count == P.WORK_SIZE
    assert grid.axes[0].step * ct.spacing[0] == pytest.approx(P.SLICE_MM)
    assert grid.axes[1].step * ct.spacing[1] == pytest.approx(P.PIXEL_MM)
    work = P.to_working(ct, grid)
    assert work.shape == (grid.axes[0].count, P.WORK_SIZE, P.WORK_SIZE)
    assert 0.0 <= work.min() and work.max() <= 1.0


def test_labels_survive_study_to_working_to_study():
    ct = _ct(shape=(120, 160, 160), spacing=(1.0, 0.8, 0.8))
    labels = np.zeros(ct.shape, dtype=np.uint8)
    labels[30:60, 50:90, 60:100] = 3  # a 30 x 32 x 32 mm block
    labels[70:100, 60:80, 70:90] = 5
    grid = P.make_working_grid(ct)
    work = P.labels_to_working(labels, grid)
    back = P.labels_to_study(work, grid)
    assert back.shape == ct.shape
    for c in (3, 5):
        a, b = labels == c, back == c
        dice = 2 * (a & b).sum() / (a.sum() + b.sum())
        assert dice > 0.9
        # the centre of mass stays within a voxel or two of where it was
        np.testing.assert_allclose(np.argwhere(a).mean(0), np.argwhere(b).mean(0), atol=1.5)


def test_stage1_inputs_are_slice_and_neighbours():
    work = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((5, 4, 4), np.float32)
    x = P.stage1_inputs(work)
    assert x.shape == (5, 3, 4, 4)
    assert x[2, :, 0, 0].tolist() == [1, 2, 3]
    assert x[0, :, 0, 0].tolist() == [0, 0, 1]  # edges repeat
    assert x[4, :, 0, 0].tolist() == [3, 4, 4]


def _spine_probs(superior_high: bool = True):
    """Fake stage-1 output: C2 on top, five look-alike subaxial vertebrae, two thoracic ones.

    Each vertebra is a 4-slice block separated by 2-slice discs; the network is sure about C2
    and T-spine ("other") but spreads C3..C7 evenly (what a 2.5D net does on look-alikes).
    A small fragment (a split-off spinous process) sits beside the third subaxial block.
    """
    truth = [2, 3, 4, 5, 6, 7, 8, 8]  # top to bottom
    k = 6 * len(truth)
    probs = np.zeros((k, 9, 16, 16), dtype=np.float32)
    probs[:, 0] = 1.0
    labels = np.zeros((k, 16, 16), dtype=np.uint8)
    for n, lab in enumerate(truth):
        ks = slice(k - 6 * n - 5, k - 6 * n - 1)  # inferior is low k when superior_high
        probs[ks, 0, 4:10, 4:10] = 0.0
        if lab in (2, 8):
            probs[ks, lab, 4:10, 4:10] = 1.0
        else:
            probs[ks, 3:8, 4:10, 4:10] = 0.2
        labels[ks, 4:10, 4:10] = lab
    frag = slice(k - 6 * 3 - 4, k - 6 * 3 - 2)
    probs[frag, 0, 12:14, 12:15] = 0.0
    probs[frag, 3:8, 12:14, 12:15] = 0.2
    labels[frag, 12:14, 12:15] = truth[3]
    if not superior_high:
        probs, labels = probs[::-1].copy(), labels[::-1].copy()
    return probs, labels


@pytest.mark.parametrize("superior_high", [True, False])
def test_level_order_labels_look_alike_vertebrae_by_their_order(superior_high):
    probs, truth = _spine_probs(superior_high)
    raw = P.labels_from_probs(probs, superior_high, ordered=False)
    fixed = P.labels_from_probs(probs, superior_high, ordered=True)
    fg = truth > 0
    assert (raw[fg] == truth[fg]).mean() < 0.6  # the raw argmax cannot tell C4 from C6
    assert np.array_equal(fixed, truth)


def test_ordered_assignment_skips_a_missing_level_only_when_it_must():
    uniform = np.log(np.full((5, 6), 1 / 6))
    assert P._ordered_assignment(uniform) == [3, 4, 5, 6, 7]
    # the last component is clearly thoracic and the one before clearly C7: C6 is skipped
    logq = np.log(np.full((4, 6), 0.01))
    logq[:2] = np.log(1 / 6)
    logq[2, 4] = 0.0
    logq[3, 5] = 0.0
    assert P._ordered_assignment(logq) == [3, 4, 7, 8]


def test_vertebra_regions_use_the_half_share_rule():
    labels = np.zeros((10, 20, 20), dtype=np.uint8)
    sizes = [2, 6, 10, 10, 9, 4, 1]  # per-slice widths of C3 (share: 0.04, 0.36, 1, 1, 0.81, ...)
    for k, w in enumerate(sizes):
        labels[k, 5 : 5 + 10, 5 : 5 + w] = 3
    regions = P.vertebra_regions(labels, min_voxels=10)
    assert list(regions) == ["C3"]
    # shares (w^1 * 10 pixels / 100): 0.2, 0.6, 1, 1, 0.9, 0.4, 0.1 -> slices 1..4 pass > 0.5
    assert regions["C3"].slices_work.tolist() == [1, 2, 3, 4]
    assert regions["C3"].box_work == (5, 5, 15, 15)


def test_pick_slices_spreads_or_repeats_evenly():
    picked = P.pick_slices(np.arange(100, 148))
    assert len(picked) == 24 and picked[0] == 100 and picked[-1] == 147
    assert np.all(np.diff(picked) > 0)
    short = P.pick_slices(np.arange(10, 20))
    assert len(short) == 24 and set(short.tolist()) == set(range(10, 20))
    assert np.all(np.diff(short) >= 0)


def test_stage2_sequence_stacks_triplets():
    crops = np.arange(24, dtype=np.float32)[:, None, None] * np.ones((24, 4, 4), np.float32)
    seq = P.stage2_sequence(crops)
    assert seq.shape == (8, 3, 4, 4)
    assert seq[1, :, 0, 0].tolist() == [3, 4, 5]


def test_patient_probability_is_noisy_or_over_top_n():
    p = np.array([0.9, 0.1, 0.2, 0.05, 0.0, 0.3, 0.1])
    top1 = P.patient_probability(p, top_n=1)
    assert top1 == pytest.approx(0.9)
    top2 = P.patient_probability(p, top_n=2)
    assert top2 == pytest.approx(1 - 0.1 * 0.7)
    all7 = P.patient_probability(p, top_n=7)
    assert all7 == pytest.approx(1 - np.prod(1 - p))
    assert top1 <= top2 <= all7


def test_crop_covers_the_box():
    hu = np.full((5, 100, 100), -1000.0, dtype=np.float32)
    hu[:, 40:60, 20:50] = 1000.0
    crops = P.crop_slices(hu, np.array([0, 2, 4]), (40.0, 20.0, 60.0, 50.0), size=32, margin=0.0)
    assert crops.shape == (3, 32, 32)
    bone = P.window(np.float32(1000.0))
    assert crops[:, 2:-2, 2:-2].min() == pytest.approx(bone)  # the bright box fills the crop
