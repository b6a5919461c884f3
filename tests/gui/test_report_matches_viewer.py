"""One renderer: a report key image and the viewer's screenshot of the same slice and layers have
the same colours where the overlay is (a CT label map with a named and an unnamed label, a
radiograph heatmap). The screenshot is read back from VTK; each key-image pixel is looked up on
screen through the view's camera (plane millimetres -> display pixel)."""

from __future__ import annotations

import numpy as np
import pytest

from app.findings.types import (
    AnalysisResult,
    Finding,
    HeatmapOverlay,
    LabelMapOverlay,
    Provenance,
)
from app.report.key_images import standard_key_images
from app.study.dicom_writer import write_radiograph
from app.ui.capture import save_png
from app.viewstate.picture import render_overlays
from tests.gui.conftest import open_and_wait, settle
from tests.gui.test_viewer_two_inputs import SHOTS

pytestmark = pytest.mark.gui
TOLERANCE = 3  # grey levels: VTK shows the composed pixels unfiltered


def _result(overlay, finding: Finding) -> AnalysisResult:
    prov = Provenance("test", "test model", "0", {}, "none", "nothing")
    return AnalysisResult("test", [finding], [overlay], prov)


def _screen_colours(view, plane_shown, picture, points: np.ndarray) -> np.ndarray:
    """The viewer's colours at the picture pixels ``points`` ((n, 2) row-from-top, column)."""
    # the crosshair and the colour bar are drawn over the image: compare the image itself
    view.cross_actor.VisibilityOff()
    view.scalar_bar.VisibilityOff()
    shot = view.capture()
    h = shot.shape[0]
    out = []
    ren = view.renderer
    for row_top, col in points:
        world = picture.plane.world(picture.plane.shape[0] - 1 - row_top, col, picture.depth)
        r, c, _ = plane_shown.to_plane(world)
        ren.SetWorldPoint(c * plane_shown.spacing[1], r * plane_shown.spacing[0], 0.0, 1.0)
        ren.WorldToDisplay()
        dx, dy, _ = ren.GetDisplayPoint()
        out.append(shot[int(round(h - 1 - dy)), int(round(dx))])
    return np.array(out), shot


def _compare(window, name: str, series, overlay, picture, key_rgb) -> int:
    """Colours of the key image and the screen where the overlay changed the picture."""
    va = window.view_area
    plain = render_overlays(series, [], picture.plane.orientation, picture.plane.world(0, 0,
                            picture.depth), (va.window.center, va.window.width))  # fmt: skip
    changed = np.any(plain.rgb != picture.rgb, axis=-1)
    rows, cols = np.nonzero(changed)
    points = np.stack([rows, cols], axis=1)
    screen, shot = _screen_colours(va.views[name], va.cross.planes[name], picture, points)
    SHOTS.mkdir(exist_ok=True)
    save_png(shot, str(SHOTS / f"viewer_{overlay.name}.png"))
    save_png(np.ascontiguousarray(key_rgb), str(SHOTS / f"report_{overlay.name}.png"))
    expected = picture.rgb[rows, cols]
    diff = np.abs(screen.astype(int) - expected.astype(int)).max(axis=-1)
    print(f"{overlay.name}: report vs viewer at {len(points)} overlay pixels, largest "
          f"difference {int(diff.max())} grey levels")  # fmt: skip
    assert diff.max() <= TOLERANCE, f"{overlay.name}: {int((diff > TOLERANCE).sum())} pixels differ"
    return len(points)


def test_label_map_in_the_report_is_the_viewers(qtbot, window, ct_dir):
    open_and_wait(qtbot, window, ct_dir)
    series = window.series
    labels = np.zeros(series.shape, np.uint8)
    labels[15:25, 34:46, 26:38] = 1  # around the bony column
    labels[18:22, 14:20, 44:52] = 5  # a value the table does not name: palette colour
    overlay = LabelMapOverlay("Vertebra", image=series.image.with_array(labels),
                              labels={1: ("V1", (0, 255, 0))}, opacity=0.5)  # fmt: skip
    result = _result(overlay, Finding("V1", 0.9, 0.5, region_id="V1"))
    va = window.view_area
    cw = (va.window.center, va.window.width)
    key = standard_key_images(result, series, window=cw)[0]
    assert key.caption.endswith("axial through V1")
    layer = window.layers.add_overlay(overlay, "test", series.image, series.series_uid)
    centroid = layer.centroids()[1]
    picture = render_overlays(series, [overlay], "axial", centroid, cw, 768)
    np.testing.assert_array_equal(key.rgb, picture.rgb)  # the key image is this picture
    window.on_finding_clicked(result.findings[0])  # the viewer centres on V1
    settle(qtbot, window)
    assert np.allclose(va.cross.point, centroid)
    compared = _compare(window, "axial", series, overlay, picture, key.rgb)
    assert compared > 100
    # both labels are in the compared region, the unnamed one in the viewer's palette colour
    from app.findings.colormaps import label_colour

    assert (np.all(picture.rgb == label_colour(5), axis=-1)).sum() > 5
    assert (np.all(picture.rgb == (0, 255, 0), axis=-1)).sum() > 20


def test_heatmap_in_the_report_is_the_viewers(qtbot, window, tmp_path):
    rng = np.random.default_rng(1)
    pixels = (1500 + 200 * rng.standard_normal((90, 120))).clip(0, 4000).astype(np.uint16)
    path = write_radiograph(pixels, tmp_path / "xr" / "image.dcm", series_description="hip")
    open_and_wait(qtbot, window, path)
    series = window.series
    jj, ii = np.mgrid[0:90, 0:120].astype(np.float32)
    heat = np.exp(-((ii - 70) ** 2 + (jj - 40) ** 2) / (2 * 25.0**2))[None]
    overlay = HeatmapOverlay("CAM A", image=series.image.with_array(heat), label="A",
                             colormap="jet", opacity=0.6)  # fmt: skip
    result = _result(overlay, Finding("A", 0.8))
    va = window.view_area
    cw = (va.window.center, va.window.width)
    key = standard_key_images(result, series, window=cw)[1]
    assert key.caption.startswith("CAM A explains A: present (p=0.80")
    window.layers.add_overlay(overlay, "test", series.image, series.series_uid)
    settle(qtbot, window)
    origin = series.image.index_to_world(np.zeros(3))
    picture = render_overlays(series, [overlay], "native", origin, cw, 768)
    np.testing.assert_array_equal(key.rgb[:, : picture.rgb.shape[1]], picture.rgb)
    # the map changes the pixels where it is above the layer's threshold, and only those
    from app.viewstate.layers import HEATMAP_THRESHOLD

    compared = _compare(window, "native", series, overlay, picture, key.rgb)
    assert (
        (heat > HEATMAP_THRESHOLD + 0.01).sum()
        <= compared
        <= (heat > HEATMAP_THRESHOLD - 0.01).sum()
    )
