"""A viewer process painting a mask is killed with SIGKILL; the next viewer offers the edits
and restores them voxel for voxel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtWidgets

from tests.gui.conftest import WAIT_MS, open_and_wait

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys, time
import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Qt

app = QtWidgets.QApplication([])
from app.ui.main import MainWindow

win = MainWindow()
win.confirm_close = lambda: True
win.resize(1200, 800)
win.show()
win.open_path(sys.argv[1])
end = time.monotonic() + 120
while (win.series is None or win.is_busy() or win.view_area._update_pending) and time.monotonic() < end:
    app.processEvents()
    time.sleep(0.01)
ed = win.mask_editor.new_mask()
ed.set_radius(3.0)
view = win.view_area.views["axial"]
left = Qt.MouseButton.LeftButton

def send(kind, x, y, buttons, which):
    p = QtCore.QPointF(x, y)
    QtWidgets.QApplication.sendEvent(view, QtGui.QMouseEvent(kind, p, view.mapToGlobal(p), which,
                                     buttons, Qt.KeyboardModifier.NoModifier))

w, h = view.width(), view.height()
for a, b in (((0.3, 0.4), (0.7, 0.45)), ((0.4, 0.3), (0.45, 0.7)), ((0.2, 0.6), (0.6, 0.6))):
    send(QtCore.QEvent.Type.MouseButtonPress, w * a[0], h * a[1], left, left)
    send(QtCore.QEvent.Type.MouseMove, w * b[0], h * b[1], left, Qt.MouseButton.NoButton)
    send(QtCore.QEvent.Type.MouseButtonRelease, w * b[0], h * b[1], Qt.MouseButton.NoButton, left)
ed.undo()
np.save(sys.argv[2], ed.data)
print("READY", flush=True)
while True:
    app.processEvents()
    time.sleep(0.01)
"""


def test_killed_viewer_edits_come_back(qtbot, window, ct_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("OSTEOVIEW_WORKSPACE_DIR", str(tmp_path / "ws"))
    env = dict(os.environ, PYTHONPATH=str(REPO), OSTEOVIEW_SETTINGS=str(tmp_path / "child.ini"))
    expected_file = tmp_path / "expected.npy"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ct_dir), str(expected_file)],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = child.stdout.readline().strip()
        assert line == "READY", line
        time.sleep(1.0)  # the journal's promise: on disk within 1 s
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    expected = np.load(expected_file)
    assert expected.any()
    open_and_wait(qtbot, window, ct_dir)  # show_series asks
    ui = window.mask_editor
    qtbot.waitUntil(lambda: ui.prompt is not None and ui.prompt.isVisible(), timeout=WAIT_MS)
    assert "Mask 1: 4 unsaved changes" in ui.prompt.text()  # three strokes and an undo
    ui.prompt.button(QtWidgets.QMessageBox.StandardButton.Yes).click()
    layer = window.layers.by_name("Mask 1 (restored)")
    assert layer is not None
    np.testing.assert_array_equal(layer.overlay.image.array, expected)
    editor = ui.start(layer)
    assert editor.history.can_redo  # the undone stroke can still be redone
    ui.close()
