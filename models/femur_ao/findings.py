"""Each femur's decision tree from the network's outputs (``adapter.py`` runs the network):
the fracture -> type A/B -> subtype A1..B3 findings with subtype probabilities that sum to their
type's, the CAM boxes of a side called fractured, the spatial transformer's region of interest
in image pixels, and the side's entry in the result's extra and summary.
"""

from __future__ import annotations

import numpy as np

from app.findings import DEMO_DISCLAIMER, Finding
from app.study.model import Series
from models.femur_ao.cam import boxes_from_map, cam_to_input
from models.femur_ao.labels import CAM_LABELS, GROUP_SLICES, GROUPS
from models.femur_ao.sides import SideCrop

THRESHOLD = 0.5


def side_result(
    crop: SideCrop, p_frac, p_type, p_sub, cams, theta, input_size: int, image_shape
) -> dict:
    side = crop.side
    # Maps in the network's input grid (NaN outside the STN ROI), un-mirrored to image order.
    type_labels = GROUPS["type"]
    type_label = type_labels[1 + int(np.argmax(p_type[1:]))]  # A or B, the likelier fracture type
    subtypes = GROUPS["subtype"]
    roi = f"{side}-roi"
    findings = [
        Finding("fracture", float(p_frac[1]), THRESHOLD, "fracture", "", side, roi, "fracture"),
    ]
    for k, label in enumerate(type_labels):
        # the type head's "normal" class (a normal class by its name): positive = "no fracture"
        term = "fracture" if label == "normal" else f"type {label} fracture"
        findings.append(
            Finding(label, float(p_type[k]), THRESHOLD, "type", "fracture", side, roi, term)
        )
    joint = subtype_probabilities(p_type, p_sub)
    for label in subtypes:
        findings.append(
            Finding(
                label, joint[label], THRESHOLD, "subtype", label[0], side, roi, f"{label} fracture"
            )  # fmt: skip
        )
    cam_boxes = []
    if p_frac[1] >= THRESHOLD:
        m = cam_to_input(
            cams[CAM_LABELS.index(type_label, GROUP_SLICES["type"].start)], theta, input_size
        )
        for b in boxes_from_map(m[:, ::-1] if crop.mirrored else m):
            # The map was un-mirrored above, so its columns already run in image order.
            r0, c0, size = crop.window
            k = size / input_size
            i0, j0, i1, j1 = [c0 + b.u0 * k], [r0 + b.v0 * k], [c0 + b.u1 * k], [r0 + b.v1 * k]
            cam_boxes.append(
                {
                    "i0": float(min(i0[0], i1[0])),
                    "j0": float(j0[0]),
                    "i1": float(max(i0[0], i1[0])),
                    "j1": float(j1[0]),
                    "caption": f"{side} {type_label} CAM region",
                    "score": round(b.score, 4),
                    "label": type_label,
                }
            )
    # STN region of interest: the warped corners of the ROI grid, in image pixels.
    corners = (
        np.array([[-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], float)
        @ np.asarray(theta, float).T
    )
    u, v = (corners[:, 0] + 1) * input_size / 2, (corners[:, 1] + 1) * input_size / 2
    ii, jj = crop.to_image(u, v, input_size)
    # The warp may reach past the window (zero padding there); the box drawn stops at the film.
    rows, cols = image_shape
    roi_box = (
        float(np.clip(ii.min(), 0, cols)),
        float(np.clip(jj.min(), 0, rows)),
        float(np.clip(ii.max(), 0, cols)),
        float(np.clip(jj.max(), 0, rows)),
    )
    return {
        "side": side,
        "crop": crop,
        "p_fracture": float(p_frac[1]),
        "p_type": {k: float(p_type[n]) for n, k in enumerate(type_labels)},
        "p_subtype": {k: float(p_sub[n]) for n, k in enumerate(subtypes)},
        "p_subtype_joint": joint,
        "type_label": type_label,
        "subtype_label": subtypes[int(np.argmax(p_sub))],
        "findings": findings,
        "cams": np.asarray(cams, np.float32),
        "theta_array": np.asarray(theta, np.float64),
        "cam_boxes": cam_boxes,
        "roi_box": roi_box,
        "theta": np.asarray(theta, float).round(5).tolist(),
    }


def subtype_probabilities(p_type, p_sub) -> dict[str, float]:
    """Subtype probabilities that sum to their type's: P(T) * P(s | fracture) / sum over T.

    The 3-class scenario gives P(normal), P(A), P(B); the 6-class one the subtype given a
    fracture. Sharing each type's probability among its subtypes in the 6-class ratios keeps the
    displayed tree consistent (a femur called normal cannot show a "positive" subtype).
    """
    out = {}
    for n, t in ((1, "A"), (2, "B")):
        names = [s for s in GROUPS["subtype"] if s[0] == t]
        cond = np.array([float(p_sub[GROUPS["subtype"].index(s)]) for s in names])
        share = cond / cond.sum() if cond.sum() > 0 else np.full(len(names), 1 / len(names))
        out.update({s: float(p_type[n]) * float(v) for s, v in zip(names, share, strict=True)})
    return out


def side_extra(s: dict, series: Series) -> dict:
    dk, dj, di = series.image.spacing

    def mm(b):
        return [round(b[0] * di, 2), round(b[1] * dj, 2), round(b[2] * di, 2), round(b[3] * dj, 2)]

    r0, c0, size = s["crop"].window
    return {
        "window_px": {"row0": r0, "col0": c0, "size": size},
        "mirrored_for_network": s["crop"].mirrored,
        "p_fracture": round(s["p_fracture"], 6),
        "p_type": {k: round(v, 6) for k, v in s["p_type"].items()},
        "p_subtype": {k: round(v, 6) for k, v in s["p_subtype_joint"].items()},
        "p_subtype_given_fracture": {k: round(v, 6) for k, v in s["p_subtype"].items()},
        "stn_theta": s["theta"],
        "roi_box_px": [round(v, 2) for v in s["roi_box"]],
        "roi_box_mm": mm(s["roi_box"]),
        "cam_boxes": [
            {
                "label": b["label"],
                "score": b["score"],
                "box_px": [round(b[k], 2) for k in ("i0", "j0", "i1", "j1")],
                "box_mm": mm([b["i0"], b["j0"], b["i1"], b["j1"]]),
            }
            for b in s["cam_boxes"]
        ],
        "box_units": "px: (column, row) image indices; mm: in-plane from the top-left pixel",
    }


def summary(sides: list[dict], layout, real: bool) -> str:
    parts = []
    for s in sides:
        if s["p_fracture"] >= THRESHOLD:
            t = s["type_label"]
            sub = max(
                (k for k in s["p_subtype"] if k.startswith(t)), key=lambda k: s["p_subtype"][k]
            )
            parts.append(
                f"{s['side']}: fracture p={s['p_fracture']:.2f}, type {t} "
                f"p={s['p_type'][t]:.2f}, subtype {sub} p={s['p_subtype_joint'][sub]:.2f}"
            )
        else:
            parts.append(f"{s['side']}: no fracture (p={s['p_fracture']:.2f})")
    text = "; ".join(parts)
    if layout.view == "single":
        text += f" [single hip, side from {layout.how}]"
    if real:
        text += (
            ". Not a phantom: the demo weights were trained only on synthetic phantoms, "
            "so on this real radiograph their output means little"
        )
    return f"{text}. Demo weights: {DEMO_DISCLAIMER}."
