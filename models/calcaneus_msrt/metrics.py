"""Multi-label metrics as the MSRT paper reports them (Tables 1-3).

Exact-match accuracy, mAP (mean over labels of average precision), per-label accuracy and F1,
macro (per label, then averaged: P-C, R-C, F1-C) and micro (counts pooled over labels: P-O,
R-O, F1-O) precision, recall and F1. A ratio with a zero denominator counts as 0 (scikit-learn's
``zero_division=0``); a label without positives is left out of mAP (its AP is undefined).
"""

from __future__ import annotations

import numpy as np


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the step precision-recall curve: sum over thresholds of
    (R_k - R_{k-1}) * P_k, thresholds at the distinct scores (ties count together)."""
    y = np.asarray(y, bool)
    score = np.asarray(score, float)
    if not y.any():
        return float("nan")
    order = np.argsort(-score, kind="stable")
    y, score = y[order], score[order]
    last = np.r_[np.nonzero(np.diff(score))[0], len(score) - 1]  # end of each tie group
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def multilabel_report(
    y_true: np.ndarray,
    y_score: np.ndarray,
    threshold: float | np.ndarray = 0.5,
    labels: tuple[str, ...] | None = None,
) -> dict:
    """All of the paper's metrics for (N, L) truths (0/1) and scores; ``threshold`` is one
    number or one per label."""
    y = np.asarray(y_true) > 0.5
    s = np.asarray(y_score, float)
    pred = s >= np.asarray(threshold, float)
    n, n_labels = y.shape
    labels = labels or tuple(str(k) for k in range(n_labels))
    tp = (pred & y).sum(0).astype(float)
    fp = (pred & ~y).sum(0).astype(float)
    fn = (~pred & y).sum(0).astype(float)
    p = np.array([_ratio(tp[k], tp[k] + fp[k]) for k in range(n_labels)])
    r = np.array([_ratio(tp[k], tp[k] + fn[k]) for k in range(n_labels)])
    f1 = np.array([_ratio(2 * p[k] * r[k], p[k] + r[k]) for k in range(n_labels)])
    ap = np.array([average_precision(y[:, k], s[:, k]) for k in range(n_labels)])
    acc = (pred == y).mean(0)
    p_o = _ratio(tp.sum(), tp.sum() + fp.sum())
    r_o = _ratio(tp.sum(), tp.sum() + fn.sum())
    return {
        "n": int(n),
        "exact_match": float(np.all(pred == y, axis=1).mean()),
        "mAP": float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan"),
        "precision_macro": float(p.mean()),
        "recall_macro": float(r.mean()),
        "f1_macro": float(f1.mean()),
        "precision_micro": p_o,
        "recall_micro": r_o,
        "f1_micro": _ratio(2 * p_o * r_o, p_o + r_o),
        "accuracy_mean": float(acc.mean()),
        "per_label": {
            name: {
                "support": int(y[:, k].sum()),
                "accuracy": float(acc[k]),
                "precision": float(p[k]),
                "recall": float(r[k]),
                "f1": float(f1[k]),
                "ap": None if np.isnan(ap[k]) else float(ap[k]),
            }
            for k, name in enumerate(labels)
        },
    }


THRESHOLD_GRID = tuple(round(0.2 + 0.05 * k, 2) for k in range(13))  # 0.20 .. 0.80


def choose_thresholds(
    y_true: np.ndarray, y_score: np.ndarray, grid: tuple[float, ...] = THRESHOLD_GRID
) -> list[float]:
    """Per label, the threshold on ``grid`` with the best F1 on a validation split (ties go to
    the one nearest 0.5, so a flat curve keeps the default). A coarse, bounded grid: a few
    hundred validation images cannot support finer choices."""
    y = np.asarray(y_true) > 0.5
    s = np.asarray(y_score, float)
    out = []
    for k in range(y.shape[1]):
        best, best_t = -1.0, 0.5
        for t in sorted(grid, key=lambda t: (abs(t - 0.5), t)):
            pred = s[:, k] >= t
            tp = float((pred & y[:, k]).sum())
            f1 = _ratio(2 * tp, float(pred.sum() + y[:, k].sum()))
            if f1 > best + 1e-12:
                best, best_t = f1, t
        out.append(float(best_t))
    return out
