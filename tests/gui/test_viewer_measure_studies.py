"""Measurements belong to the study they were drawn on (opening another study hides them, opening
theirs again brings them back), and the saved viewer state brings the layout back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.study.dicom_writer import write_series
from app.ui.capture import capture_window, save_png
from app.ui.report_dialog import collect_report_input
from app.viewstate.state import ViewerState
from tests.gui.conftest import WAIT_MS, open_and_wait, phantom_ct, settle
from tests.gui.test_viewer_layouts import EMPTY_RGB, SHOTS, _cells_in_pixels, _inner, _is_image
from tests.gui.test_viewer_measure import drag

pytestmark = pytest.mark.gui


@pytest.fixture()
def study_b(tmp_path):
    """A second CT study (its own StudyInstanceUID), brighter so that a picture tells it apart."""
    vol = phantom_ct()
    vol.array[:] = np.clip(vol.array.astype(np.int32) + 300, -1000, 3000)
    out = tmp_path / "study_b"
    write_series(vol, out, "CT", series_description="second study")
    return out


def _roi(qtbot, window) -> None:
    """An ellipse ROI dragged across the middle of the axial view."""
    view = window.view_area.views["axial"]
    window.measure_tools.actions["ellipse"].trigger()
    cx, cy = view.width() / 2, view.height() / 2
    drag(view, (cx - 30, cy - 30), (cx + 30, cy + 30))
    window.measure_tools.actions["ellipse"].trigger()  # tool off
    settle(qtbot, window)


def _shot(qtbot, window, name: str) -> None:
    settle(qtbot, window)
    SHOTS.mkdir(exist_ok=True)
    save_png(capture_window(window), str(SHOTS / name))


def test_measurements_follow_their_study(qtbot, window, ct_dir, study_b, tmp_path):
    open_and_wait(qtbot, window, ct_dir)
    _roi(qtbot, window)
    (a,) = list(window.measurements)
    rows_a = window.measure_tools.panel.rows()
    assert [r[0] for r in rows_a] == ["Ellipse 1"]

    open_and_wait(qtbot, window, study_b)
    tools = window.measure_tools
    assert tools.panel.rows() == [] and list(window.measurements) == []
    assert window.viewer_state().measurements == []
    assert collect_report_input(window).measurements == []
    assert window.view_area.views["axial"]._measure_overlay.drawn == []
    _shot(qtbot, window, "measure_study_b.png")
    _roi(qtbot, window)
    (b,) = list(window.measurements)
    assert b.name == "Ellipse 1" and b is not a  # numbered within study B
    saved_b = window.viewer_state().save(tmp_path / "b.json")
    assert [m["series_uid"] for m in json.loads(saved_b.read_text())["measurements"]] == [
        window.series.series_uid
    ]

    # study A again, from the recent menu: its measurement is back, B's is not listed
    (again,) = [act for act in window.recent_menu.actions() if act.text() == str(ct_dir)]
    again.trigger()
    qtbot.waitUntil(lambda: "study_b" not in window.study_path and not window.is_busy(),
                    timeout=WAIT_MS)  # fmt: skip
    settle(qtbot, window)
    assert list(window.measurements) == [a]
    assert tools.panel.rows() == rows_a
    assert window.view_area.views["axial"]._measure_overlay.drawn == [a]
    lines = collect_report_input(window).measurements
    assert len(lines) == 1 and lines[0].startswith("Ellipse 1 (axial slice")
    _shot(qtbot, window, "measure_study_a_again.png")
    # "delete all" on A leaves B's alone
    window.measurements.clear()
    open_and_wait(qtbot, window, study_b)
    assert list(window.measurements) == [b]


def _cells(window) -> list[tuple[int, int, str, str]]:
    """(row, column, series UID, plane) of each view in the view area's grid."""
    area, out = window.view_area, []
    for owner in (area, *area.guests):
        for plane, view in owner.views.items():
            index = area.grid.grid.indexOf(view)
            if index >= 0:
                row, col, _, _ = area.grid.grid.getItemPosition(index)
                out.append((row, col, owner.series.series_uid, plane))
    return sorted(out)


def test_saved_state_brings_the_layout_back(qtbot, window, ct_dir, tmp_path):
    from app.ui.main import MainWindow

    open_and_wait(qtbot, window, ct_dir)
    window.layout_actions.layout_actions["2x2"].trigger()
    settle(qtbot, window)
    cells = _cells(window)
    assert len(cells) == 3
    path = window.viewer_state().save(tmp_path / "state.json")
    assert json.loads(path.read_text())["layout"] == "2x2"
    window.layout_actions.layout_actions["1x1"].trigger()  # the last layout the user chose

    other = MainWindow()  # a new session: its layout from the settings is 1x1
    other.confirm_close = lambda: True
    qtbot.addWidget(other)
    other.resize(1400, 850)
    other.show()
    qtbot.waitExposed(other)
    assert other.layout_actions.chosen == "1x1"
    other.restore_state(ViewerState.load(path))
    qtbot.waitUntil(lambda: other.series is not None and not other.is_busy(), timeout=WAIT_MS)
    settle(qtbot, other)
    assert other.layout_actions.current() == "2x2"
    assert _cells(other) == cells
    rects, rgb = _cells_in_pixels(other, "2x2")  # three planes drawn, the fourth cell empty
    assert [_is_image(_inner(rgb, r)) for r in rects] == [True, True, True, False]
    assert (np.abs(_inner(rgb, rects[3]).astype(int) - EMPTY_RGB).max(axis=-1) <= 8).mean() > 0.8

    # a state file from before layouts were saved still restores, and keeps the layout on
    # screen (the reader's 1x2 here, not the default 1+2)
    old = json.loads(path.read_text())
    del old["layout"]
    old_path = tmp_path / "old.json"
    old_path.write_text(json.dumps(old))
    other.layout_actions.layout_actions["1x2"].trigger()  # not the default either
    settle(qtbot, other)
    other.view_area.scroll("axial", 3)
    moved = other.view_area.cross.slice_index("axial")
    other.restore_state(ViewerState.load(old_path))
    qtbot.waitUntil(lambda: not other.is_busy(), timeout=WAIT_MS)
    settle(qtbot, other)
    assert other.layout_actions.current() == "1x2"
    assert other.view_area.cross.slice_index("axial") == moved - 3  # the saved crosshair
    other.close()
