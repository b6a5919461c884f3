"""Report pictures (``app.viewstate.picture``, the viewer's composition drawn as an RGB picture):
slices in patient orientation, overlays on other grids land where they belong, and the same
pixels as the viewer's ``compose_view``."""

from __future__ import annotations

import numpy as np
import pytest

from app.analysis.runner import run_on_series
from app.findings.types import Box, BoxOverlay, HeatmapOverlay, LabelMapOverlay
from app.report.key_images import render_slice
from app.study.geometry import ImageVolume
from app.study.model import Series
from app.viewstate.picture import picture_plane, render_overlays
from tests.fake_tasks import FakeCTAdapter, ct_phantom

# k runs toward the feet, i toward patient left, j toward posterior (a common axial CT stack).
FEET_FIRST = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, -1.0]])


def _series(vol: ImageVolume, modality="CT") -> Series:
    return Series("1", modality, "test", vol, kind="volume", window=(500.0, 1000.0))


def _marker_volume() -> ImageVolume:
    """Bright voxels at patient left (+x), anterior (-y) and superior (+z) ends, 30 x 40 x 50."""
    arr = np.zeros((30, 40, 50), dtype=np.float32)
    arr[10:20, 15:25, 45:50] = 1000  # i high = left
    arr[10:20, 0:5, 20:30] = 1000  # j low = anterior
    arr[0:3, 15:25, 20:30] = 1000  # k low = superior (feet-first stack)
    return ImageVolume(arr, (2.0, 1.0, 1.0), np.array([-25.0, -20.0, 30.0]), FEET_FIRST)


