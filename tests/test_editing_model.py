"""The editing model headless (napari's painting tests): build a layer on an array, paint
through world coordinates, assert on the array and on undo."""

from __future__ import annotations

import numpy as np
import pytest

from app.editing.editor import LabelEditor, Tool, empty_labels
from app.editing.history import Diff
from app.editing.keys import KeyMap, dispatch
from app.findings.types import LabelMapOverlay
from app.study.geometry import ImageVolume

AXIAL_N = np.array([0.0, 0.0, 1.0])


def ct(shape=(5, 40, 50), spacing=(2.0, 0.5, 0.5), origin=(10.0, -20.0, 30.0)) -> ImageVolume:
    rng = np.random.default_rng(0)
    return ImageVolume(rng.normal(0, 10, shape).astype(np.float32), spacing, np.array(origin))


def world(vol: ImageVolume, k, j, i) -> np.ndarray:
    return vol.index_to_world(np.array([i, j, k], dtype=float))


def test_dab_is_a_circle_on_the_view_slice_only():
    vol = ct()
    ed = LabelEditor(empty_labels(vol))
    ed.set_radius(2.0)  # 4 voxels at 0.5 mm
    ed.begin_stroke(world(vol, 2, 20, 25), AXIAL_N)
    diff = ed.end_stroke()
    data = ed.data
    assert data[[0, 1, 3, 4]].sum() == 0
    jj, ii = np.nonzero(data[2])
    assert ((jj - 20) ** 2 + (ii - 25) ** 2).max() <= 16
    assert (
        len(jj)
        == diff.size
        == np.count_nonzero(
            (np.arange(40)[:, None] - 20) ** 2 + (np.arange(50)[None] - 25) ** 2 <= 16
        )
    )


def test_fast_stroke_leaves_no_gap_and_undo_restores_exactly():
    vol = ct()
    base = empty_labels(vol)
    base.image.array[2, 5:8, 5:8] = 3  # something the user had before
    before = base.image.array.copy()
    ed = LabelEditor(base)
    ed.set_radius(1.0)
    ed.begin_stroke(world(vol, 2, 20, 2), AXIAL_N)
    ed.continue_stroke(world(vol, 2, 20, 47))  # 45 voxels in one mouse move
    ed.end_stroke()
    assert ed.data[2, 20, 2:48].all()  # unbroken line
    ed.undo()
    np.testing.assert_array_equal(ed.data, before)
    ed.redo()
    assert ed.data[2, 20, 2:48].all()


def test_eraser_ctrl_and_sphere():
    vol = ct()
    ed = LabelEditor(empty_labels(vol))
    ed.sphere = True
    ed.set_radius(2.5)
    ed.begin_stroke(world(vol, 2, 20, 25))
    ed.end_stroke()
    assert ed.data[1, 20, 25] == ed.data[3, 20, 25] == 1  # 2 mm slices: a 2.5 mm sphere spans 3
    assert ed.data[0].sum() == 0
    ed.sphere = False
    ed.begin_stroke(world(vol, 2, 20, 25), AXIAL_N, erase=True)  # Ctrl held
    ed.end_stroke()
    assert ed.data[2, 20, 25] == 0 and ed.data[1, 20, 25] == 1
    ed.tool = Tool.ERASER
    ed.begin_stroke(world(vol, 1, 20, 25), AXIAL_N)
    ed.end_stroke()
    assert ed.data[1, 20, 25] == 0


def test_oblique_grid_brush_lands_at_the_world_point():
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # rows along +x
    vol = ImageVolume(np.zeros((3, 30, 30), np.float32), (1.0, 1.0, 1.0), np.zeros(3), rot)
    ed = LabelEditor(empty_labels(vol))
    ed.set_radius(1.0)
    point = world(vol, 1, 12, 7)
    ed.begin_stroke(point, AXIAL_N)
    ed.end_stroke()
    assert ed.data[1, 12, 7] == 1 and ed.data.sum() == 5  # centre and its 4 neighbours


def test_radiograph_brush():
    xray = ImageVolume(np.zeros((1, 60, 80), np.uint16), (1.0, 0.2, 0.2))
    ed = LabelEditor(empty_labels(xray))
    ed.begin_stroke(world(xray, 0, 30, 40), AXIAL_N)
    ed.continue_stroke(world(xray, 0, 30, 60))
    ed.end_stroke()
    assert ed.data[0, 30, 40:61].all()


def test_threshold_paint_and_fill_in_range():
    vol = ct()
    vol.array[2, 10:30, 10:20] = 300.0  # a bright block
    vol.array[2, 10:30, 30:40] = 300.0  # another, not connected
    ed = LabelEditor(empty_labels(vol), intensity=vol)
    ed.intensity_range = (200.0, 400.0)
    ed.fill(world(vol, 2, 15, 15), AXIAL_N)
    assert ed.data[2, 10:30, 10:20].all() and ed.data[2].sum() == 200
    ed.undo()
    ed.threshold_paint = True
    ed.set_radius(20.0)
    ed.begin_stroke(world(vol, 2, 20, 25), AXIAL_N)
    ed.end_stroke()
    assert ed.data[2].sum() == 400 and ed.data[2, 10:30, 30:40].all()


