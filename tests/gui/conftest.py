"""Fixtures for the viewer's GUI tests (a real X server comes from tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from app.study.dicom_writer import write_series
from app.study.geometry import ImageVolume

pytest.importorskip("pytestqt")
WAIT_MS = 60000  # generous: the machine may be shared and slow


def phantom_ct() -> ImageVolume:
    """A small LPS-oriented CT: soft-tissue body, a bony column, and a dense marker on the
    patient's LEFT (+x), ANTERIOR (-y) side near the top, so orientation can be read off pixels."""
    nk, nj, ni = 40, 64, 64
    arr = np.full((nk, nj, ni), -1000, np.int16)
    jj, ii = np.mgrid[0:nj, 0:ni]
    body = (ii - 32) ** 2 + (jj - 32) ** 2 < 26**2
    arr[:, body] = 40
    bone = (ii - 32) ** 2 + (jj - 40) ** 2 < 6**2
    arr[:, bone] = 700
    arr[28:34, 14:20, 46:52] = 1500  # left (large i), anterior (small j), superior (large k)
    # slice-dependent texture so that scrolling changes the picture
    arr[:, 10:12, 10:54] = (np.arange(nk) * 20 - 400)[:, None, None]
    return ImageVolume(arr, (2.5, 0.8, 0.8), np.array([-25.0, -25.0, 100.0]), np.eye(3))


@pytest.fixture()
def ct_dir(tmp_path):
    out = tmp_path / "ct"
    write_series(phantom_ct(), out, "CT", series_description="viewer test phantom")
    return out


@pytest.fixture()
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("OSTEOVIEW_SETTINGS", str(tmp_path / "settings.ini"))
    from app.ui.main import MainWindow

    win = MainWindow()
    win.confirm_close = lambda: True
    qtbot.addWidget(win)
    win.resize(1400, 850)
    win.show()
    qtbot.waitExposed(win)
    yield win
    for worker in (win.load_worker, win.analysis_worker):
        if worker is not None and worker.isRunning():
            worker.cancel()
            worker.wait(10000)


def open_and_wait(qtbot, win, path) -> None:
    win.open_path(str(path))
    qtbot.waitUntil(lambda: win.series is not None and not win.is_busy(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not win.view_area._update_pending, timeout=WAIT_MS)


def settle(qtbot, win) -> None:
    qtbot.waitUntil(lambda: not win.view_area._update_pending, timeout=WAIT_MS)
    win.view_area.update_now()


def colour_mask(rgb: np.ndarray, colour: tuple[int, int, int], tol: int = 40) -> np.ndarray:
    return (np.abs(rgb.astype(int) - np.array(colour)) <= tol).all(axis=-1)
