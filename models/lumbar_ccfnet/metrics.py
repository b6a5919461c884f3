"""The paper's metrics, numpy only: localisation recall (a point within 6 mm of its truth) and
the disease AUC at the true points (objects whose point was found), per group."""

from __future__ import annotations

import numpy as np

from models.lumbar_ccfnet.anatomy import DISCS, OBJECTS

MAX_DIST_MM = 6.0
IS_DISC = np.array([name in DISCS for name in OBJECTS])


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half); NaN if one class is absent."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels) > 0.5
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def score(
    dist_mm: np.ndarray, prob: np.ndarray, labels: np.ndarray, max_dist: float = MAX_DIST_MM
) -> dict[str, float]:
    """``dist_mm``, ``prob``, ``labels``: (N, 11), NaN distance / negative label = not annotated."""
    d = np.asarray(dist_mm, np.float64)
    known = np.isfinite(d)
    hit = known & (d <= max_dist)
    out: dict[str, float] = {}
    for group, mask in (("all", np.ones(len(OBJECTS), bool)), ("disc", IS_DISC),
                        ("vertebra", ~IS_DISC)):  # fmt: skip
        k = known[:, mask]
        out[f"recall_{group}"] = float(hit[:, mask].sum() / max(k.sum(), 1))
        out[f"mean_error_mm_{group}"] = float(np.nanmean(np.where(k, d[:, mask], np.nan)))
        sel = hit[:, mask] & (labels[:, mask] >= 0)
        out[f"auc_{group}"] = auc(prob[:, mask][sel], labels[:, mask][sel])
    out["median_error_mm_all"] = float(np.nanmedian(np.where(known, d, np.nan)))
    loc = (out["recall_disc"] + out["recall_vertebra"]) / 2
    aucs = [v for v in (out["auc_disc"], out["auc_vertebra"]) if np.isfinite(v)]
    cls = float(np.mean(aucs)) if aucs else float("nan")
    out["score"] = float(loc * cls)  # the paper's "product of the average scores"
    return out
