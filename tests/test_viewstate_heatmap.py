"""Heatmaps drawn as clinical CAD draws them (issue 14 item 1), headless: transparent below the
layer's threshold (the image's own pixels, exactly), alpha rising with the value above it, the
opacity scaling it all, signed maps thresholded on |value|; threshold saved with the viewer
state; the colour bar carries the alpha it was drawn with."""

from __future__ import annotations

import numpy as np
import pytest

from app.findings.types import HeatmapOverlay
from app.study.geometry import ImageVolume
from app.viewstate.compose import compose_view, heatmap_alpha, scale_strip
from app.viewstate.layers import HEATMAP_THRESHOLD, LayerList
from app.viewstate.planes import native_plane
from app.viewstate.state import ViewerState
from app.viewstate.windowing import WindowLevel


@pytest.fixture()
def film() -> ImageVolume:
    """A radiograph-like ramp of grey (every column its own grey), 60 x 200 px."""
    grey = np.tile(np.linspace(100, 3000, 200, dtype=np.float32), (60, 1))[None]
    return ImageVolume(grey, (1.0, 0.5, 0.5), np.zeros(3))


def _compose(film: ImageVolume, heat: np.ndarray, **kw):
    layers = LayerList()
    layer = layers.add_overlay(
        HeatmapOverlay("CAM B", image=film.with_array(heat), label="B", **kw)
    )
    plane = native_plane(film)
    window = WindowLevel(1500, 3000)
    base = compose_view(film, window, plane, 0.0, []).rgb
    return layers, layer, lambda: compose_view(film, window, plane, 0.0, list(layers)), base


def test_below_threshold_the_image_is_untouched_and_alpha_rises_above(film):
    heat = np.tile(np.linspace(0, 1, 200, dtype=np.float32), (60, 1))[None]
    layers, layer, draw, base = _compose(film, heat, opacity=0.8)
    assert layer.threshold == HEATMAP_THRESHOLD
    rgb = draw().rgb
    cols = np.linspace(0, 1, 200)
    below = cols < HEATMAP_THRESHOLD - 0.01
    assert np.array_equal(rgb[:, below], base[:, below])
    change = np.abs(rgb.astype(int) - base.astype(int)).sum(-1).mean(0)
    above = np.flatnonzero(cols > HEATMAP_THRESHOLD + 0.02)
    assert change[above].min() > 0
    # the top of the map is drawn strongly, just above the threshold faintly
    assert change[above[-5:]].mean() > 4 * change[above[:5]].mean()

    layers.set_threshold(layer.id, 0.6)
    rgb = draw().rgb
    below = cols < 0.59
    assert np.array_equal(rgb[:, below], base[:, below])
    assert not np.array_equal(rgb[:, cols > 0.65], base[:, cols > 0.65])


def test_opacity_scales_the_map_and_zero_hides_it(film):
    heat = np.ones((1, 60, 200), np.float32)
    layers, layer, draw, base = _compose(film, heat, colormap="jet")
    layers.set_opacity(layer.id, 1.0)
    full = draw().rgb
    assert (full == (128, 0, 0)).all(-1).all()  # jet's top at full opacity, pure
    layers.set_opacity(layer.id, 0.3)
    faint = draw().rgb
    d_full = np.abs(full.astype(int) - base).mean()
    d_faint = np.abs(faint.astype(int) - base).mean()
    assert 0.2 * d_full < d_faint < 0.45 * d_full
    layers.set_opacity(layer.id, 0.0)
    assert np.array_equal(draw().rgb, base)


