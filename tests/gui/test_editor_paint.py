"""The mask editor in the real window: synthetic mouse events paint through the editing model;
assertions on the layer's data and on the drawn pixels (captured through VTK)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Qt

from app.ui.capture import capture_window, save_png
from tests.gui.conftest import WAIT_MS, open_and_wait, settle

pytestmark = pytest.mark.gui
SHOTS = Path(tempfile.gettempdir()) / "osteoview-shots"  # to look at; never in the repository


def _send(widget, kind, pos, buttons, which, mods=Qt.KeyboardModifier.NoModifier) -> None:
    p = QtCore.QPointF(*pos)
    ev = QtGui.QMouseEvent(kind, p, widget.mapToGlobal(p), which, buttons, mods)
    QtWidgets.QApplication.sendEvent(widget, ev)


def drag(widget, start, end, steps=3, mods=Qt.KeyboardModifier.NoModifier) -> None:
    """A left-button stroke (few moves: a fast stroke)."""
    left = Qt.MouseButton.LeftButton
    _send(widget, QtCore.QEvent.Type.MouseButtonPress, start, left, left, mods)
    for n in range(1, steps + 1):
        p = (start[0] + (end[0] - start[0]) * n / steps, start[1] + (end[1] - start[1]) * n / steps)
        _send(widget, QtCore.QEvent.Type.MouseMove, p, left, Qt.MouseButton.NoButton, mods)
    _send(widget, QtCore.QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton, left, mods)


def red(rgb: np.ndarray) -> np.ndarray:
    """The new mask's red (255, 0, 0) at opacity 0.5 over the grey CT, or its full-red edge."""
    r, g, b = (rgb[..., c].astype(int) for c in range(3))
    return (r - g > 60) & (r - b > 60)


@pytest.fixture()
def editor_ui(window, tmp_path, monkeypatch):
    # the window's workspace is read when an edit starts, so setting it now is in time
    monkeypatch.setenv("OSTEOVIEW_WORKSPACE_DIR", str(tmp_path / "workspaces"))
    ui = window.mask_editor  # installed by MainWindow
    yield ui
    ui.close()


