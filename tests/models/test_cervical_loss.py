"""The RSNA 2022 weighted multi-label log loss against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.cervical_fracture.loss import (
    per_study_loss,
    row_weights,
    rsna_weighted_log_loss,
    torch_rsna_weighted_log_loss,
)


def test_weights_follow_the_competition_table():
    labels = np.array([[1, 0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 0, 0]])
    w = row_weights(labels)
    assert w[0].tolist() == [2, 1, 1, 1, 1, 1, 2, 14]
    assert w[1].tolist() == [1, 1, 1, 1, 1, 1, 1, 7]


@pytest.mark.parametrize(
    "labels",
    [
        [0, 0, 0, 0, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0, 0, 1],
        [1, 1, 1, 1, 1, 1, 1, 1],
        [0, 1, 0, 0, 0, 1, 0, 1],
    ],
)
def test_half_everywhere_is_ln2_per_study(labels):
    y = np.array([labels])
    assert rsna_weighted_log_loss(y, np.full((1, 8), 0.5)) == pytest.approx(math.log(2), abs=1e-12)
    assert per_study_loss(y, np.full((1, 8), 0.5))[0] == pytest.approx(math.log(2), abs=1e-12)


def test_hand_computed_single_study():
    # C1 positive predicted 0.8, C2..C7 negative predicted 0.1, patient positive predicted 0.9
    y = np.array([[1, 0, 0, 0, 0, 0, 0, 1]])
    p = np.array([[0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.9]])
    num = 2 * -math.log(0.8) + 6 * 1 * -math.log(0.9) + 14 * -math.log(0.9)
    den = 2 + 6 + 14
    assert rsna_weighted_log_loss(y, p) == pytest.approx(num / den, rel=1e-12)


def test_hand_computed_two_studies_average_over_all_rows():
    y = np.array([[0] * 8, [0, 1, 0, 0, 0, 0, 0, 1]])
    p = np.array([[0.2] * 8, [0.5, 0.6, 0.5, 0.5, 0.5, 0.5, 0.5, 0.7]])
    num = 7 * -math.log(0.8) + 7 * -math.log(0.8)  # study 1: seven vertebrae w=1, patient w=7
    num += 6 * -math.log(0.5) + 2 * -math.log(0.6) + 14 * -math.log(0.7)
    den = (7 + 7) + (6 + 2 + 14)
    assert rsna_weighted_log_loss(y, p) == pytest.approx(num / den, rel=1e-12)


def test_torch_matches_numpy_and_is_differentiable():
    rng = np.random.default_rng(0)
    y = (rng.random((5, 8)) < 0.3).astype(np.float64)
    p = rng.uniform(0.05, 0.95, size=(5, 8))
    pt = torch.tensor(p, requires_grad=True)
    loss = torch_rsna_weighted_log_loss(torch.tensor(y), pt)
    loss.backward()
    assert float(loss) == pytest.approx(rsna_weighted_log_loss(y, p), rel=1e-9)
    assert pt.grad is not None and torch.isfinite(pt.grad).all()
    logits = torch.logit(torch.tensor(p))
    from_logits = torch_rsna_weighted_log_loss(torch.tensor(y), logits, from_logits=True)
    assert float(from_logits) == pytest.approx(rsna_weighted_log_loss(y, p), rel=1e-6)


def test_confident_wrong_patient_costs_more_than_wrong_vertebra():
    y = np.array([[0, 0, 0, 0, 0, 0, 0, 0]])
    wrong_vertebra = np.array([[0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]])
    wrong_patient = np.array([[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.9]])
    assert rsna_weighted_log_loss(y, wrong_patient) > rsna_weighted_log_loss(y, wrong_vertebra)
