"""Multi-label metrics on vectors worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from models.calcaneus_msrt.metrics import average_precision, choose_thresholds, multilabel_report

# Four images, three labels.
Y = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 0]])
S = np.array([[0.9, 0.2, 0.6], [0.4, 0.7, 0.3], [0.6, 0.4, 0.8], [0.1, 0.6, 0.2]])
# Calls at 0.5: [[1,0,1],[0,1,0],[1,0,1],[0,1,0]]
#   label 0: TP 2, FP 0, FN 0 -> P 1, R 1, F1 1; accuracy 4/4
#   label 1: TP 1 (img 1), FP 1 (img 3), FN 1 (img 2) -> P 1/2, R 1/2, F1 1/2; accuracy 2/4
#   label 2: TP 1 (img 0), FP 1 (img 2), FN 1 (img 1) -> P 1/2, R 1/2, F1 1/2; accuracy 2/4
# Exact match: image 0 only ([1,0,1] == [1,0,1]); image 3 calls label 1 -> 1/4.
# Micro: TP 4, FP 2, FN 2 -> P 4/6, R 4/6, F1 2/3.
# AP label 0: scores 0.9 (+), 0.6 (+), 0.4, 0.1 -> 1.
# AP label 1: ranking 0.7 (+), 0.6 (-), 0.4 (+), 0.2 -> P at the positives 1 and 2/3 -> (1 + 2/3)/2.
# AP label 2: ranking 0.8 (-), 0.6 (+), 0.3 (+), 0.2 -> P 1/2 and 2/3 -> (1/2 + 2/3)/2.
AP = [1.0, (1 + 2 / 3) / 2, (1 / 2 + 2 / 3) / 2]


def test_average_precision_by_hand():
    for k in range(3):
        assert average_precision(Y[:, k], S[:, k]) == pytest.approx(AP[k])
    # Ties count together: two images at one score, one positive -> precision 1/2 at recall 1.
    assert average_precision(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert np.isnan(average_precision(np.array([0, 0]), np.array([0.3, 0.1])))


def test_report_by_hand():
    r = multilabel_report(Y, S, labels=("a", "b", "c"))
    assert r["exact_match"] == pytest.approx(0.25)
    assert r["mAP"] == pytest.approx(np.mean(AP))
    assert r["precision_macro"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert r["recall_macro"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert r["f1_macro"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert r["precision_micro"] == pytest.approx(4 / 6)
    assert r["recall_micro"] == pytest.approx(4 / 6)
    assert r["f1_micro"] == pytest.approx(2 / 3)
    assert r["per_label"]["a"]["accuracy"] == 1.0 and r["per_label"]["b"]["accuracy"] == 0.5
    assert r["accuracy_mean"] == pytest.approx((1 + 0.5 + 0.5) / 3)


def test_macro_and_micro_differ_when_labels_are_unbalanced():
    # Label 0: 3 positives, all found, 1 false alarm. Label 1: 1 positive, missed, no calls.
    y = np.array([[1, 1], [1, 0], [1, 0], [0, 0]])
    s = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.1], [0.6, 0.3]])
    r = multilabel_report(y, s)
    # Label 0: P 3/4, R 1, F1 6/7; label 1: P 0 (no calls), R 0, F1 0.
    assert r["f1_macro"] == pytest.approx((6 / 7 + 0) / 2)
    assert r["precision_macro"] == pytest.approx(3 / 8)
    # Micro: TP 3, FP 1, FN 1 -> P 3/4, R 3/4.
    assert r["f1_micro"] == pytest.approx(0.75)
    assert r["exact_match"] == pytest.approx(2 / 4)  # images 1 and 2


def test_per_label_thresholds_change_each_labels_calls():
    # Thresholds (0.5, 0.65, 0.5): label 1 drops its false alarm on image 3 (0.6) and keeps
    # image 1 (0.7): TP 1, FP 0, FN 1 -> P 1, R 1/2, F1 2/3. Labels 0 and 2 as at 0.5.
    r = multilabel_report(Y, S, np.array([0.5, 0.65, 0.5]), labels=("a", "b", "c"))
    assert r["per_label"]["b"]["precision"] == 1.0
    assert r["per_label"]["b"]["f1"] == pytest.approx(2 / 3)
    assert r["f1_macro"] == pytest.approx((1 + 2 / 3 + 0.5) / 3)
    assert r["exact_match"] == pytest.approx(2 / 4)  # images 0 and 3 now match


def test_thresholds_are_chosen_per_label_for_f1_and_ties_keep_half():
    y = np.array([[1, 1], [1, 0], [0, 0], [0, 1]])
    # Label 0: positives 0.9, 0.7; negatives 0.6, 0.3 -> any threshold in (0.6, 0.7] is
    # perfect: 0.65 and 0.7 tie at F1 1, 0.65 is nearer 0.5.
    # Label 1: positives 0.35, 0.3; negatives 0.25, 0.2 -> perfect only in (0.25, 0.3]: 0.3.
    s = np.array([[0.9, 0.35], [0.7, 0.25], [0.6, 0.2], [0.3, 0.3]])
    assert choose_thresholds(y, s) == [0.65, 0.3]
    # A label the scores cannot separate at all keeps 0.5 (every threshold ties).
    assert choose_thresholds(np.array([[0], [0]]), np.array([[0.1], [0.9]])) == [0.5]
