"""The femur network's label hierarchy, in its logits' order: one place for training (torch),
export (the manifest's ``groups`` and ``cam_labels``) and the adapter (numpy only), which must
agree on it index for index.

The three scenarios of the paper are three softmax groups over one set of K = 11 logits:
[normal, fracture], [normal, A, B], [A1, A2, A3, B1, B2, B3]."""

from __future__ import annotations

GROUPS: dict[str, tuple[str, ...]] = {
    "fracture": ("normal", "fracture"),
    "type": ("normal", "A", "B"),
    "subtype": ("A1", "A2", "A3", "B1", "B2", "B3"),
}


def _slices() -> dict[str, slice]:
    out, start = {}, 0
    for group, labels in GROUPS.items():
        out[group] = slice(start, start + len(labels))
        start += len(labels)
    return out


GROUP_SLICES: dict[str, slice] = _slices()  # each group's logits
CAM_LABELS: tuple[str, ...] = tuple(label for g in GROUPS.values() for label in g)  # CAM order
N_LOGITS = len(CAM_LABELS)