def _bright(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.nonzero(rgb[..., 0] > 200)
    return rows, cols


def test_axial_is_radiological_left_on_screen_right_anterior_up():
    vol = _marker_volume()
    centre = vol.index_to_world(np.array([25.0, 20.0, 15.0]))
    rgb = render_slice(_series(vol), [], "axial", centre)
    h, w = rgb.shape[:2]
    assert (h, w) == (40, 50)
    rows, cols = _bright(rgb)
    left = cols > w * 0.8
    anterior = rows < h * 0.2
    assert left.any() and anterior.any()
    assert not (cols < w * 0.2).any() and not (rows > h * 0.8).any()


def test_sagittal_anterior_left_superior_up():
    vol = _marker_volume()
    centre = vol.index_to_world(np.array([25.0, 20.0, 15.0]))
    rgb = render_slice(_series(vol), [], "sagittal", centre)
    h, w = rgb.shape[:2]
    assert (h, w) == (59, 40)  # 30 slices 2 mm apart (58 mm) at 1 mm pixels; 40 rows of 1 mm
    rows, cols = _bright(rgb)
    assert (cols < w * 0.2).any() and (rows < h * 0.15).any()
    assert not (cols > w * 0.8).any() and not (rows > h * 0.85).any()


def _label_pixels(rgb: np.ndarray, colour) -> np.ndarray:
    return np.all(np.abs(rgb.astype(int) - np.array(colour)) < 90, axis=-1) & (
        rgb.max(axis=-1) > 60
    )


def test_labelmap_on_a_shifted_grid_lands_in_the_same_place():
    ct = ct_phantom(fracture_in=2)
    series = Series("1", "CT", "t", ct, kind="volume")
    result = run_on_series(FakeCTAdapter(), series)
    same = result.overlays[0]
    # The same labels on a grid padded by 7 voxels at the start of i: origin moves 7 mm to the right.
    padded = np.pad(same.image.array, ((0, 0), (0, 0), (7, 0)))
    origin = ct.index_to_world(np.array([-7.0, 0.0, 0.0]))
    shifted = LabelMapOverlay(
        name="shifted",
        image=ImageVolume(padded, ct.spacing, origin, ct.direction),
        labels=same.labels,
    )
    centre = ct.index_to_world(np.array([23.0, 24.0, 15.0]))
    for plane in ("axial", "sagittal", "coronal"):
        a = render_slice(series, [same], plane, centre)
        b = render_slice(series, [shifted], plane, centre)
        np.testing.assert_array_equal(a, b, err_msg=plane)
        assert _label_pixels(a, (0, 255, 0)).sum() > 20, plane


def test_labelmap_on_a_coarser_grid_overlaps_the_fine_one():
    ct = ct_phantom(fracture_in=2)
    series = Series("1", "CT", "t", ct, kind="volume")
    fine = run_on_series(FakeCTAdapter(), series).overlays[0]
    adapter = FakeCTAdapter()
    adapter.coarse_labelmap = True
    coarse = run_on_series(adapter, series).overlays[0]
    assert coarse.image.shape != fine.image.shape
    centre = ct.index_to_world(np.array([23.0, 24.0, 15.0]))
    a = _label_pixels(render_slice(series, [fine], "axial", centre), (0, 255, 0))
    b = _label_pixels(render_slice(series, [coarse], "axial", centre), (0, 255, 0))
    iou = (a & b).sum() / (a | b).sum()
    assert iou > 0.7, iou


def test_radiograph_boxes_and_heatmap_are_drawn_at_their_pixels():
    img = np.zeros((1, 100, 120), dtype=np.float32)
    vol = ImageVolume(img, (1.0, 0.3, 0.3), np.array([10.0, 20.0, 0.0]))
    series = Series("1", "DX", "t", vol, kind="projection", window=(0.5, 1.0))
    heat = np.zeros_like(img)
    heat[0, 40:60, 70:90] = 1.0
    overlays = [
        HeatmapOverlay(name="h", image=vol.with_array(heat), colormap="jet", opacity=1.0),
        BoxOverlay(name="b", reference=vol, boxes=[Box(10, 20, 30, 50)], color=(255, 255, 0)),
    ]
    picture = render_overlays(series, overlays, "native", vol.origin)
    rgb = picture.rgb
    assert rgb.shape == (100, 120, 3) and picture.plane.orientation == "native"
    assert tuple(rgb[50, 80]) == (128, 0, 0)  # jet at 1.0
    assert tuple(rgb[50, 20]) == (0, 0, 0)  # 0.0 is below the threshold: the image as it is
    yellow = np.all(rgb == (255, 255, 0), axis=-1)
    rows, cols = np.nonzero(yellow)
    # the outline runs through the centres of the box's first and last pixels, as on screen
    assert rows.min() == pytest.approx(20, abs=1) and rows.max() == pytest.approx(50, abs=1)
    assert cols.min() == pytest.approx(10, abs=1) and cols.max() == pytest.approx(30, abs=1)
    col, row = picture.pixel_of(vol.index_to_world(np.array([80.0, 50.0, 0.0])))
    assert (col, row) == (pytest.approx(80.0), pytest.approx(50.0))


def test_large_radiograph_is_reduced_to_max_size():
    vol = ImageVolume(np.zeros((1, 2000, 1500), dtype=np.float32), (1.0, 0.15, 0.15))
    rgb = render_slice(
        Series("1", "DX", "t", vol, kind="projection"), [], "native", vol.origin, max_size=500
    )
    assert max(rgb.shape[:2]) <= 500 and rgb.shape[0] > rgb.shape[1]


def test_real_gantry_tilted_ct_overlay_stays_on_the_bone(real_data):
    """A sheared (gantry-tilted) real CT: label-map pixels fall on bright bone in every plane."""
    from app.study import load

    series = load(real_data / "ct_head_gantry_tilt").all_series()[0]
    d = series.image.direction
    assert abs(d[:, 1] @ d[:, 2]) > 0.1  # the grid really is sheared (j and k not orthogonal)
    overlay = run_on_series(FakeCTAdapter(), series).overlays[0]  # labels = voxels above 300 HU
    centre = overlay.image.index_to_world(np.array([256.0, 256.0, series.shape[0] / 2]))
    for plane in ("axial", "sagittal", "coronal"):
        plain = render_slice(series, [], plane, centre, window=(400.0, 1800.0))
        drawn = render_slice(series, [overlay], plane, centre, window=(400.0, 1800.0))
        changed = np.any(plain != drawn, axis=-1)
        assert changed.sum() > 500, plane
        bone = plain[..., 0] >= 100  # 300 HU is grey 113 in this window; edges are interpolated
        assert (changed & bone).sum() / changed.sum() > 0.85, plane


def test_picture_pixels_are_the_viewers_composition():
    """One renderer: the picture is ``compose_view``'s RGB flipped to row 0 at the top, for a
    label map with an unnamed value and a heatmap (same colours, same alpha, same outlines)."""
    from app.viewstate import WindowLevel, compose_view
    from app.viewstate.layers import layer_from_overlay

    rng = np.random.default_rng(3)
    vol = ImageVolume(rng.uniform(0, 100, (1, 60, 80)).astype(np.float32), (1.0, 0.5, 0.5))
    series = Series("1", "DX", "t", vol, kind="projection", window=(50.0, 100.0))
    lab = np.zeros(vol.shape, np.uint8)
    lab[0, 10:30, 10:40] = 1
    lab[0, 35:50, 50:70] = 7  # not in the table: the palette colour the viewer uses
    heat = np.broadcast_to(np.linspace(0, 1, 80, dtype=np.float32), vol.shape).copy()
    overlays = [
        HeatmapOverlay("h", image=vol.with_array(heat), colormap="hot", opacity=0.4),
        LabelMapOverlay("l", image=vol.with_array(lab), labels={1: ("one", (0, 255, 0))}),
    ]
    picture = render_overlays(series, overlays, "native", vol.origin)
    layers = [layer_from_overlay(o, reference=vol) for o in overlays]
    plane = picture_plane(vol, "native")
    screen = compose_view(vol, WindowLevel(50.0, 100.0), plane, picture.depth, layers).rgb
    np.testing.assert_array_equal(picture.rgb, screen[::-1])
    from app.findings.colormaps import label_colour

    assert tuple(picture.rgb[35, 50]) == label_colour(7)  # the region's edge: full colour
    assert tuple(picture.rgb[20, 10]) == (0, 255, 0)


def test_captions_stay_inside_the_picture_and_off_each_other():
    """VTK may draw a caption past the image's edge; on paper it is moved inside, and two boxes
    captioned at the same corner get their captions one under the other."""
    vol = ImageVolume(np.zeros((1, 100, 120), np.float32), (1.0, 1.0, 1.0))
    series = Series("1", "DX", "t", vol, kind="projection", window=(0.5, 1.0))
    boxes = [
        BoxOverlay("a", reference=vol, boxes=[Box(5, 50, 60, 90, caption="left ROI")],
                   color=(255, 0, 0)),
        BoxOverlay("b", reference=vol, boxes=[Box(5, 50, 60, 90, caption="left CAM 0.54")],
                   color=(0, 0, 255)),
        BoxOverlay("c", reference=vol, boxes=[Box(110, 40, 119, 60, caption="edge box")],
                   color=(0, 255, 0)),
    ]  # fmt: skip
    rgb = render_overlays(series, boxes, "native", vol.origin).rgb

    def text_rows(colour):
        # pixels of that colour (captions sit above their box's top edge, row 50)
        m = np.all(np.abs(rgb.astype(int) - colour) < 80, axis=-1) & (rgb.max(axis=-1) > 100)
        return m

    red, blue = text_rows((255, 0, 0)), text_rows((0, 0, 255))
    red_rows = np.nonzero(red[:49].any(axis=1))[0]
    blue_rows = np.nonzero(blue[:49].any(axis=1))[0]
    assert red_rows.size and blue_rows.size
    assert red_rows.max() < blue_rows.min() or blue_rows.max() < red_rows.min()
    green = text_rows((0, 255, 0))
    # the edge box's caption was moved left so that it ends inside the picture
    assert green[:39, :108].sum() > 10