def test_signed_map_thresholds_on_magnitude_with_a_diverging_colormap(film):
    peak = 0.002
    heat = np.zeros((1, 60, 200), np.float32)
    heat[0, :, 20:40] = -peak  # strong evidence against: blue
    heat[0, :, 80:100] = 0.1 * peak  # weak: below the threshold on |value|
    heat[0, :, 150:170] = peak  # strong evidence for: red
    _, _, draw, base = _compose(film, heat, colormap="coolwarm", value_range=(-peak, peak),
                                opacity=1.0)  # fmt: skip
    view = draw()
    rgb = view.rgb
    assert np.array_equal(rgb[:, 80:100], base[:, 80:100])
    assert np.array_equal(rgb[:, 0:20], base[:, 0:20])  # zero: not drawn
    blue, red = rgb[:, 20:40].reshape(-1, 3).mean(0), rgb[:, 150:170].reshape(-1, 3).mean(0)
    assert blue[2] > blue[0] + 80 and red[0] > red[2] + 80
    bar = view.colorbar
    assert bar is not None and bar.alpha is not None and bar.title == "B"
    # the bar's alpha: 0 around zero, full at both ends
    assert bar.alpha[128] == 0 and bar.alpha[0] == pytest.approx(1) and bar.alpha[255] == 1


def test_alpha_table_and_scale_strip():
    a = heatmap_alpha((0.0, 1.0), 0.5, 0.6)
    assert (a[:127] == 0).all() and a[255] == pytest.approx(0.6) and np.all(np.diff(a) >= 0)
    strip = scale_strip((0.0, 1.0), "jet", 0.5, 100, 8)
    assert strip.shape == (100, 8, 3)
    low = strip[:40].reshape(-1, 3)
    assert set(map(int, np.unique(low))) <= {90, 150}  # checkerboard: transparent part
    assert tuple(strip[-1, 0]) == (128, 0, 0)


def test_threshold_is_saved_with_the_viewer_state(film, tmp_path):
    layers, layer, _, _ = _compose(film, np.ones((1, 60, 200), np.float32))
    layers.set_threshold(layer.id, 0.4)
    layers.set_opacity(layer.id, 0.7)
    path = ViewerState(layers=layers.to_json()).save(tmp_path / "state.json")
    again, layer2, _, _ = _compose(film, np.ones((1, 60, 200), np.float32))
    assert layer2.threshold == HEATMAP_THRESHOLD
    again.apply_json(ViewerState.load(path).layers)
    assert layer2.threshold == pytest.approx(0.4) and layer2.opacity == pytest.approx(0.7)


def test_caption_text_on_a_big_picture_stays_small():
    """A 2000 px film's picture at full size: its box caption's glyphs at most 20 px high (a
    font that scaled with the picture would be 44 px here)."""
    from scipy import ndimage

    from app.findings.types import Box, BoxOverlay
    from app.study.model import Series
    from app.viewstate.picture import render_overlays

    vol = ImageVolume(np.zeros((1, 2000, 2000), np.float32), (1.0, 0.2, 0.2), np.zeros(3))
    series = Series("1", "DX", "film", vol, kind="projection", window=(0.5, 1.0))
    box = BoxOverlay("b", reference=vol, color=(0, 255, 0),
                     boxes=[Box(400, 800, 1600, 1600, 0, "left B CAM region 0.70")])  # fmt: skip
    picture = render_overlays(series, [box], "native", vol.origin, max_size=2048)
    assert max(picture.rgb.shape[:2]) == 2000
    green = (picture.rgb[..., 1] > 100) & (picture.rgb[..., 0] < 100)
    labels, n = ndimage.label(green)
    parts = ndimage.find_objects(labels)
    heights = sorted(s[0].stop - s[0].start for s in parts)
    assert n > 5 and heights[-1] > 300  # the outline, and the caption's glyphs
    assert heights[-2] <= 20, heights[-5:]


def test_captions_sharing_a_corner_are_stacked():
    from app.viewstate.compose import Caption, caption_rows

    caps = [Caption(10.0, 50.0, "right STN region of interest", (0, 200, 255)),
            Caption(10.2, 49.9, "right B CAM region 0.45", (255, 64, 64)),
            Caption(80.0, 50.0, "left STN region of interest", (0, 200, 255)),
            Caption(10.1, 50.1, "third", (255, 255, 0))]  # fmt: skip
    assert caption_rows(caps, near_mm=1.0) == [0, 1, 0, 2]
