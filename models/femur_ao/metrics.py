"""Evaluation as in the paper: per-class F1 with the support-weighted average, and localisation
mAP over IoU thresholds {0.1, 0.25, 0.5, 0.75, 0.9} (a prediction is a TP when IoU > T)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.femur_ao.cam import boxes_from_map, cam_to_input
from models.femur_ao.labels import CAM_LABELS, GROUPS

IOU_THRESHOLDS = (0.1, 0.25, 0.5, 0.75, 0.9)


def f1_scores(y_true: Sequence, y_pred: Sequence, labels: Sequence) -> dict:
    """Per-class F1 and support, plus the support-weighted average (sklearn's 'weighted')."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    per, supports = {}, []
    for c in labels:
        tp = int(np.sum((y_pred == c) & (y_true == c)))
        fp = int(np.sum((y_pred == c) & (y_true != c)))
        fn = int(np.sum((y_pred != c) & (y_true == c)))
        denom = 2 * tp + fp + fn
        per[str(c)] = {"f1": (2 * tp / denom) if denom else 0.0, "support": tp + fn}
        supports.append(tp + fn)
    total = sum(supports)
    weighted = (
        sum(per[str(c)]["f1"] * per[str(c)]["support"] for c in labels) / total if total else 0.0
    )
    return {"per_class": per, "weighted_f1": weighted, "n": int(len(y_true))}


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of (x0, y0, x1, y1) boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def average_precision(
    predictions: list[tuple[int, float, Sequence[float]]], truth: dict, thr: float
) -> float:
    """AP at one IoU threshold. ``predictions``: (image id, score, box); ``truth``: id -> box.

    Ranked by score; a prediction is a TP when IoU > thr with its image's box not yet matched,
    else an FP; AP is the area under the interpolated precision-recall curve (all points).
    """
    if not truth:
        return 0.0
    preds = sorted(predictions, key=lambda p: -p[1])
    matched, tp, fp = set(), [], []
    for image_id, _, box in preds:
        gt = truth.get(image_id)
        hit = gt is not None and image_id not in matched and iou(box, gt) > thr
        if hit:
            matched.add(image_id)
        tp.append(1.0 if hit else 0.0)
        fp.append(0.0 if hit else 1.0)
    if not preds:
        return 0.0
    tp_c, fp_c = np.cumsum(tp), np.cumsum(fp)
    recall = tp_c / len(truth)
    precision = tp_c / np.maximum(tp_c + fp_c, 1e-12)
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    idx = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[idx + 1] - r[idx]) * p[idx + 1]))


def localization_map(predictions, truth, thresholds=IOU_THRESHOLDS) -> dict:
    aps = {str(t): average_precision(predictions, truth, t) for t in thresholds}
    return {"mAP": float(np.mean(list(aps.values()))), "AP": aps}


def held_out_report(net, ds, ev: dict, cfg) -> dict:
    """F1 for the 2, 3 and 6-class scenarios and box mAP from the CAMs on a held-out set.

    ``ev`` holds the outputs of ``train.evaluate``: per-scenario probabilities, CAMs, theta.
    Localisation is scored on the fractured femurs only (as in the paper), with the boxes from
    the CAM of the class predicted in each scenario against the femoral-head box.
    """
    from models.femur_ao.data import targets

    y = targets(ds.y)
    probs = ev["probs"]
    report: dict = {"n_test": int(len(ds))}
    fracture_rows = np.nonzero(y["subtype"] >= 0)[0]
    for group, names in GROUPS.items():
        rows = fracture_rows if group == "subtype" else np.arange(len(ds))
        pred = probs[group][rows].argmax(1)
        truth = y[group][rows]
        report[f"{len(names) if group != 'fracture' else 2}-class"] = f1_scores(
            [names[t] for t in truth], [names[p] for p in pred], names
        )
        preds, gts = [], {}
        for r in fracture_rows:
            if np.isnan(ds.boxes[r]).any():
                continue
            gts[int(r)] = tuple(float(v) for v in ds.boxes[r])
            label = names[int(probs[group][r].argmax())]
            cam = ev["cams"][r, CAM_LABELS.index(label, _offset(group))]
            m = cam_to_input(cam, ev["theta"][r], cfg.input_size)
            for b in boxes_from_map(m):
                preds.append((int(r), b.score, b.as_tuple()))
        report[f"{len(names) if group != 'fracture' else 2}-class"]["localization"] = (
            localization_map(preds, gts)
        )
    return report


def _offset(group: str) -> int:
    """Index in CAM_LABELS where ``group``'s labels start (labels repeat across groups)."""
    from models.femur_ao.labels import GROUP_SLICES

    return GROUP_SLICES[group].start