def test_paint_undo_redo_and_erase_in_the_axial_view(qtbot, window, ct_dir, editor_ui):
    open_and_wait(qtbot, window, ct_dir)
    editor_ui.new_mask()
    ed = editor_ui.editor
    assert ed is not None and editor_ui.edit_action.isChecked()
    va = window.view_area
    view = va.views["axial"]
    settle(qtbot, window)
    assert not red(view.capture()).any()
    w, h = view.width(), view.height()
    ed.set_radius(3.0)
    drag(view, (w * 0.3, h * 0.5), (w * 0.7, h * 0.5))
    k = va.cross.slice_index("axial")
    painted = np.argwhere(ed.data)
    assert painted.size and set(painted[:, 0]) == {k}  # only the slice on screen
    # the stroke is unbroken from one end to the other, along screen x = patient i
    row = int(np.median(painted[:, 1]))
    cols = np.flatnonzero(ed.data[k, row])
    assert cols.size and (np.diff(cols) == 1).all() and cols.size > 15
    # where it landed: the press point's world position is a painted voxel
    x, y = view.to_plane_mm(QtCore.QPointF(w * 0.3 + 6, h * 0.5))
    plane = va.cross.planes["axial"]
    xyz = plane.world(y / plane.spacing[0], x / plane.spacing[1], va.cross.depth("axial"))
    i, j, kk = np.rint(va.series.image.world_to_index(xyz)).astype(int)
    assert ed.data[kk, j, i] == 1
    shot = view.capture()
    assert red(shot)[int(h * 0.45) : int(h * 0.55), int(w * 0.35) : int(w * 0.65)].mean() > 0.3
    SHOTS.mkdir(exist_ok=True)
    save_png(capture_window(window), str(SHOTS / "editor_axial_stroke.png"))
    # Ctrl+Z through the window's shortcut, Ctrl+Y back
    QtCore.QCoreApplication.processEvents()
    window.activateWindow()
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not ed.data.any()
    settle(qtbot, window)
    assert not red(view.capture()).any()
    qtbot.keyClick(view, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert (np.argwhere(ed.data) == painted).all()
    # Ctrl held erases
    drag(view, (w * 0.45, h * 0.5), (w * 0.55, h * 0.5), mods=Qt.KeyboardModifier.ControlModifier)
    assert 0 < ed.data.sum() < len(painted)
    # ] grows the brush, Shift+wheel shrinks it, e / f / b pick the tool
    r = ed.radius_mm
    qtbot.keyClick(view, Qt.Key.Key_BracketRight)
    assert ed.radius_mm > r
    centre = QtCore.QPointF(w / 2, h / 2)
    wheel = QtGui.QWheelEvent(centre, view.mapToGlobal(centre), QtCore.QPoint(),
                              QtCore.QPoint(0, -240), Qt.MouseButton.NoButton,
                              Qt.KeyboardModifier.ShiftModifier, Qt.ScrollPhase.NoScrollPhase,
                              False)  # fmt: skip
    depth = va.cross.depth("axial")
    QtWidgets.QApplication.sendEvent(view, wheel)
    assert ed.radius_mm < r + 0.1 and va.cross.depth("axial") == depth  # sized, not scrolled
    for key, tool in ((Qt.Key.Key_E, "eraser"), (Qt.Key.Key_F, "fill"), (Qt.Key.Key_B, "brush")):
        qtbot.keyClick(view, key)
        assert ed.tool.value == tool and editor_ui.tool_actions[ed.tool].isChecked()


def test_paint_in_the_sagittal_view_lands_on_that_plane(qtbot, window, ct_dir, editor_ui):
    open_and_wait(qtbot, window, ct_dir)
    ed = editor_ui.new_mask()
    va = window.view_area
    view = va.views["sagittal"]
    settle(qtbot, window)
    ed.set_radius(2.0)
    drag(view, (view.width() * 0.5, view.height() * 0.3), (view.width() * 0.5, view.height() * 0.7))
    painted = np.argwhere(ed.data)
    assert painted.size
    i_cross = int(np.rint(va.series.image.world_to_index(va.cross.point)[0]))
    assert set(painted[:, 2]) == {i_cross}  # one sagittal slice: the one on screen
    assert len(set(painted[:, 0])) > 5  # the stroke runs head to foot across axial slices
    settle(qtbot, window)
    assert red(view.capture()).any()


def test_radiograph_painting(qtbot, window, tmp_path, editor_ui):
    from app.study.dicom_writer import write_radiograph
    from tests.fake_tasks import radiograph_phantom

    write_radiograph(radiograph_phantom(), tmp_path / "xr.dcm")
    open_and_wait(qtbot, window, tmp_path / "xr.dcm")
    ed = editor_ui.new_mask()
    view = next(iter(window.view_area.views.values()))
    settle(qtbot, window)
    ed.set_radius(ed.voxel_mm * 6)
    drag(view, (view.width() * 0.4, view.height() * 0.5), (view.width() * 0.6, view.height() * 0.5))
    assert ed.data.shape[0] == 1 and ed.data[0].sum() > 50
    settle(qtbot, window)
    assert red(view.capture()).any()


def test_reopening_offers_to_restore(qtbot, window, ct_dir, editor_ui):
    open_and_wait(qtbot, window, ct_dir)
    ed = editor_ui.new_mask()
    view = window.view_area.views["axial"]
    settle(qtbot, window)
    drag(view, (view.width() * 0.3, view.height() * 0.4), (view.width() * 0.6, view.height() * 0.6))
    expected = ed.data.copy()
    assert editor_ui.journal.flush()
    # as after a crash: the journal is left behind, the study opened again
    editor_ui.close()
    open_and_wait(qtbot, window, ct_dir)
    asked: list[str] = []
    assert editor_ui.offer_recovery(ask=lambda text: asked.append(text) or True) == 1
    assert "Mask 1: 1 unsaved change" in asked[0]
    layer = window.layers.by_name("Mask 1 (restored)")
    assert layer is not None
    np.testing.assert_array_equal(layer.overlay.image.array, expected)
    restored = editor_ui.start(layer)
    restored.undo()  # the undo history survived the "crash"
    assert not restored.data.any()


def test_reopening_asks_in_a_dialog_and_no_keeps_the_edits(qtbot, window, ct_dir, editor_ui):
    open_and_wait(qtbot, window, ct_dir)
    ed = editor_ui.new_mask()
    view = window.view_area.views["axial"]
    settle(qtbot, window)
    drag(view, (view.width() * 0.3, view.height() * 0.4), (view.width() * 0.6, view.height() * 0.6))
    expected = ed.data.copy()
    assert editor_ui.journal.flush()
    open_and_wait(qtbot, window, ct_dir)  # the edited layer goes; its journal stays on disk
    assert editor_ui.editor is None
    # MainWindow.show_series asked (a dialog that does not block)
    qtbot.waitUntil(lambda: editor_ui.prompt is not None and editor_ui.prompt.isVisible(),
                    timeout=WAIT_MS)  # fmt: skip
    no = editor_ui.prompt.button(QtWidgets.QMessageBox.StandardButton.No)
    no.click()
    assert window.layers.by_name("Mask 1 (restored)") is None
    assert editor_ui.offer_recovery(ask=lambda _text: True) == 1  # still offered: nothing lost
    layer = window.layers.by_name("Mask 1 (restored)")
    np.testing.assert_array_equal(layer.overlay.image.array, expected)


def test_no_workspace_left_for_a_mask_never_edited_or_saved(qtbot, window, ct_dir, editor_ui,
                                                            tmp_path):  # fmt: skip
    open_and_wait(qtbot, window, ct_dir)
    editor_ui.new_mask()
    assert editor_ui.journal.flush()
    ws = tmp_path / "workspaces"
    assert any(ws.rglob("meta.json"))
    editor_ui.close()
    assert not any(ws.rglob("meta.json"))
