"""Layers, composition, window/level and the serialisable state, all without Qt."""

from __future__ import annotations

import numpy as np
import pytest

from app.findings.types import (
    Box,
    BoxOverlay,
    HeatmapOverlay,
    LabelMapOverlay,
    Landmark,
    LandmarkOverlay,
)
from app.study.geometry import ImageVolume
from app.study.model import CT_PRESETS, Series
from app.viewstate import CrosshairState, LayerList, ViewerState, WindowLevel, compose_view
from app.viewstate.layers import label_centroids
from app.viewstate.planes import plane_for
from app.viewstate.windowing import presets_for


@pytest.fixture()
def ct():
    arr = np.full((20, 32, 32), -1000, np.int16)
    arr[:, 8:24, 8:24] = 40
    return ImageVolume(arr, (2.0, 1.0, 1.0), np.array([-16.0, -16.0, 0.0]))


@pytest.fixture()
def labelmap(ct):
    lab = np.zeros(ct.shape, np.uint8)
    lab[5:10, 10:14, 20:26] = 2  # on the patient's left (large i -> +x)
    return LabelMapOverlay("Vertebrae", image=ct.with_array(lab), labels={2: ("C2", (0, 255, 0))})


def test_label_colour_where_the_label_is_and_nowhere_when_hidden(ct, labelmap):
    layers = LayerList()
    layer = layers.add_overlay(labelmap, "truth")
    window = WindowLevel(40, 400)
    for orientation in ("axial", "sagittal", "coronal"):
        plane = plane_for(ct, orientation)
        depth = plane.depth_of(ct.index_to_world(np.array([22.0, 12.0, 7.0])))
        rgb = compose_view(ct, window, plane, depth, list(layers)).rgb
        greenish = (rgb[..., 1].astype(int) - rgb[..., 0]) > 40
        assert greenish.sum() > 0, orientation
        rows, cols = np.nonzero(greenish)
        world = np.array([plane.world(r, c, depth) for r, c in zip(rows, cols, strict=True)])
        ijk = ct.world_to_index(world)
        assert (ijk[:, 0] >= 19.5).all() and (ijk[:, 0] <= 25.5).all(), orientation
        layers.set_visible(layer.id, False)
        hidden = compose_view(ct, window, plane, depth, list(layers)).rgb
        assert ((hidden[..., 1].astype(int) - hidden[..., 0]) > 40).sum() == 0
        assert (hidden[..., 0] == hidden[..., 1]).all()  # back to grey
        layers.set_visible(layer.id, True)


def test_opacity_changes_blend(ct, labelmap):
    layers = LayerList()
    layer = layers.add_overlay(labelmap)
    plane = plane_for(ct, "axial")
    depth = plane.depth_of(ct.index_to_world(np.array([22.0, 12.0, 7.0])))
    win = WindowLevel(40, 400)
    inside = ct.index_to_world(np.array([22.0, 12.0, 7.0]))  # not on the label's edge
    row, col = (int(round(v)) for v in plane.to_plane(inside)[:2])
    values, edge_counts = [], []
    for op in (0.2, 0.9):
        layers.set_opacity(layer.id, op)
        rgb = compose_view(ct, win, plane, depth, list(layers)).rgb
        values.append(int(rgb[row, col, 1]))
        edge_counts.append(int(np.all(rgb == (0, 255, 0), axis=-1).sum()))
    assert values[1] > values[0]
    # the region's outline is drawn in its full colour whatever the opacity
    assert edge_counts[0] == edge_counts[1] > 0


def test_layer_order_visibility_events_and_region_lookup(ct, labelmap):
    events = []
    layers = LayerList()
    layers.subscribe(lambda what, layer: events.append((what, layer.name if layer else None)))
    a = layers.add_overlay(labelmap, "task:x")
    b = layers.add_overlay(BoxOverlay("Boxes", reference=ct, boxes=[Box(1, 1, 5, 5, 3, "r")]))
    layers.move(b.id, 0)
    assert [la.name for la in layers] == ["Boxes", "Vertebrae"]
    layers.set_opacity(a.id, 3.0)
    assert a.opacity == 1.0
    assert ("moved", "Boxes") in events and ("changed", "Vertebrae") in events
    found = layers.find_region("C2")
    assert found is not None and found[0] is a and found[1] == 2
    assert layers.find_region("2")[1] == 2
    assert layers.find_region("C7") is None
    layers.clear("task:x")
    assert [la.name for la in layers] == ["Boxes"]


def test_centroids_in_world(ct, labelmap):
    cents = label_centroids(labelmap.image)
    expect = ct.index_to_world(np.array([22.5, 11.5, 7.0]))
    assert set(cents) == {2}
    assert np.allclose(cents[2], expect)


