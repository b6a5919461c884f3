"""Layouts without Qt: the cells' geometry, what each cell shows, the hanging protocol of every
task, and which series link."""

from __future__ import annotations

import numpy as np
import pytest

from app.analysis.tasks import get_spec
from app.study.geometry import ImageVolume
from app.study.model import Series
from app.viewstate.layout import (
    LAYOUTS,
    hanging_layout,
    layout_for_panes,
    layout_named,
    links_scroll,
    links_window,
    plan_cells,
)


def _volume(direction=None, name="ct", modality="CT") -> Series:
    vol = ImageVolume(np.zeros((8, 10, 12), np.int16), (2.0, 1.0, 1.0), np.zeros(3),
                      np.eye(3) if direction is None else direction)  # fmt: skip
    return Series(name, modality, name, vol, kind="volume")


def _radiograph(name: str, view: str) -> Series:
    vol = ImageVolume(np.zeros((1, 20, 10), np.uint16), (1.0, 0.2, 0.2), np.zeros(3), np.eye(3))
    return Series(name, "DX", name, vol, kind="projection", view_position=view)


def _cells(plan):
    return [None if c is None else (c.series.series_uid, c.plane) for c in plan]


def test_cell_fractions_tile_the_area():
    assert LAYOUTS["1x1"].fractions() == [(0.0, 0.0, 1.0, 1.0)]
    assert LAYOUTS["1x2"].fractions() == [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)]
    big, top, bottom = LAYOUTS["1+2"].fractions()
    assert big == (0.0, 0.0, 0.6, 1.0) and top == (0.6, 0.0, 1.0, 0.5)
    assert bottom == (0.6, 0.5, 1.0, 1.0)
    for layout in LAYOUTS.values():  # the cells cover the area once
        area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in layout.fractions())
        assert area == pytest.approx(1.0)
    assert layout_named("nonsense").name == "1+2"  # an old settings value


def test_volume_planes_fill_the_cells_acquisition_plane_first():
    ct = _volume()  # axial slices
    assert _cells(plan_cells(LAYOUTS["1x1"], ct)) == [("ct", "axial")]
    assert _cells(plan_cells(LAYOUTS["1x2"], ct)) == [("ct", "axial"), ("ct", "sagittal")]
    assert _cells(plan_cells(LAYOUTS["1+2"], ct)) == [
        ("ct", "axial"), ("ct", "sagittal"), ("ct", "coronal")]  # fmt: skip
    assert _cells(plan_cells(LAYOUTS["2x2"], ct))[3] is None  # nothing else in the study
    # a sagittal MR opens on its sagittal plane, large
    sag = np.array([[0.0, 0, 1], [1, 0, 0], [0, -1, 0]])
    mr = _volume(sag, "mr", "MR")
    assert _cells(plan_cells(LAYOUTS["1+2"], mr))[0] == ("mr", "sagittal")


def test_other_series_of_the_study_fill_cells():
    t2, t1 = _volume(name="t2", modality="MR"), _volume(name="t1", modality="MR")
    # side by side: the next series beside this one (linked scrolling compares them)
    assert _cells(plan_cells(LAYOUTS["1x2"], t2, [t2, t1])) == [("t2", "axial"), ("t1", "axial")]
    assert _cells(plan_cells(LAYOUTS["2x2"], t2, [t2, t1]))[3] == ("t1", "axial")


def test_radiographs_in_the_given_order_the_shown_one_always_in():
    ap, lat = _radiograph("ap", "AP"), _radiograph("lat", "LL")
    assert _cells(plan_cells(LAYOUTS["1x2"], lat, [ap, lat])) == [
        ("ap", "native"), ("lat", "native")]  # fmt: skip
    assert _cells(plan_cells(LAYOUTS["1x1"], lat, [ap, lat])) == [("lat", "native")]
    assert _cells(plan_cells(LAYOUTS["1+2"], ap, [ap, lat])) == [
        ("ap", "native"), ("lat", "native"), None]  # fmt: skip
    mask = Series("m", "SEG", "mask", ap.image, kind="labelmap")
    assert _cells(plan_cells(LAYOUTS["1x2"], ap, [ap, mask])) == [("ap", "native"), None]


@pytest.mark.parametrize(
    ("task", "layout"),
    [
        ("spine-xray", "1x2"),
        ("cervical-fracture", "1+2"),
        ("lumbar-mri", "1+2"),
        ("femur-ao", "1x1"),
        ("calcaneus-fracture", "1x1"),
    ],  # fmt: skip
)
def test_hanging_protocol_of_each_task(task, layout):
    assert hanging_layout(get_spec(task)) == layout


def test_declared_layout_wins_and_panes_get_room():
    import dataclasses

    spec = dataclasses.replace(get_spec("femur-ao"), layout="2x2")
    assert hanging_layout(spec) == "2x2"
    assert layout_for_panes(2, "1x1").name == "1x2"
    assert layout_for_panes(3, "1x2").name == "1+2"
    assert layout_for_panes(2, "2x2").name == "2x2"


def test_links():
    ct, mr = _volume(), _volume(name="mr", modality="MR")
    ap = _radiograph("ap", "AP")
    assert links_scroll(ct, mr) and not links_scroll(ct, ap)
    assert links_window(ct, _volume(name="ct2")) and not links_window(ct, mr)
