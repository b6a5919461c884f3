"""Sagittal T2 lumbar MR phantom: landmarks, per-object disease, DICOM geometry round trip."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from models.lumbar_ccfnet import phantom as P
from models.lumbar_ccfnet.anatomy import OBJECTS
from models.lumbar_ccfnet.disease import DEFAULT_DISC_PROBS, choose_status

SMALL = {"rows": 256, "cols": 256, "pixel_mm": 1.05, "n_slices": 3}
DEGENERATE = {"L4-L5": "diseased", "L5-S1": "diseased", "L5": "diseased"}


def test_same_seed_same_series() -> None:
    a, b = P.generate(31, **SMALL), P.generate(31, **SMALL)
    assert np.array_equal(a.volume, b.volume) and a.status == b.status
    assert a.landmarks_px == b.landmarks_px
    assert not np.array_equal(a.volume, P.generate(32, **SMALL).volume)


def test_eleven_objects_named_as_in_ccfnet() -> None:
    assert OBJECTS == ("L1", "L2", "L3", "L4", "L5", "T12-L1", "L1-L2", "L2-L3", "L3-L4",
                         "L4-L5", "L5-S1")  # fmt: skip
    s = P.generate(1, **SMALL)
    assert set(s.landmarks_px) == set(OBJECTS) and set(s.status) == set(OBJECTS)
    assert set(s.status.values()) <= {"normal", "diseased"}


def test_each_landmark_is_in_the_image_and_on_its_object() -> None:
    s = P.generate(2, **SMALL)
    mid = s.objects[s.mid_slice]
    rows, cols = mid.shape
    for name, (i, j) in s.landmarks_px.items():
        assert 0 <= i < cols and 0 <= j < rows, name
        assert mid[int(round(j)), int(round(i))] == OBJECTS.index(name) + 1, name
    # Vertebrae and discs alternate down the spine: landmark rows increase T12-L1, L1, L1-L2 ...
    order = ["T12-L1", "L1", "L1-L2", "L2", "L2-L3", "L3", "L3-L4", "L4", "L4-L5", "L5", "L5-S1"]
    rows_in_order = [s.landmarks_px[n][1] for n in order]
    assert rows_in_order == sorted(rows_in_order)


def test_degenerated_disc_is_darker_and_thinner() -> None:
    sick = P.generate(3, status=DEGENERATE, **SMALL)
    well = P.generate(3, status={}, **SMALL)
    assert [n for n in OBJECTS if sick.status[n] == "diseased"] == ["L5", "L4-L5", "L5-S1"]
    k = OBJECTS.index("L4-L5") + 1
    for s in (sick, well):
        assert (s.objects[s.mid_slice] == k).any()

    def disc_signal_and_area(s):
        m = s.objects[s.mid_slice] == k
        return float(s.volume[s.mid_slice][m].mean()), int(m.sum())

    sick_sig, sick_area = disc_signal_and_area(sick)
    well_sig, well_area = disc_signal_and_area(well)
    assert sick_sig < 0.8 * well_sig
    assert sick_area < 0.85 * well_area


def test_context_makes_neighbours_of_sick_discs_sicker() -> None:
    rng = np.random.default_rng(0)
    draws = [choose_status(rng, DEFAULT_DISC_PROBS, 0.15, None) for _ in range(3000)]
    near = [d["L5"] == "diseased" for d in draws if d["L4-L5"] == d["L5-S1"] == "diseased"]
    far = [d["L5"] == "diseased" for d in draws if d["L4-L5"] == d["L5-S1"] == "normal"]
    assert np.mean(near) > np.mean(far) + 0.4


def test_bad_status_is_refused() -> None:
    with pytest.raises(ValueError, match="bad status"):
        P.generate(0, status={"S1": "diseased"}, **SMALL)


def test_written_series_is_sagittal_mr_with_landmarks_in_world_space(tmp_path: Path) -> None:
    from app.findings.truth import load_truth
    from app.study import load

    s = P.generate(4, status=DEGENERATE, **SMALL)
    out = P.write_study(s, tmp_path / "case")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = load(out)
    (series,) = [x for x in result.all_series() if x.modality == "MR"]
    assert series.kind == "volume"
    assert series.shape == (3, 256, 256)
    assert series.spacing_mm == pytest.approx((4.0, 1.05, 1.05))
    assert series.image.orientation_letters()[:2] == ("P", "I")  # columns go back, rows down
    assert abs(series.image.direction[0, 2]) == pytest.approx(1.0)  # slices step left-right
    truth = load_truth(out, reference=series.image)
    assert truth.labels["objects"] == s.status
    (marks,) = [ov for ov in truth.overlays if hasattr(ov, "landmarks")]
    assert len(marks.landmarks) == 11
    # Each landmark's LPS position falls on its pixel of the mid slice in the loaded volume,
    # and on the right object of the truth label map.
    (objects,) = [ov.image for ov in truth.overlays if hasattr(ov, "labels") and ov.image]
    mid_world_x = series.image.index_to_world(np.array([0, 0, s.mid_slice]))[0]
    for m in marks.landmarks:
        i, j, k = series.image.world_to_index(np.array(m.position_lps))
        assert (i, j) == pytest.approx(s.landmarks_px[m.name], abs=1e-3)
        assert m.position_lps[0] == pytest.approx(mid_world_x)
        oi, oj, ok = np.round(objects.world_to_index(np.array(m.position_lps))).astype(int)
        assert objects.array[ok, oj, oi] == OBJECTS.index(m.name) + 1
    import pydicom

    ds = pydicom.dcmread(sorted(out.glob("*.dcm"))[0])
    assert [float(v) for v in ds.ImageOrientationPatient] == [0, 1, 0, 0, 0, -1]
    assert ds.Modality == "MR" and float(ds.EchoTime) > 80  # T2-weighted
    # The loaded pixels are the generated ones, slice for slice (sorted by position).
    assert np.array_equal(series.image.array.astype(np.uint16), s.volume)
