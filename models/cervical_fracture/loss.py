"""The RSNA 2022 competition metric: weighted multi-label log loss (paper section 4.1).

Per study there are 8 rows: C1..C7 and patient_overall. Weights: 1 for a negative vertebra,
2 for a positive one, 7 for a negative patient, 14 for a positive one. The loss of a study is the
weighted mean of its rows' binary log losses (sum(w * l) / sum(w)), and a set of studies is scored
by averaging over all rows with their weights, as the competition's scorer does.

Predicting 0.5 everywhere gives exactly ln 2 whatever the labels: every row's loss is ln 2.
"""

from __future__ import annotations

import numpy as np

VERTEBRA_WEIGHTS = (1.0, 2.0)  # negative, positive
PATIENT_WEIGHTS = (7.0, 14.0)
EPS = 1e-7


def row_weights(labels: np.ndarray) -> np.ndarray:
    """labels (N, 8) = C1..C7, patient_overall (0/1) -> weights (N, 8)."""
    labels = np.asarray(labels, dtype=np.float64)
    w = np.where(labels[:, :7] > 0.5, VERTEBRA_WEIGHTS[1], VERTEBRA_WEIGHTS[0])
    wp = np.where(labels[:, 7:] > 0.5, PATIENT_WEIGHTS[1], PATIENT_WEIGHTS[0])
    return np.concatenate([w, wp], axis=1)


def rsna_weighted_log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    """Competition score over studies (lower is better); arrays (N, 8)."""
    labels = np.asarray(labels, dtype=np.float64).reshape(-1, 8)
    p = np.clip(np.asarray(probs, dtype=np.float64).reshape(-1, 8), EPS, 1 - EPS)
    w = row_weights(labels)
    bce = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    return float((w * bce).sum() / w.sum())


def per_study_loss(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(N,) weighted loss of each study on its own."""
    labels = np.asarray(labels, dtype=np.float64).reshape(-1, 8)
    p = np.clip(np.asarray(probs, dtype=np.float64).reshape(-1, 8), EPS, 1 - EPS)
    w = row_weights(labels)
    bce = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    return (w * bce).sum(axis=1) / w.sum(axis=1)


def torch_rsna_weighted_log_loss(labels, logits_or_probs, from_logits: bool = False):
    """The same metric in torch (differentiable); tensors (N, 8)."""
    import torch

    labels = labels.to(torch.float64 if logits_or_probs.dtype == torch.float64 else torch.float32)
    vw = torch.where(labels[:, :7] > 0.5, VERTEBRA_WEIGHTS[1], VERTEBRA_WEIGHTS[0])
    pw = torch.where(labels[:, 7:] > 0.5, PATIENT_WEIGHTS[1], PATIENT_WEIGHTS[0])
    w = torch.cat([vw, pw], dim=1).to(labels.dtype)
    if from_logits:
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            logits_or_probs, labels, reduction="none"
        )
    else:
        p = logits_or_probs.clamp(EPS, 1 - EPS)
        bce = -(labels * torch.log(p) + (1 - labels) * torch.log(1 - p))
    return (w * bce).sum() / w.sum()
