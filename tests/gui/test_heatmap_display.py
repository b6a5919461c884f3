"""A heatmap on screen (issue 14 item 1), asserted on the pixels VTK draws: below the layer's
threshold the radiograph is left exactly as it is, the opacity and threshold sliders of the layer
list change the pixels, and no text drawn in the view is large (the colour bar's numbers have a
fixed pixel size; the map's label is in the layer list, not over the anatomy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from app.findings.types import HeatmapOverlay
from app.study.dicom_writer import write_radiograph
from app.viewstate.layers import HEATMAP_THRESHOLD
from tests.gui.conftest import open_and_wait, settle

pytestmark = pytest.mark.gui
ROWS, COLS = 1400, 1200  # a big film: text that scaled with the image would show


@pytest.fixture()
def film(tmp_path):
    """A textured grey film (at most grey 205 through its window: no white), a DX radiograph."""
    jj, ii = np.mgrid[0:ROWS, 0:COLS]
    pixels = 800 + 600 * np.sin(ii / 37.0) * np.cos(jj / 53.0) + jj * 0.5
    return write_radiograph(pixels.astype(np.uint16), tmp_path / "xr" / "film.dcm",
                            series_description="film", window=(1200, 3000))  # fmt: skip


def _heat() -> np.ndarray:
    """0.2 (below the threshold) on the image's left half, rising 0.5 -> 1 on its right half."""
    heat = np.full((1, ROWS, COLS), 0.2, np.float32)
    heat[0, :, COLS // 2 :] = np.linspace(0.5, 1.0, COLS - COLS // 2, dtype=np.float32)
    return heat


def _shot(view) -> np.ndarray:
    view.cross_actor.VisibilityOff()
    view.set_corner_visible(False)
    return view.capture().astype(int)


def _image_box(view, plane) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) display rows/columns of the image, from the camera."""
    ren = view.renderer
    h = view.capture().shape[0]
    corners = []
    for x, y in ((0.0, 0.0), plane.extent_mm):
        ren.SetWorldPoint(x, y, 0.0, 1.0)
        ren.WorldToDisplay()
        dx, dy, _ = ren.GetDisplayPoint()
        corners.append((int(round(h - 1 - dy)), int(round(dx))))
    (b, left), (t, right) = corners
    return t, b, left, right


def test_map_below_threshold_leaves_the_image_and_sliders_change_it(qtbot, window, film):
    open_and_wait(qtbot, window, film)
    va = window.view_area
    view, plane = va.views["native"], va.cross.planes["native"]
    before = _shot(view)
    series = window.series
    overlay = HeatmapOverlay("CAM B", image=series.image.with_array(_heat()), label="B",
                             colormap="jet", opacity=0.6)  # fmt: skip
    layer = window.layers.add_overlay(overlay, "test", series.image, series.series_uid)
    qtbot.waitUntil(lambda: layer.id in window.layer_panel.rows, timeout=10000)
    settle(qtbot, window)
    shown = _shot(view)
    t, b, left, right = _image_box(view, plane)
    mid = (left + right) // 2
    inner = slice(t + 5, b - 5)
    # left half: value 0.2 < threshold: the radiograph's own pixels, exactly
    assert layer.threshold == HEATMAP_THRESHOLD > 0.2
    left_half = np.abs(shown[inner, left + 5 : mid - 5] - before[inner, left + 5 : mid - 5])
    assert left_half.max() == 0
    right_half = slice(mid + 5, right - 5)
    diff = np.abs(shown[inner, right_half] - before[inner, right_half]).sum(-1)
    assert (diff > 20).mean() > 0.9  # the map is drawn where it is above the threshold
    # stronger towards its peak (alpha rises with the value)
    cols = diff.mean(axis=0)
    assert cols[-20:].mean() > 1.5 * cols[:20].mean()

    # the opacity slider of the layer list: lower opacity, smaller change
    row = window.layer_panel.rows[layer.id]
    assert row.threshold is not None and row.heatmap_row is not None
    row.opacity.setValue(20)
    settle(qtbot, window)
    assert layer.opacity == pytest.approx(0.2)
    faint = np.abs(_shot(view)[inner, right_half] - before[inner, right_half]).sum(-1)
    assert 0 < faint.mean() < 0.6 * diff.mean()

    # the threshold slider: at 90 % only the far right (values above 0.9) is drawn
    row.threshold.setValue(90)
    settle(qtbot, window)
    assert layer.threshold == pytest.approx(0.9)
    now = _shot(view)
    span = right - mid
    kept = slice(mid + 5, mid + int(0.7 * span))  # values 0.5 .. 0.85: below 0.9 now
    assert np.abs(now[inner, kept] - before[inner, kept]).max() == 0
    far = slice(right - int(0.1 * span), right - 3)
    assert np.abs(now[inner, far] - before[inner, far]).sum(-1).mean() > 0


def test_no_large_text_over_the_anatomy(qtbot, window, film):
    open_and_wait(qtbot, window, film)
    series = window.series
    overlay = HeatmapOverlay("CAM B", image=series.image.with_array(_heat()), label="B",
                             colormap="jet", opacity=0.6)  # fmt: skip
    window.layers.add_overlay(overlay, "test", series.image, series.series_uid)
    settle(qtbot, window)
    view = window.view_area.views["native"]
    assert view.scalar_bar.GetVisibility()
    shot = _shot(view)
    # text is drawn white (the colour bar's numbers) on a film with no white in it: every
    # connected white blob is a glyph, and none may be taller than a line of small text
    white = (shot >= 215).all(-1)
    labels, n = ndimage.label(white)
    assert n > 0, "the colour bar's numbers are not drawn"
    heights = [s[0].stop - s[0].start for s in ndimage.find_objects(labels)]
    assert max(heights) <= 20, f"text {max(heights)} px high drawn over the view"
    # the bar itself is small: at most 200 px high, in the view's lower right corner
    bar = view.scalar_bar
    assert bar.GetMaximumHeightInPixels() <= 200 and not bar.GetTitle()
    # the map's label is in the layer list instead
    row = window.layer_panel.rows[next(la.id for la in window.layers if la.name == "CAM B")]
    assert row.check.text() == "CAM B"
