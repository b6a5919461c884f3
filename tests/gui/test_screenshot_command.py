"""``osteoview screenshot``: the viewer rendered to a PNG, with ground truth or a task's result."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PySide6 import QtGui

from app.cli import main
from app.findings.truth import write_truth
from app.study.dicom_writer import write_series
from app.ui.capture import qimage_to_array
from tests.gui.conftest import colour_mask, phantom_ct

pytestmark = pytest.mark.gui


def _png(path) -> np.ndarray:
    img = QtGui.QImage(str(path))
    assert not img.isNull(), f"{path} is not a PNG"
    return qimage_to_array(img)


@pytest.fixture()
def ct_with_truth(tmp_path):
    """A CT study folder with truth.json: a label map (on a coarser grid of its own)."""
    ct = phantom_ct()
    study = tmp_path / "study"
    write_series(ct, study, "CT", series_description="truth phantom")
    # a label map on its own 2x coarser grid around the dense marker
    lab = np.zeros((20, 32, 32), np.uint8)
    lab[13:18, 6:11, 22:27] = 1
    coarse = type(ct)(lab, (5.0, 1.6, 1.6), ct.origin.copy(), ct.direction.copy())
    write_truth(study, "test", {"x": 1}, "test", labelmaps=[("Blob (truth)", coarse,
                                                              {1: ("blob", (255, 0, 255))})])  # fmt: skip
    return study


def test_screenshot_with_truth_overlay(qapp, ct_with_truth, tmp_path, capsys):
    out = tmp_path / "shot.png"
    assert main(["screenshot", str(ct_with_truth), "--out", str(out), "--overlay-truth"]) == 0
    assert "Blob (truth)" in capsys.readouterr().out
    rgb = _png(out)
    assert rgb.shape[:2] == (900, 1500)
    assert rgb.std() > 20
    # opacity 0.5 over grey: magenta-ish (red and blue above green)
    tint = (rgb[..., 0].astype(int) - rgb[..., 1] > 40) & (
        rgb[..., 2].astype(int) - rgb[..., 1] > 40
    )
    assert tint.sum() > 30, "truth label map not drawn"
    out2 = tmp_path / "plain.png"
    assert main(["screenshot", str(ct_with_truth), "--out", str(out2)]) == 0
    rgb2 = _png(out2)
    tint2 = (rgb2[..., 0].astype(int) - rgb2[..., 1] > 40) & (
        rgb2[..., 2].astype(int) - rgb2[..., 1] > 40
    )
    assert tint2.sum() == 0, "truth drawn without --overlay-truth"


def test_screenshot_with_task_result(qapp, ct_dir, tmp_path, monkeypatch, capsys):
    from app.analysis import tasks
    from tests.gui.viewer_fakes import FakeVolumeAdapter

    monkeypatch.setitem(tasks._REGISTERED, "fake-volume", FakeVolumeAdapter.spec)
    out = tmp_path / "task.png"
    assert main(["screenshot", str(ct_dir), "--out", str(out), "--task", "fake-volume"]) == 0
    assert "p=0.80" in capsys.readouterr().out
    rgb = _png(out)
    # label colours of the fake result (opacity 1) are on screen: V1 red, V2 green, V3 blue
    seen = [colour_mask(rgb, c, 10).sum() for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    assert sum(s > 20 for s in seen) >= 2, seen


def test_screenshot_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "nothing.dcm"
    bad.write_bytes(b"garbage")
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "screenshot", str(bad), "--out", str(tmp_path / "a.png")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "nothing.dcm" in lines[0], proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "screenshot", str(tmp_path / "missing"), "--out",
         str(tmp_path / "a.png")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2 and "missing" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_screenshot_of_a_two_input_task_shows_both_inputs(qapp, tmp_path, monkeypatch, capsys):
    """``osteoview screenshot --task`` with a two-input task: the AP and the lateral side by
    side, the lateral's red mask only in the right half, the AP's heatmap only in the left."""
    from tests import fake_pair_task
    from tests.test_analysis_contract import _pair_study

    fake_pair_task.register(monkeypatch)
    study = _pair_study(tmp_path / "pair")
    out = tmp_path / "pair.png"
    assert main(["screenshot", str(study), "--out", str(out), "--task", "fake-pair"]) == 0
    assert "p(damaged)=" in capsys.readouterr().out
    rgb = _png(out)
    r, g, b = (rgb[..., c].astype(int) for c in range(3))
    red = (r > 150) & (g < 90) & (b < 90)  # the lateral mask (jet's dark red stays below)
    # the AP heatmap's hot end over the AP's bright square: pink, less red than the lateral
    # mask's full red (its cold end, below the layer's threshold, is not drawn at all)
    from scipy import ndimage

    hot = (r - g > 40) & (r - b > 40) & (g >= 90) & (r < 235)
    hot = ndimage.binary_opening(hot, iterations=2)  # areas, not the edges of red strokes
    # 1500 pixels wide: series dock, AP view (to ~640, its colour bar at ~600), lateral view (to
    # ~1130), findings dock; columns well inside each view
    w = rgb.shape[1]
    ap_half, lat_half = slice(int(0.14 * w), int(0.37 * w)), slice(int(0.47 * w), int(0.72 * w))
    assert red[:, lat_half].sum() > 500 and red[:, ap_half].sum() == 0
    assert hot[:, ap_half].sum() > 2000 and hot[:, lat_half].sum() == 0
