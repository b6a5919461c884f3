"""Lateral calcaneus phantom: determinism, truth consistent with the image, DICOM round trip."""

from __future__ import annotations

import numpy as np
import pytest

from models.calcaneus_msrt import phantom as P
from models.calcaneus_msrt.fracture import choose_labels
from models.calcaneus_msrt.labels import LABELS

SMALL = {"rows": 256, "cols": 256, "pixel_mm": 0.6}  # same field of view as the default
DEPRESSION = {"Primary Line": True, "Collapse Fracture Block": True,
              "Posterior Articular Surface": True}  # fmt: skip


def test_same_seed_same_sample_other_seed_differs() -> None:
    a, b = P.generate(11, **SMALL), P.generate(11, **SMALL)
    assert np.array_equal(a.image, b.image) and a.labels == b.labels
    assert np.array_equal(a.fracture_regions, b.fracture_regions)
    assert np.array_equal(a.rough_mask, b.rough_mask)
    c = P.generate(12, **SMALL)
    assert not np.array_equal(a.image, c.image)


def test_labels_are_the_papers_six() -> None:
    assert LABELS == (
        "Calcaneal Tuberosity",
        "Primary Line",
        "Collapse Fracture Block",
        "Calcaneal Body",
        "Posterior Articular Surface",
        "Tongue Fracture Block",
    )


@pytest.mark.parametrize("name", LABELS)
def test_each_label_draws_fracture_only_in_the_heel_bone(name: str) -> None:
    s = P.generate(3, labels={name: True}, **SMALL)
    code = LABELS.index(name) + 1
    assert s.labels[name] and sum(s.labels.values()) == 1
    assert (s.fracture_regions == code).sum() > 20, "a present label must mark fracture pixels"
    assert set(np.unique(s.fracture_regions)) == {0, code}
    calcaneus = s.bones == P.BONES.index("Calcaneus") + 1
    assert not (s.fracture_mask & ~calcaneus).any(), "fracture pixels outside the calcaneus"


def test_normal_heel_has_no_fracture_and_bone_is_brighter_than_soft_tissue() -> None:
    s = P.generate(4, labels={}, **SMALL)
    assert not s.fractured and not s.fracture_mask.any() and not s.rough_mask.any()
    calc = s.bones == 1
    # Soft tissue: the heel pad just below the bone.
    below = np.roll(calc, int(12 / 0.6), axis=0) & ~calc & (s.bones == 0)
    assert s.image[calc].mean() > s.image[below].mean() + 300
    for n in range(1, len(P.BONES) + 1):
        assert (s.bones == n).sum() > 100, P.BONES[n - 1]


def test_rough_mask_is_an_imperfect_cover_of_the_fracture() -> None:
    s = P.generate(5, labels=DEPRESSION, **SMALL)
    fine, rough = s.fracture_mask, s.rough_mask
    inter = (fine & rough).sum()
    iou = inter / (fine | rough).sum()
    assert 0.1 < iou < 0.9, iou
    assert inter / fine.sum() > 0.5, "the rough mask should still cover most of the fracture"


def test_joint_depression_flattens_boehlers_angle() -> None:
    normal = P.generate(6, labels={}, **SMALL)
    depressed = P.generate(6, labels=DEPRESSION, **SMALL)
    assert 25 < normal.bohler_angle_deg < 40
    assert depressed.bohler_angle_deg < normal.bohler_angle_deg - 4


def test_random_labels_follow_the_probabilities() -> None:
    rng = np.random.default_rng(0)
    draws = [choose_labels(rng, 0.7, None, None) for _ in range(3000)]
    fractured = [d for d in draws if any(d.values())]
    assert 0.65 < len(fractured) / len(draws) < 0.75
    card = np.mean([sum(d.values()) for d in fractured])
    assert 2.3 < card < 3.4, card  # the paper's label cardinality is 2.94
    assert not any(d["Collapse Fracture Block"] and d["Tongue Fracture Block"] for d in draws)


def test_unknown_label_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown calcaneus labels"):
        P.generate(0, labels={"Ankle": True}, **SMALL)
