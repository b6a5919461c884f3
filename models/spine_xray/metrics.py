"""Scores for both halves of the task (numpy only): Dice per mask, accuracy and ROC AUC."""

from __future__ import annotations

import numpy as np


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """2|A and B| / (|A| + |B|); 1.0 when both are empty (nothing to find, nothing found)."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * float(np.logical_and(p, t).sum()) / total


def dice_parts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(2 |A and B|, |A| + |B|): summed over cases these give the pooled Dice."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    return 2 * int(np.logical_and(p, t).sum()), int(p.sum()) + int(t.sum())


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random
    negative (ties count half), by the Mann-Whitney rank sum."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def accuracy(y: np.ndarray, p_damaged: np.ndarray, threshold: float = 0.5) -> float:
    return float(np.mean((np.asarray(p_damaged) >= threshold) == np.asarray(y).astype(bool)))