def test_fill_without_range_fills_the_seeds_label_region():
    vol = ct()
    ov = empty_labels(vol)
    ov.image.array[2, 5:15, 5:15] = 1
    ov.image.array[2, 8:12, 8:12] = 0  # a hole
    ed = LabelEditor(ov)
    ed.set_label(2)
    ed.fill(world(vol, 2, 10, 10), AXIAL_N)
    assert (ed.data[2, 8:12, 8:12] == 2).all() and (ed.data == 2).sum() == 16
    assert ov.labels[2][0] == "label 2"


def test_islands_largest_and_interpolation():
    vol = ct(shape=(9, 30, 30), spacing=(1.0, 1.0, 1.0))
    ov = empty_labels(vol)
    a = ov.image.array
    a[4, 5:15, 5:15] = 1
    a[4, 20, 20] = 1
    a[4, 25:28, 25:28] = 1
    ed = LabelEditor(ov)
    ed.remove_islands(5)
    assert a[4, 20, 20] == 0 and a[4, 25:28, 25:28].all()
    ed.keep_largest()
    assert a.sum() == 100
    ed.undo()
    ed.undo()
    assert a[4, 20, 20] == 1
    b = np.zeros_like(a)
    b[0, 10:20, 10:20] = 1
    b[8, 10:20, 10:20] = 1
    a[...] = b
    ed.interpolate(axis=0)
    for z in range(1, 8):
        assert a[z, 10:20, 10:20].all() and a[z].sum() == 100, z


def test_history_stores_runs_not_copies():
    vol = ImageVolume(np.zeros((20, 256, 256), np.float32))
    ed = LabelEditor(empty_labels(vol))
    ed.set_radius(5.0)
    for n in range(50):
        ed.begin_stroke(world(vol, n % 20, 40, 20), AXIAL_N)
        for x in range(20, 220, 10):
            ed.continue_stroke(world(vol, n % 20, 40 + (n % 7), x))
        ed.end_stroke()
    assert ed.history.steps == 50
    assert ed.history.nbytes < 0.05 * ed.data.nbytes


def test_diff_round_trip_repeats_and_no_ops():
    data = np.zeros(100, np.int16)
    d = Diff.from_changes(np.array([5, 6, 7, 5, 50]), np.array([0, 0, 0, 1, 0]),
                          np.array([1, 1, 1, 2, 0]))  # fmt: skip
    assert d.indices().tolist() == [5, 6, 7]  # index 50 unchanged, 5 keeps its first old value
    d.apply(data)
    assert data[5] == 2 and data[6] == 1
    d.apply(data, forward=False)
    assert not data.any()
    assert Diff.from_arrays(d.arrays()).indices().tolist() == [5, 6, 7]


def test_saving_keeps_undo_and_dirty_flag():
    vol = ct()
    ed = LabelEditor(empty_labels(vol))
    ed.begin_stroke(world(vol, 2, 20, 25), AXIAL_N)
    ed.end_stroke()
    assert ed.history.dirty
    ed.history.mark_saved()
    assert not ed.history.dirty and ed.history.can_undo
    ed.undo()
    assert ed.history.dirty and ed.data.sum() == 0


def test_model_output_read_only_or_float_is_edited_on_a_copy():
    arr = np.ones((1, 10, 10), np.float64)
    arr.flags.writeable = False
    ov = LabelMapOverlay("model", image=ImageVolume(arr))
    ed = LabelEditor(ov)
    assert ed.data.dtype == np.int32 and ed.data.flags.writeable
    ed.set_label(70000)
    ed.begin_stroke(world(ov.image, 0, 5, 5), AXIAL_N)
    ed.end_stroke()
    assert ed.data[0, 5, 5] == 70000


def test_key_table_rebindable_and_dispatch():
    vol = ct()
    ed = LabelEditor(empty_labels(vol))
    keys = KeyMap()
    r = ed.radius_mm
    dispatch(ed, keys.action_for("]"))
    assert ed.radius_mm == pytest.approx(r + 0.5)
    dispatch(ed, keys.action_for("Shift+Wheel"), -2)
    assert ed.radius_mm == pytest.approx(r - 0.5)
    assert keys.action_for("ctrl+z") == "undo" and keys.action_for("Ctrl+Y") == "redo"
    for key, tool in (("e", Tool.ERASER), ("f", Tool.FILL), ("b", Tool.BRUSH)):
        dispatch(ed, keys.action_for(key))
        assert ed.tool == tool
    keys.rebind("undo", ["U"])
    again = KeyMap.from_json(keys.to_json())
    assert again.action_for("U") == "undo" and again.action_for("Ctrl+Z") is None
    keys.rebind("tool_fill", "B")  # taken from the brush
    assert keys.action_for("B") == "tool_fill" and keys.keys_for("tool_brush") == ()
    with pytest.raises(KeyError):
        keys.rebind("fly", "X")
