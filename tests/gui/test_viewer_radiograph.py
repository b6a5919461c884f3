"""The viewer with a real radiograph: one 2-D view, window/level, invert, ruler in mm."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtCore import Qt

from app.findings.types import Box, BoxOverlay
from tests.gui.conftest import colour_mask, open_and_wait, settle
from tests.gui.test_viewer_volume import _send_drag

pytestmark = pytest.mark.gui


@pytest.fixture()
def hip(real_data):
    path = real_data / "xray_nema_wg04" / "RG2_UNC.dcm"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return path


def test_radiograph_view_invert_ruler_and_box(qtbot, window, hip):
    open_and_wait(qtbot, window, hip)
    va = window.view_area
    assert list(va.views) == ["native"]
    view = va.views["native"]
    assert not view.letters["left"].GetVisibility()  # no patient frame claimed for a projection
    view.set_corner_visible(False)  # corner text would widen the image's bounding box
    shot = view.capture()
    view.set_corner_visible(True)
    assert shot.std() > 20, "radiograph view is blank"
    # the image fills the view at the right aspect: 1760 wide x 2140 high (equal pixel spacing)
    grey = shot.astype(int).sum(axis=-1)
    cols = np.nonzero(grey.max(axis=0) > 30)[0]
    rows = np.nonzero(grey.max(axis=1) > 30)[0]
    aspect = (cols.max() - cols.min() + 1) / (rows.max() - rows.min() + 1)
    assert aspect == pytest.approx(1760 / 2140, rel=0.03)

    mean = shot.astype(float).mean()
    qtbot.keyClick(view, Qt.Key.Key_I)
    settle(qtbot, window)
    inv = view.capture()
    assert va.window.invert
    assert abs(inv.astype(float).mean() - mean) > 10

    # ruler: press r, drag; the length is in mm from the pixel spacing
    qtbot.keyClick(view, Qt.Key.Key_R)
    assert view.ruler_mode
    a = QtCore.QPointF(100, 100)
    _send_drag(view, Qt.MouseButton.LeftButton, (a.x(), a.y()), (150, 0))
    # expected from the camera alone: the view spans 2 * parallel scale mm vertically
    mm_per_px = 2 * view.renderer.GetActiveCamera().GetParallelScale() / view.height()
    assert view.ruler_length_mm() == pytest.approx(150 * mm_per_px, rel=0.02)
    spacing = va.series.image.spacing[2]
    image_px = view.ruler_length_mm() / spacing
    assert image_px == pytest.approx(150 * mm_per_px / spacing, rel=0.02)
    assert view.ruler_text.GetInput() == f"{view.ruler_length_mm():.1f} mm"

    # a box in image indices lands where those pixels are drawn
    box = BoxOverlay("Box", reference=va.series.image, boxes=[Box(100, 200, 700, 900, 0, "roi")],
                     color=(255, 0, 255))  # fmt: skip
    layer = window.layers.add_overlay(box, "user")
    settle(qtbot, window)
    magenta = colour_mask(view.capture(), (255, 0, 255), 30)
    assert magenta.sum() > 50
    rows, cols = np.nonzero(magenta)
    # box in the upper-left part of the image (small i, small j)
    assert cols.mean() < view.width() / 2 and rows.mean() < view.height() / 2
    window.layers.set_visible(layer.id, False)
    settle(qtbot, window)
    assert colour_mask(view.capture(), (255, 0, 255), 30).sum() == 0