def test_heatmap_colours_and_colorbar(ct):
    heat = np.zeros(ct.shape, np.float32)
    heat[:, :, 16:] = 1.0
    ov = HeatmapOverlay("CAM", image=ct.with_array(heat), colormap="jet", label="A1")
    layers = LayerList()
    layers.add_overlay(ov)
    plane = plane_for(ct, "axial")
    out = compose_view(ct, WindowLevel(0, 1), plane, 10.0, list(layers))
    assert out.colorbar is not None and out.colorbar.title == "A1"
    right = out.rgb[:, 20:].reshape(-1, 3).mean(0)
    assert right[0] > right[2]  # hot end of jet: red
    # the cold end is below the layer's threshold: not drawn, the image as it is
    base = compose_view(ct, WindowLevel(0, 1), plane, 10.0, []).rgb
    assert np.array_equal(out.rgb[:, :12], base[:, :12])


def test_show_only_heatmap_for_class(ct):
    layers = LayerList()
    for label in ("A1", "B2"):
        layers.add_overlay(HeatmapOverlay(f"CAM {label}", image=ct, label=label), "task:f")
    chosen = layers.show_only_heatmap("B2")
    assert chosen.name == "CAM B2"
    assert [la.visible for la in layers] == [False, True]


def test_boxes_and_landmarks_become_primitives(ct):
    layers = LayerList()
    layers.add_overlay(BoxOverlay("Heads", reference=ct, boxes=[Box(2, 3, 10, 12, 4, "right")]))
    mark = ct.index_to_world(np.array([5.0, 6.0, 4.0]))
    layers.add_overlay(LandmarkOverlay("L", landmarks=[Landmark("L1", tuple(mark))]))
    plane = plane_for(ct, "axial")
    out = compose_view(ct, WindowLevel(0, 100), plane, plane.depth_of(mark), list(layers))
    assert [c.text for c in out.captions] == ["right", "L1"]
    box = out.lines[0].points
    assert box[:, 0].min() == pytest.approx(2.0) and box[:, 0].max() == pytest.approx(10.0)
    # other slice: nothing drawn
    out = compose_view(ct, WindowLevel(0, 100), plane, plane.depth_of(mark) + 10, list(layers))
    assert out.lines == [] and out.captions == []


def test_window_level_mapping_drag_invert():
    w = WindowLevel(40, 400)
    vals = np.array([-160.0, 40.0, 240.0, 1000.0])
    assert list(w.to_uint8(vals)) == [0, 127, 255, 255]
    w.invert = True
    assert list(w.to_uint8(vals)) == [255, 127, 0, 0]
    w.drag(10, 0, 4000)
    assert w.width == pytest.approx(480)
    w.drag(0, 5, 4000)
    assert w.center == pytest.approx(80)


def test_presets_ct_and_default(ct):
    series = Series("1.2", "CT", "test", ct, window=(50.0, 350.0))
    presets = presets_for(series)
    assert list(presets)[0] == "Default" and presets["Default"] == (50.0, 350.0)
    for name, value in CT_PRESETS.items():
        assert presets[name] == value
    mr = Series("1.3", "MR", "t", ct)
    assert "Bone" not in presets_for(mr)


def test_crosshair_scroll_clamps_and_round_trips(ct):
    cross = CrosshairState(ct)
    start = cross.slice_index("axial")
    assert cross.scroll("axial", 3)
    assert cross.slice_index("axial") == start + 3
    cross.go_to_end("axial", last=True)
    assert cross.slice_index("axial") == ct.shape[0] - 1
    assert not cross.scroll("axial", 1)  # clamped
    cross.set_point(np.array([1e6, 0, 0]))
    assert cross.slice_index("sagittal") == ct.shape[2] - 1

    state = ViewerState("/x", "1.2", WindowLevel(1, 2, True), list(cross.point), {"axial": 2.0})
    again = ViewerState.from_json(state.to_json())
    assert again.window == state.window
    assert np.allclose(again.crosshair_lps, cross.point, atol=1e-3)
    assert again.zoom == {"axial": 2.0}


def test_state_file_round_trip(tmp_path):
    layers = LayerList()
    ov = LabelMapOverlay("M", image=ImageVolume(np.zeros((2, 2, 2), np.uint8)))
    layer = layers.add_overlay(ov)
    layers.set_opacity(layer.id, 0.25)
    state = ViewerState("/s", layers=layers.to_json())
    path = state.save(tmp_path / "state.json")
    back = ViewerState.load(path)
    layers.set_opacity(layer.id, 0.9)
    layers.apply_json(back.layers)
    assert layer.opacity == 0.25


def test_state_keeps_the_layout_and_old_files_without_one_load(tmp_path):
    state = ViewerState("/s", "1.2", layout="2x2")
    back = ViewerState.load(state.save(tmp_path / "state.json"))
    assert back.layout == "2x2"
    old = state.to_json()
    del old["layout"]  # a file written before layouts were saved
    assert ViewerState.from_json(old).layout == ""
    assert ViewerState.from_json({**old, "layout": "3x3"}).layout == ""  # unknown: not forced
    assert ViewerState.from_json({**old, "layout": None}).layout == ""
