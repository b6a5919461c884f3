"""CAM -> boxes (the paper's 60..180 procedure) and the paper's metrics, against hand values."""

from __future__ import annotations

import numpy as np
import pytest

from models.femur_ao.cam import boxes_from_map, cam_to_input, normalise_255, resize_bilinear
from models.femur_ao.metrics import average_precision, f1_scores, iou, localization_map


def test_f1_per_class_and_support_weighted_average():
    # The scikit-learn documentation example: per-class F1 [0.8, 0, 0], weighted 0.2667.
    y_true = [0, 1, 2, 0, 1, 2]
    y_pred = [0, 2, 1, 0, 0, 1]
    r = f1_scores(y_true, y_pred, [0, 1, 2])
    assert r["per_class"]["0"]["f1"] == pytest.approx(0.8)
    assert r["per_class"]["1"]["f1"] == 0 and r["per_class"]["2"]["f1"] == 0
    assert r["weighted_f1"] == pytest.approx(0.8 * 2 / 6)
    # Support weighting differs from the plain mean when classes are unbalanced.
    r = f1_scores(["a", "a", "a", "b"], ["a", "a", "b", "b"], ["a", "b"])
    f_a, f_b = 2 * 2 / (2 * 2 + 1), 2 * 1 / (2 * 1 + 1)
    assert r["weighted_f1"] == pytest.approx((3 * f_a + 1 * f_b) / 4)


def test_iou_and_average_precision_by_hand():
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0
    truth = {0: (0, 0, 10, 10), 1: (0, 0, 10, 10)}
    perfect = [(0, 0.9, (0, 0, 10, 10)), (1, 0.8, (0, 0, 10, 10))]
    assert localization_map(perfect, truth)["mAP"] == pytest.approx(1.0)
    # Ranked: a false positive first (score 0.9), then one true positive; one image missed.
    preds = [(0, 0.9, (50, 50, 60, 60)), (1, 0.5, (0, 0, 10, 10))]
    # precision/recall: (0, 0) then (0.5, 0.5) -> interpolated AP = 0.5 * 0.5
    assert average_precision(preds, truth, 0.5) == pytest.approx(0.25)
    # IoU must exceed the threshold: 50/150 = 0.33 counts at 0.25 but not at 0.5.
    half = [(0, 1.0, (5, 0, 15, 10))]
    assert average_precision(half, {0: (0, 0, 10, 10)}, 0.25) == pytest.approx(1.0)
    assert average_precision(half, {0: (0, 0, 10, 10)}, 0.5) == 0.0
    m = localization_map(half, {0: (0, 0, 10, 10)})
    assert m["mAP"] == pytest.approx(2 / 5)  # TP at 0.1 and 0.25 of the five thresholds


def test_boxes_keep_values_between_60_and_180():
    yy, xx = np.mgrid[0:64, 0:64]
    blob = np.exp(-((xx - 20) ** 2 + (yy - 40) ** 2) / (2 * 6.0**2))
    boxes = boxes_from_map(blob)
    assert len(boxes) == 1
    b = boxes[0]
    norm = normalise_255(blob)
    band = (norm >= 60) & (norm <= 180)
    jj, ii = np.nonzero(band)
    assert (b.u0, b.v0, b.u1, b.v1) == (ii.min(), jj.min(), ii.max() + 1, jj.max() + 1)
    assert b.u0 < 20 < b.u1 and b.v0 < 40 < b.v1  # the ring of the band surrounds the peak
    # Two separated blobs give two boxes; a flat map gives none.
    two = blob + np.exp(-((xx - 50) ** 2 + (yy - 10) ** 2) / (2 * 5.0**2))
    assert len(boxes_from_map(two)) == 2
    assert boxes_from_map(np.ones((32, 32))) == []


def test_cam_to_input_follows_the_stn_warp():
    cam = np.arange(16, dtype=float).reshape(4, 4)
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    up = cam_to_input(cam, identity, 32)
    assert np.allclose(up, resize_bilinear(cam, (32, 32)), atol=1e-5)
    # a-STN: half scale, shifted to the top-left quadrant: the map lands there, NaN elsewhere.
    theta = np.array([[0.5, 0, -0.5], [0, 0.5, -0.5]])
    m = cam_to_input(cam, theta, 32)
    assert (
        np.isfinite(m[:16, :16]).all() and np.isnan(m[16:, :]).all() and np.isnan(m[:, 16:]).all()
    )
    assert np.allclose(m[:16, :16], resize_bilinear(cam, (16, 16)), atol=1e-5)
    stack = cam_to_input(np.stack([cam, 2 * cam]), theta, 32)
    assert stack.shape == (2, 32, 32) and np.allclose(stack[1][:16, :16], 2 * m[:16, :16])
