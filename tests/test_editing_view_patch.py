"""Redrawing only what a dab changed gives the same pixels as redrawing the whole view."""

from __future__ import annotations

import numpy as np
import pytest

from app.editing.editor import LabelEditor, empty_labels
from app.editing.view_patch import patch_view
from app.study.geometry import ImageVolume
from app.viewstate.compose import compose_view
from app.viewstate.layers import layer_from_overlay
from app.viewstate.planes import plane_for
from app.viewstate.windowing import WindowLevel


@pytest.mark.parametrize("orientation", ["axial", "coronal", "sagittal"])
def test_patch_equals_full_redraw(orientation):
    rng = np.random.default_rng(1)
    vol = ImageVolume(rng.normal(0, 300, (20, 60, 70)).astype(np.float32), (1.5, 0.8, 0.8),
                      np.array([5.0, -3.0, 40.0]))  # fmt: skip
    ov = empty_labels(vol)
    ov.image.array[8:12, 20:40, 20:50] = 2
    ed = LabelEditor(ov)
    layer = layer_from_overlay(ov)
    layer.opacity = 0.6
    plane = plane_for(vol, orientation)
    centre = vol.index_to_world(np.array([30.0, 30.0, 10.0]))
    depth = plane.snap_depth(plane.depth_of(centre))
    window = WindowLevel(0.0, 1200.0)
    rgb = compose_view(vol, window, plane, depth, [layer]).rgb
    boxes = []
    ed.subscribe(lambda _what, box: boxes.append(box))
    ed.set_radius(3.0)
    ed.begin_stroke(centre, plane.normal)
    ed.continue_stroke(vol.index_to_world(np.array([45.0, 36.0, 10.0])))
    ed.end_stroke()
    assert boxes
    for box in boxes:
        assert patch_view(rgb, vol, window, plane, depth, [layer], ov.image, box) is not None
    full = compose_view(vol, window, plane, depth, [layer]).rgb
    np.testing.assert_array_equal(rgb, full)
    assert (rgb != compose_view(vol, window, plane, depth, []).rgb).any()


def test_a_change_on_another_slice_is_skipped():
    vol = ImageVolume(np.zeros((10, 30, 30), np.float32))
    ov = empty_labels(vol)
    plane = plane_for(vol, "axial")
    layer = layer_from_overlay(ov)
    box = (slice(7, 8), slice(3, 9), slice(3, 9))
    rgb = np.zeros(plane.shape + (3,), np.uint8)
    depth = plane.depth_of(vol.index_to_world(np.array([0.0, 0.0, 2.0])))
    assert patch_view(rgb, vol, WindowLevel(0.0, 100.0), plane, depth, [layer], ov.image,
                      box) is None  # fmt: skip
