"""Measurements in millimetres through the geometry, on hand-worked cases (headless)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.study.geometry import ImageVolume
from app.viewstate.measurements import (
    Measurement,
    MeasurementList,
    angle_deg,
    cobb_deg,
    measure,
    measurement_lines,
    plane_xy,
    world_of,
)
from app.viewstate.planes import native_plane, plane_for
from app.viewstate.state import ViewerState


def aniso_image() -> ImageVolume:
    """A radiograph-like 6 x 8 image, rows 2.0 mm apart, columns 0.5 mm apart; value 10j + i."""
    jj, ii = np.mgrid[0:6, 0:8]
    return ImageVolume((10 * jj + ii).astype(np.int16), (1.0, 2.0, 0.5))


def px(i: float, j: float) -> np.ndarray:
    """World LPS of pixel (i, j) of ``aniso_image`` (identity direction, origin 0)."""
    return np.array([0.5 * i, 2.0 * j, 0.0])


def test_length_counts_millimetres_not_pixels_on_anisotropic_grid():
    vol = aniso_image()
    plane = native_plane(vol)
    m = measure("length", [px(0, 0), px(4, 3)], plane, vol)
    # 4 columns of 0.5 mm and 3 rows of 2 mm: sqrt(2^2 + 6^2)
    assert m.value == pytest.approx(math.sqrt(40.0))
    assert m.unit == "mm"


def test_plane_millimetres_round_trip_through_world():
    vol = aniso_image()
    plane = native_plane(vol)
    p = world_of(plane, 0.0, 1.5, 4.0)
    assert plane_xy(plane, p) == pytest.approx([1.5, 4.0])
    # the bottom-left pixel of the screen is row 5 of the stored image (rows run downward)
    assert world_of(plane, 0.0, 0.0, 0.0) == pytest.approx(px(0, 5))


def test_angle_is_measured_in_mm_not_in_index_space():
    # index (1, 0) and (1, 1) from pixel (0, 0) look 45 degrees apart in pixels; in mm the
    # second ray is (0.5, 2.0): atan(4) = 75.96 degrees from the first
    assert angle_deg(px(1, 0), px(0, 0), px(1, 1)) == pytest.approx(math.degrees(math.atan(4)))
    assert angle_deg([1, 0, 0], [0, 0, 0], [0, 1, 0]) == pytest.approx(90.0)
    assert angle_deg([1, 0, 0], [0, 0, 0], [-1, 0, 0]) == pytest.approx(180.0)


def _line(theta_deg: float, x0: float = 0.0) -> list[np.ndarray]:
    t = math.radians(theta_deg)
    return [np.array([x0, 0, 0]), np.array([x0 + 10 * math.cos(t), 10 * math.sin(t), 0])]


def test_cobb_angle_between_two_lines():
    right = np.array([1.0, 0, 0])
    assert cobb_deg(_line(20) + _line(-25, 30), right) == pytest.approx(45.0)
    # a line has no direction: drawing one of them right-to-left gives the same angle
    a, b = _line(20)
    assert cobb_deg([b, a] + _line(-25, 30), right) == pytest.approx(45.0)
    # severe curve: endplates tilted 50 degrees each way read 100, not the acute 80
    assert cobb_deg(_line(50) + _line(-50, 30), right) == pytest.approx(100.0)
    assert cobb_deg(_line(10) + _line(10, 30), right) == pytest.approx(0.0, abs=1e-6)


def test_rectangle_roi_on_anisotropic_pixels():
    vol = aniso_image()
    plane = native_plane(vol)
    # corners half a pixel outside columns 2..5 and rows 1..3
    m = measure("rectangle", [px(1.5, 0.5), px(5.5, 3.5)], plane, vol, modality="DX")
    s = m.stats
    assert s.n_pixels == 12
    # 4 columns x 0.5 mm by 3 rows x 2 mm
    assert s.area_mm2 == pytest.approx(2.0 * 6.0)
    # values 10j + i, i in 2..5 (mean 3.5, var 1.25), j in 1..3 (mean 2, var 2/3)
    assert s.mean == pytest.approx(23.5)
    assert s.sd == pytest.approx(math.sqrt(1.25 + 100 * 2 / 3))
    assert m.unit == "raw (not HU)"


def test_ellipse_roi_on_anisotropic_pixels():
    # a bigger grid, centre pixel (10, 10); semi-axes 1.2 mm across, 2.4 mm down
    jj, ii = np.mgrid[0:21, 0:21]
    vol = ImageVolume(np.ones((21, 21), np.float32), (1.0, 2.0, 0.5))
    plane = native_plane(vol)
    c = px(10, 10)
    m = measure("ellipse", [c - [1.2, 2.4, 0], c + [1.2, 2.4, 0]], plane, vol)
    # row 10: |x| <= 1.2 -> columns 8..12 (5); rows 9 and 11 (y = 2 mm): |x| <= 0.663 -> 3 each
    assert m.stats.n_pixels == 11
    assert m.stats.area_mm2 == pytest.approx(math.pi * 1.2 * 2.4)
    assert m.stats.sd == pytest.approx(0.0)
    del jj, ii


def test_roi_on_ct_takes_only_the_shown_slice_and_says_hu():
    nk = 5
    arr = np.zeros((nk, 20, 20), np.int16) + (np.arange(nk) * 100 - 200)[:, None, None]
    vol = ImageVolume(arr, (3.0, 0.7, 0.7), np.array([-5.0, -5.0, 10.0]))
    plane = plane_for(vol, "axial")
    depth = plane.snap_depth(10.0 + 2 * 3.0)  # slice k = 2
    a = world_of(plane, depth, 2.0, 2.0)
    b = world_of(plane, depth, 6.0, 8.0)
    m = measure("rectangle", [a, b], plane, vol, modality="CT")
    assert m.unit == "HU"
    assert m.stats.mean == pytest.approx(0.0)  # k = 2 -> 2 * 100 - 200
    assert m.stats.sd == pytest.approx(0.0)
    assert m.stats.area_mm2 == pytest.approx(4.0 * 6.0)
    # on a sagittal plane the same volume spans every slice
    sag = plane_for(vol, "sagittal")
    d = sag.snap_depth(0.0)
    m2 = measure("rectangle", [world_of(sag, d, 0.0, 0.0), world_of(sag, d, 5.0, 12.5)], sag,
                 vol, modality="CT")  # fmt: skip
    assert m2.stats.mean == pytest.approx(0.0)  # slices -200..200 equally: mean 0
    assert m2.stats.sd > 100


def test_on_plane_only_for_its_own_slice():
    arr = np.zeros((5, 8, 8), np.int16)
    vol = ImageVolume(arr, (3.0, 1.0, 1.0))
    plane = plane_for(vol, "axial")
    m = measure("length", [world_of(plane, 6.0, 0, 0), world_of(plane, 6.0, 3, 4)], plane, vol)
    assert m.value == pytest.approx(5.0)
    assert m.on_plane(plane.normal, 6.0)
    assert not m.on_plane(plane.normal, 9.0)
    assert not m.on_plane(plane_for(vol, "sagittal").normal, 6.0)


def test_list_names_and_state_round_trip(tmp_path):
    vol = aniso_image()
    plane = native_plane(vol)
    ml = MeasurementList()
    ml.add(measure("length", [px(0, 0), px(4, 3)], plane, vol, series_uid="1.2"))
    ml.add(measure("cobb", _line(20) + _line(-25, 30), plane, vol, series_uid="1.2"))
    ml.add(measure("ellipse", [px(1.5, 0.5), px(5.5, 3.5)], plane, vol, series_uid="1.2"))
    ml.add(measure("length", [px(0, 0), px(1, 0)], plane, vol, series_uid="1.2"))
    assert [m.name for m in ml] == ["Length 1", "Cobb angle 1", "Ellipse 1", "Length 2"]
    state = ViewerState(study_path="x", measurements=ml.to_json())
    back = ViewerState.load(state.save(tmp_path / "state.json"))
    ml2 = MeasurementList()
    ml2.apply_json(back.measurements)
    assert [m.name for m in ml2] == [m.name for m in ml]
    for a, b in zip(ml, ml2, strict=True):
        assert b.value == pytest.approx(a.value, nan_ok=True)
        assert b.points == pytest.approx(a.points, abs=1e-3)
        assert b.text() == a.text()
    assert "Cobb angle 1 (native slice 0): 45.0°" in measurement_lines(list(ml2))
    # a new measurement after a restore gets an id of its own
    assert ml2.add(measure("angle", [px(1, 0), px(0, 0), px(0, 1)], plane, vol)).id == 5


def test_bad_saved_measurement_is_a_value_error():
    with pytest.raises(ValueError, match="needs 3 points"):
        Measurement.from_json({"kind": "angle", "points_lps": [[0, 0, 0]], "right": [1, 0, 0],
                               "up": [0, 1, 0]})  # fmt: skip
    with pytest.raises(ValueError, match="unknown measurement"):
        Measurement.from_json({"kind": "volume", "points_lps": [], "right": [1, 0, 0],
                               "up": [0, 1, 0]})  # fmt: skip


def test_scope_shows_saves_and_clears_only_the_open_studys_measurements():
    vol = aniso_image()
    plane = native_plane(vol)
    ml = MeasurementList()
    heard: list[str] = []
    ml.subscribe(lambda what, m: heard.append(what))
    ml.set_scope({"A1", "A2"})  # study A's series
    a1 = ml.add(measure("length", [px(0, 0), px(4, 3)], plane, vol, series_uid="A1"))
    a2 = ml.add(measure("angle", [px(1, 0), px(0, 0), px(0, 1)], plane, vol, series_uid="A2"))
    ml.set_scope({"B1"})  # study B opened
    assert list(ml) == [] and len(ml) == 0 and ml.to_json() == [] and ml.on_series("A1") == []
    assert heard[-1] == "cleared"  # the dock lists anew
    b1 = ml.add(measure("length", [px(0, 0), px(1, 0)], plane, vol, series_uid="B1"))
    assert b1.name == "Length 1"  # numbered within its study
    ml.clear()  # "delete all" on B leaves A's alone
    assert list(ml) == []
    ml.set_scope({"A2", "A1"})  # A again
    assert list(ml) == [a1, a2]
    assert [d["series_uid"] for d in ml.to_json()] == ["A1", "A2"]
    assert ml.on_series("A2") == [a2]
    n = len(heard)
    ml.set_scope({"A1", "A2"})  # the same study: nothing to list anew
    assert len(heard) == n


def test_restoring_a_study_keeps_the_other_studies_and_ids_apart():
    vol = aniso_image()
    plane = native_plane(vol)
    ml = MeasurementList()
    ml.set_scope({"A1"})
    a = ml.add(measure("length", [px(0, 0), px(4, 3)], plane, vol, series_uid="A1"))
    saved_b = [measure("length", [px(0, 0), px(1, 0)], plane, vol, series_uid="B1").to_json()]
    saved_b[0]["id"] = a.id  # a state file of B numbered before A's measurement existed
    ml.set_scope({"B1"})
    ml.apply_json(saved_b)
    (b,) = list(ml)
    assert b.id != a.id and b.series_uid == "B1"
    ml.set_scope(None)  # no scope: the whole session
    assert list(ml) == [a, b]
    assert ml.add(measure("angle", [px(1, 0), px(0, 0), px(0, 1)], plane, vol)).id > b.id
