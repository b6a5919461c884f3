"""The viewer with a CT: three linked views, orientation, scrolling, window/level, overlays.

Every assertion reads rendered pixels captured through VTK (vtkWindowToImageFilter)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Qt

from app.findings.types import LabelMapOverlay
from app.ui.slice_view import CROSSHAIR_COLOUR
from tests.gui.conftest import WAIT_MS, colour_mask, open_and_wait, settle

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[2]
_CROSS_RGB = tuple(int(c * 255) for c in CROSSHAIR_COLOUR)


def _send_drag(widget, button, start, delta, steps=5):
    """Press, move with the button held, release (QTest cannot hold buttons while moving)."""
    pos = QtCore.QPointF(*start)

    def send(kind, p, buttons, which):
        ev = QtGui.QMouseEvent(kind, p, widget.mapToGlobal(p), which, buttons,
                               Qt.KeyboardModifier.NoModifier)  # fmt: skip
        QtWidgets.QApplication.sendEvent(widget, ev)

    send(QtCore.QEvent.Type.MouseButtonPress, pos, button, button)
    for n in range(1, steps + 1):
        p = QtCore.QPointF(start[0] + delta[0] * n / steps, start[1] + delta[1] * n / steps)
        send(QtCore.QEvent.Type.MouseMove, p, button, Qt.MouseButton.NoButton)
    send(QtCore.QEvent.Type.MouseButtonRelease, p, Qt.MouseButton.NoButton, button)


def _bright_centroid(rgb: np.ndarray) -> tuple[float, float]:
    grey = rgb.astype(float).mean(axis=-1)
    rows, cols = np.nonzero(grey >= 250)
    return rows.mean() / rgb.shape[0], cols.mean() / rgb.shape[1]


def test_ct_three_views_orientation_and_marker(qtbot, window, ct_dir):
    open_and_wait(qtbot, window, ct_dir)
    va = window.view_area
    assert set(va.views) == {"axial", "sagittal", "coronal"}
    # put the crosshair on the marker (patient left, anterior, superior)
    marker = va.series.image.index_to_world(np.array([48.5, 16.5, 30.5]))
    va.centre_on(marker)
    va.apply_preset("Bone")
    settle(qtbot, window)
    shots = va.capture_views()
    for name, rgb in shots.items():
        assert rgb.std() > 10, f"{name} view is blank"
    row, col = _bright_centroid(shots["axial"])
    assert col > 0.5, "patient left must be on the screen's right in axial"
    assert row < 0.5, "anterior must be at the top in axial"
    row, col = _bright_centroid(shots["coronal"])
    assert col > 0.5 and row < 0.5, "coronal: left on the right, superior at the top"
    row, col = _bright_centroid(shots["sagittal"])
    assert col < 0.5 and row < 0.5, "sagittal: anterior on the left, superior at the top"


def _patch(rgb: np.ndarray, edge: str) -> np.ndarray:
    h, w = rgb.shape[:2]
    box = {
        "left": (h // 2 - 18, h // 2 + 18, 0, 36),
        "right": (h // 2 - 18, h // 2 + 18, w - 36, w),
        "top": (0, 36, w // 2 - 18, w // 2 + 18),
        "bottom": (h - 36, h, w // 2 - 18, w // 2 + 18),
    }[edge]
    return rgb[box[0] : box[1], box[2] : box[3]].astype(int)


def test_orientation_letters_rendered_at_the_right_edges(qtbot, window, ct_dir):
    """Each edge shows the letter of the patient direction that lies there: the patch at the
    left edge of the axial view is pixel-identical to a rendering of 'R' in that place and
    differs from one of 'L' (and so on for every edge of every view)."""
    open_and_wait(qtbot, window, ct_dir)
    expected = {
        "axial": {"left": "R", "right": "L", "top": "A", "bottom": "P"},
        "coronal": {"left": "R", "right": "L", "top": "S", "bottom": "I"},
        "sagittal": {"left": "A", "right": "P", "top": "S", "bottom": "I"},
    }
    opposite = {"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}
    for name, letters in expected.items():
        view = window.view_area.views[name]
        shown = view.capture()
        for edge, letter in letters.items():
            actor = view.letters[edge]
            assert actor.GetInput() == letter
            actual = _patch(shown, edge)
            assert (actual.sum(axis=-1) > 300).sum() > 10, f"{name} {edge}: no letter drawn"
            actor.SetInput(opposite[letter])
            wrong = _patch(view.capture(), edge)
            actor.SetInput(letter)
            again = _patch(view.capture(), edge)
            assert np.array_equal(actual, again)
            assert np.abs(actual - wrong).sum() > 1000, f"{name} {edge}: R/L indistinct"


def test_scroll_keys_wheel_home_end_change_the_image(qtbot, window, ct_dir):
    open_and_wait(qtbot, window, ct_dir)
    va = window.view_area
    view = va.views["axial"]
    before_index = va.cross.slice_index("axial")
    before = view.capture()
    qtbot.keyClick(view, Qt.Key.Key_Up)
    qtbot.keyClick(view, Qt.Key.Key_Up)
    qtbot.waitUntil(lambda: va.cross.slice_index("axial") == before_index + 2, timeout=WAIT_MS)
    settle(qtbot, window)
    assert not np.array_equal(before, view.capture())
    qtbot.keyClick(view, Qt.Key.Key_End)
    settle(qtbot, window)
    assert va.cross.slice_index("axial") == 39
    qtbot.keyClick(view, Qt.Key.Key_Home)
    settle(qtbot, window)
    assert va.cross.slice_index("axial") == 0
    wheel = QtGui.QWheelEvent(
        QtCore.QPointF(50, 50), QtCore.QPointF(view.mapToGlobal(QtCore.QPoint(50, 50))),
        QtCore.QPoint(0, 0), QtCore.QPoint(0, 360), Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False,
    )  # fmt: skip
    coronal = va.views["coronal"]
    y_before = coronal.cross_mapper.GetInput().GetPoint(0)[1]
    line_before = colour_mask(coronal.capture(), _CROSS_RGB, 8).sum(axis=1).argmax()
    QtWidgets.QApplication.sendEvent(view, wheel)
    settle(qtbot, window)
    assert va.cross.slice_index("axial") == 3
    # the other views' crosshair follows: the coronal view's horizontal line moved up 3 slices
    y_after = coronal.cross_mapper.GetInput().GetPoint(0)[1]
    assert y_after - y_before == pytest.approx(3 * 2.5)
    line_after = colour_mask(coronal.capture(), _CROSS_RGB, 8).sum(axis=1).argmax()
    assert line_after < line_before  # higher on screen (superior is up)


def test_window_level_drag_presets_invert_reset(qtbot, window, ct_dir):
    open_and_wait(qtbot, window, ct_dir)
    va = window.view_area
    view = va.views["axial"]
    base = view.capture().astype(float).mean()
    width0 = va.window.width
    _send_drag(view, Qt.MouseButton.LeftButton, (100, 100), (80, 0))
    settle(qtbot, window)
    assert va.window.width > width0
    qtbot.keyClick(view, Qt.Key.Key_2)  # preset 2 = first CT preset (Bone)
    settle(qtbot, window)
    assert (va.window.center, va.window.width) == (400.0, 1800.0)
    bone = view.capture().astype(float).mean()
    assert bone != base
    qtbot.keyClick(view, Qt.Key.Key_I)
    settle(qtbot, window)
    inverted = view.capture().astype(float).mean()
    assert inverted > bone + 20  # mostly air: black becomes white
    scale0 = view.renderer.GetActiveCamera().GetParallelScale()
    _send_drag(view, Qt.MouseButton.RightButton, (100, 200), (0, -60))
    assert view.renderer.GetActiveCamera().GetParallelScale() < scale0  # zoomed in
    _send_drag(view, Qt.MouseButton.MiddleButton, (100, 200), (40, 0))
    qtbot.keyClick(view, Qt.Key.Key_Space)
    settle(qtbot, window)
    assert not va.window.invert
    assert view.renderer.GetActiveCamera().GetParallelScale() == pytest.approx(scale0)


def test_label_overlay_in_every_view_and_hidden_by_the_layer_panel(qtbot, window, ct_dir):
    open_and_wait(qtbot, window, ct_dir)
    va = window.view_area
    image = va.series.image
    lab = np.zeros(image.shape, np.uint8)
    lab[26:36, 12:22, 44:54] = 1  # around the marker: left, anterior, superior
    ov = LabelMapOverlay("Test labels", image=image.with_array(lab),
                         labels={1: ("blob", (0, 255, 0))}, opacity=1.0)  # fmt: skip
    layer = window.layers.add_overlay(ov, "user")
    va.centre_on(image.index_to_world(np.array([48.5, 16.5, 30.5])))
    settle(qtbot, window)
    for name, rgb in va.capture_views().items():
        green = colour_mask(rgb, (0, 255, 0), 10)
        assert green.sum() > 20, f"{name}: overlay colour missing"
        rows, cols = np.nonzero(green)
        expect_right = name in ("axial", "coronal")  # patient left on screen right
        assert (cols.mean() > rgb.shape[1] / 2) == expect_right, name
        assert rows.mean() < rgb.shape[0] / 2, name  # anterior / superior at the top
    # hide it with the layer panel's checkbox, as a user would
    row = window.layer_panel.rows[layer.id]
    row.check.click()
    assert not layer.visible
    settle(qtbot, window)
    for name, rgb in va.capture_views().items():
        assert colour_mask(rgb, (0, 255, 0), 10).sum() == 0, f"{name}: hidden overlay drawn"
    row.check.click()
    settle(qtbot, window)
    assert colour_mask(va.views["axial"].capture(), (0, 255, 0), 10).sum() > 20


def test_click_moves_crosshair_and_status_shows_hu_and_lps(qtbot, window, ct_dir):
    open_and_wait(qtbot, window, ct_dir)
    va = window.view_area
    view = va.views["axial"]
    before = va.cross.slice_index("sagittal")
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QtCore.QPoint(view.width() // 5,
                                                                         view.height() // 2))  # fmt: skip
    qtbot.waitUntil(lambda: va.cross.slice_index("sagittal") != before, timeout=WAIT_MS)
    qtbot.mouseMove(view, QtCore.QPoint(view.width() // 2, view.height() // 2))
    qtbot.waitUntil(lambda: "HU" in window.cursor_label.text(), timeout=WAIT_MS)
    assert "mm LPS" in window.cursor_label.text()


def test_recent_files_and_state_round_trip(qtbot, window, ct_dir, tmp_path):
    from app.ui.main import MainWindow
    from app.viewstate.state import ViewerState

    open_and_wait(qtbot, window, ct_dir)
    assert window.recent_files()[0] == str(ct_dir)
    va = window.view_area
    va.scroll("axial", 5)
    va.apply_preset("Bone")
    va.toggle_invert()
    layer = window.layers.add_overlay(
        LabelMapOverlay("Blob", image=va.series.image.with_array(
            np.ones(va.series.image.shape, np.uint8)), labels={1: ("b", (0, 255, 0))}),
        "user",
    )  # fmt: skip
    window.layers.set_opacity(layer.id, 0.3)
    path = window.viewer_state().save(tmp_path / "state.json")

    other = MainWindow()
    qtbot.addWidget(other)
    other.show()
    other.restore_state(ViewerState.load(path))
    qtbot.waitUntil(lambda: other.series is not None and not other.is_busy(), timeout=WAIT_MS)
    settle(qtbot, other)
    assert other.view_area.cross.slice_index("axial") == va.cross.slice_index("axial")
    assert other.view_area.window == va.window
    other.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_drag_and_drop_opens(qtbot, window, ct_dir):
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(ct_dir))])
    pos = QtCore.QPointF(200, 200)
    actions = Qt.DropAction.CopyAction
    enter = QtGui.QDragEnterEvent(pos.toPoint(), actions, mime, Qt.MouseButton.LeftButton,
                                  Qt.KeyboardModifier.NoModifier)  # fmt: skip
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QtGui.QDropEvent(pos, actions, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)  # fmt: skip
    window.dropEvent(drop)
    qtbot.waitUntil(lambda: window.series is not None and not window.is_busy(), timeout=WAIT_MS)
    assert window.series.description == "viewer test phantom"
    assert window.browser.count() == 1 and not window.browser.item(0).icon().isNull()


def test_bad_file_is_a_message_naming_it(qtbot, window, tmp_path):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"not a dicom file at all")
    window.open_path(str(bad))
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    assert "broken.dcm" in window.last_error
    assert window.isVisible() and window.series is None


def test_loading_runs_in_a_worker_and_cancels(qtbot, window, monkeypatch):
    """A slow load keeps the event loop turning and stops on Cancel."""
    import threading

    import app.study as study
    from app.study.model import LoadCancelled

    started = threading.Event()
    seen = []

    def slow_load(path, progress=None, cancel=None):
        started.set()
        for n in range(1000):
            if cancel and cancel():
                raise LoadCancelled("cancelled")
            progress and progress(n, 1000)
            seen.append(threading.get_ident())
            threading.Event().wait(0.01)
        raise AssertionError("never cancelled")

    monkeypatch.setattr(study, "load", slow_load)
    window.open_path("/some/study")
    qtbot.waitUntil(started.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.load_progress.value() > 3, timeout=WAIT_MS)
    assert window.load_cancel.isVisible()
    window.load_cancel.click()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    assert "cancelled" in window.statusBar().currentMessage().lower()
    assert threading.get_ident() not in seen  # the load never ran on the GUI thread


def test_real_gantry_tilted_ct_renders_in_three_views(qtbot, window, real_data):
    path = real_data / "ct_head_gantry_tilt"
    open_and_wait(qtbot, window, path)
    va = window.view_area
    assert va.series.image.direction[1, 1] < 0.99  # oblique: sheared grid kept, not squashed
    for name, rgb in va.capture_views().items():
        inner = rgb[40:-40, 40:-40].astype(float)
        assert inner.std() > 15, f"{name} view of the real head CT is blank"
    # skull is bright at bone window, left-right symmetric about the centre in axial
    va.apply_preset("Bone")
    settle(qtbot, window)
    grey = va.views["axial"].capture().astype(float).mean(axis=-1)
    cols = np.nonzero((grey > 200).any(axis=0))[0]
    centre = grey.shape[1] / 2
    assert abs((cols.min() + cols.max()) / 2 - centre) < 0.1 * grey.shape[1]


RUN_VIEWER = """
import sys
from PySide6 import QtCore, QtWidgets
from app.ui.main import MainWindow, run_viewer

app = QtWidgets.QApplication(sys.argv[:1])
deadline = QtCore.QDeadlineTimer(60000)


def poll():
    wins = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
    if wins and wins[0].series is not None and not wins[0].is_busy():
        print("SHOWN", wins[0].series.description, flush=True)
        wins[0].close()
        app.quit()
    elif deadline.hasExpired():
        app.quit()
    else:
        QtCore.QTimer.singleShot(50, poll)


QtCore.QTimer.singleShot(50, poll)
print("RC", run_viewer([sys.argv[1]]), flush=True)
"""


def test_run_viewer_opens_the_path_from_the_command_line(ct_dir, tmp_path):
    # In a process of its own: once app.exec() has returned, this QApplication is closing and
    # drops signals that later tests' worker threads send.
    env = {**os.environ, "OSTEOVIEW_SETTINGS": str(tmp_path / "settings.ini")}
    r = subprocess.run(
        [sys.executable, "-c", RUN_VIEWER, str(ct_dir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "SHOWN viewer test phantom" in r.stdout, r.stdout + r.stderr
    assert "RC 0" in r.stdout, r.stdout + r.stderr
