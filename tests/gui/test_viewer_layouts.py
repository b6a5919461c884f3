"""Layouts, the hanging protocol, linked views and cine in the real window; every geometry claim
is checked on pixels captured from the screen (VTK views included), not on widget flags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.study.dicom_writer import write_series
from app.ui.capture import capture_window, save_png
from app.ui.layouts import EMPTY_CELL_TEXT
from app.viewstate.layout import LAYOUTS
from tests.gui.conftest import WAIT_MS, open_and_wait, phantom_ct, settle

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[2]
SHOTS = Path("/tmp/osteoview-shots")
EMPTY_RGB = (0x20, 0x20, 0x20)  # the empty cell's background (app.ui.layouts)


@pytest.fixture()
def two_ct_dir(tmp_path):
    """One study, two CT series on the same grid (the second brighter), as a T1/T2 pair is."""
    out = tmp_path / "study"
    uid = "1.2.826.0.1.3680043.8.498.4242"
    write_series(phantom_ct(), out / "a", "CT", series_description="first", study_uid=uid)
    second = phantom_ct()
    second.array[:] = np.clip(second.array.astype(np.int32) + 300, -1000, 3000)
    write_series(second, out / "b", "CT", series_description="second", study_uid=uid)
    return out


def _choose(qtbot, win, name: str) -> None:
    win.layout_actions.layout_actions[name].trigger()
    settle(qtbot, win)
    for guest in win.view_area.guests:
        guest.update_now()


def _cells_in_pixels(win, name: str):
    """Each cell's rectangle in the captured view area's pixels, and the capture."""
    area = win.view_area
    rgb = capture_window(area)
    h, w = rgb.shape[:2]
    rects = [
        (int(x0 * w), int(y0 * h), int(x1 * w), int(y1 * h))
        for x0, y0, x1, y1 in LAYOUTS[name].fractions()
    ]
    return rects, rgb


def _inner(rgb, rect, margin=12):
    x0, y0, x1, y1 = rect
    return rgb[y0 + margin : y1 - margin, x0 + margin : x1 - margin]


def _is_image(part: np.ndarray) -> bool:
    """A drawn slice: grey levels spread (body, bone, air), not one flat colour."""
    grey = part.astype(float).mean(axis=-1)
    return grey.std() > 20 and (grey > 100).mean() > 0.05


@pytest.mark.parametrize(("name", "views"), [("1x1", 1), ("1x2", 2), ("1+2", 3), ("2x2", 3)])
def test_each_layout_draws_its_cells(qtbot, window, ct_dir, name, views):
    open_and_wait(qtbot, window, ct_dir)
    _choose(qtbot, window, name)
    area = window.view_area
    assert len(area.views) == views and area.grid.layout_shown.name == name
    rects, rgb = _cells_in_pixels(window, name)
    for n, rect in enumerate(rects):
        part = _inner(rgb, rect)
        if n < views:
            assert _is_image(part), f"{name}: cell {n} shows no image"
        else:  # 2x2 on one volume: the fourth cell says it is empty
            flat = np.abs(part.astype(int) - EMPTY_RGB).max(axis=-1) <= 8
            assert flat.mean() > 0.8, f"{name}: cell {n} is not the empty cell"
    # each view sits in its cell (its centre inside the cell's rectangle)
    for view, (x0, y0, x1, y1) in zip(area.views.values(), rects, strict=False):
        centre = view.mapTo(area, view.rect().center())
        assert x0 <= centre.x() <= x1 and y0 <= centre.y() <= y1
    if name == "1+2":  # the large cell is the acquisition plane, 3:2 wide
        big, small = list(area.views.values())[:2]
        assert big.width() > 1.3 * small.width() and big.height() > 1.8 * small.height()
        assert next(iter(area.views)) == "axial"
    if name == "2x2":
        labels = [w.text() for w in area.grid._empty]
        assert labels == [EMPTY_CELL_TEXT]


def test_layout_shots_for_a_person(qtbot, window):
    """The cervical demo in 2x2 and 1+2 and the spine demo in 1x2, kept for looking at."""
    SHOTS.mkdir(exist_ok=True)
    cervical = REPO / "resources/demo/cervical-fracture/phantom_fracture_C2_C6"
    open_and_wait(qtbot, window, cervical)
    assert window.layout_actions.current() == "1+2"  # the CT task's protocol: MPR
    for name in ("2x2", "1+2"):
        _choose(qtbot, window, name)
        save_png(capture_window(window), str(SHOTS / f"layout_cervical_{name}.png"))
    open_and_wait(qtbot, window, REPO / "resources/demo/spine-xray/02_damaged_L1_wedge")
    settle(qtbot, window)
    for guest in window.view_area.guests:
        guest.update_now()
    save_png(capture_window(window), str(SHOTS / "layout_spine_1x2.png"))


def test_spine_hangs_ap_beside_lateral(qtbot, window):
    open_and_wait(qtbot, window, REPO / "resources/demo/spine-xray/01_normal")
    for guest in window.view_area.guests:
        guest.update_now()
    area = window.view_area
    assert window.findings.current_task() == "spine-xray"
    assert window.layout_actions.current() == "1x2"
    (guest,) = area.guests
    shown = {area.series.view_position: area.views["native"],
             guest.series.view_position: guest.views["native"]}  # fmt: skip
    assert set(shown) == {"AP", "LL"}
    ap_x = shown["AP"].mapTo(area, shown["AP"].rect().topLeft()).x()
    lat_x = shown["LL"].mapTo(area, shown["LL"].rect().topLeft()).x()
    assert ap_x < lat_x, "the AP is not on the left"
    rects, rgb = _cells_in_pixels(window, "1x2")
    left, right = (_inner(rgb, r) for r in rects)
    assert _is_image(left) and _is_image(right)
    # the two films differ: the AP is wider than deep, the lateral shows the spine's profile
    assert not np.array_equal(left, right)
    # each film draws its own truth (truth.json beside each): hiding the lateral's changes it
    lat = next(a for a in (area, guest) if a.series.view_position == "LL")
    mine = [la for la in window.layers if la.series_uid == lat.series.series_uid]
    assert mine and all(la.source == "truth" for la in mine)
    with_truth = lat.views["native"].capture()
    for la in mine:
        window.layers.set_visible(la.id, False)
    lat.update_now()
    changed = np.abs(with_truth.astype(int) - lat.views["native"].capture()).max(axis=-1) > 30
    assert changed.sum() > 500, "the lateral's truth is not drawn on the lateral"
    for la in mine:
        window.layers.set_visible(la.id, True)
    # the report's "views as arranged" has both films
    from app.ui.capture import capture_views

    captions = [caption for caption, _ in capture_views(window)]
    assert len(captions) == 2 and "LAT" in captions[1], captions
    # the user's choice wins within the study
    _choose(qtbot, window, "1x1")
    assert len(area.views) == 1 and not area.guests


def test_linked_scroll_and_window_follow_and_unlink(qtbot, window, two_ct_dir):
    open_and_wait(qtbot, window, two_ct_dir)
    _choose(qtbot, window, "1x2")
    area = window.view_area
    (guest,) = area.guests
    assert list(area.views) == ["axial"] and list(guest.views) == ["axial"]
    before = guest.cross.slice_index("axial")
    shot_before = guest.views["axial"].capture()
    area.scroll("axial", 5)
    settle(qtbot, window)
    guest.update_now()
    assert area.cross.slice_index("axial") == before + 5
    assert guest.cross.slice_index("axial") == before + 5, "the linked view did not follow"
    assert not np.array_equal(guest.views["axial"].capture(), shot_before)
    # window/level follows (same modality)
    area.set_window(900.0, 321.0)
    assert (guest.window.center, guest.window.width) == (900.0, 321.0)
    # unlinked: the other view stays where it is
    window.layout_actions.link_action.trigger()
    assert not area.linker.enabled
    area.scroll("axial", -3)
    settle(qtbot, window)
    assert guest.cross.slice_index("axial") == before + 5
    area.set_window(100.0, 50.0)
    assert guest.window.width == 321.0


def test_a_restored_reading_keeps_its_layout_without_changing_the_default(qtbot, window, ct_dir):
    open_and_wait(qtbot, window, ct_dir)
    _choose(qtbot, window, "1x2")
    state = window.viewer_state()
    assert state.layout == "1x2"
    _choose(qtbot, window, "1x1")  # the reader's default is now 1x1
    window.apply_state(state)
    settle(qtbot, window)
    assert window.layout_actions.current() == "1x2"
    assert len(window.view_area.views) == 2  # two cells on screen (one series: two planes)
    assert window.settings.value("view/layout") == "1x1", "the reading's layout became the default"
    assert window.layout_actions.chosen == "1x1"


def test_cine_advances_slices_and_loops(qtbot, window, ct_dir):
    open_and_wait(qtbot, window, ct_dir)
    area = window.view_area
    cine = window.cine
    cine.set_fps(30)
    start = area.cross.slice_index("axial")
    cine.play_action.trigger()
    assert cine.playing
    qtbot.waitUntil(lambda: area.cross.slice_index("axial") >= start + 4, timeout=WAIT_MS)
    cine.play_action.trigger()
    assert not cine.playing
    stopped_at = area.cross.slice_index("axial")
    qtbot.wait(200)
    assert area.cross.slice_index("axial") == stopped_at
    # at the last slice: loop goes back to the first, else cine stops there
    last = area.cross.planes["axial"].n_slices - 1
    area.go_to_end("axial", last=True)
    cine.set_loop(True)
    cine.step()
    assert area.cross.slice_index("axial") == 0
    area.go_to_end("axial", last=True)
    cine.set_loop(False)
    cine.play()
    cine.step()
    assert not cine.playing and area.cross.slice_index("axial") == last
    # the key: P plays and pauses (a window shortcut: the window must be the active one)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    area.views["axial"].setFocus()
    qtbot.keyClick(area.views["axial"], Qt.Key.Key_P)
    assert cine.playing
    qtbot.keyClick(area.views["axial"], Qt.Key.Key_P)
    assert not cine.playing
    # the view with the focus is the one played
    area.views["coronal"].setFocus()
    qtbot.waitUntil(area.views["coronal"].hasFocus, timeout=5000)
    before = area.cross.slice_index("coronal")
    axial = area.cross.slice_index("axial")
    cine.set_loop(True)
    cine.step()
    assert area.cross.slice_index("coronal") == before + 1
    assert area.cross.slice_index("axial") == axial
