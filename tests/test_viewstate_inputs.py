"""Several inputs side by side, each view with only its own layers, and where a finding points
(label value, landmark, box), all without Qt; the two-input fake task's real result is used."""

from __future__ import annotations

import numpy as np
import pytest

from app.analysis.request import resolve_inputs
from app.analysis.runner import run_analysis
from app.findings.types import LabelMapOverlay, Landmark, LandmarkOverlay
from app.study import load
from app.study.geometry import ImageVolume
from app.viewstate.compose import compose_view
from app.viewstate.inputs import belongs_to, input_panes, layers_for, needs_side_by_side, pane_of
from app.viewstate.layers import LayerList
from app.viewstate.planes import native_plane
from app.viewstate.regions import find_target
from app.viewstate.windowing import initial_window
from tests import fake_pair_task
from tests.fake_pair_task import FakePairAdapter
from tests.test_analysis_contract import _pair_study


@pytest.fixture()
def pair_run(monkeypatch, tmp_path):
    fake_pair_task.register(monkeypatch)
    adapter = FakePairAdapter()
    study = _pair_study(tmp_path / "s")
    request = resolve_inputs(adapter.spec, load(study), study, adapter=adapter)
    result = run_analysis(adapter, request)
    layers = LayerList()
    for ov in result.overlays:
        series = request.inputs[ov.slot]
        layers.add_overlay(ov, "task:fake-pair", series.image, series.series_uid)
    return request, result, layers


def test_each_input_gets_a_pane_and_only_its_own_layers(pair_run):
    request, _, layers = pair_run
    panes = input_panes(request.inputs)
    assert [p.slot for p in panes] == ["ap", "lateral"] and needs_side_by_side(panes)
    ap = request.inputs["ap"]
    assert panes[0].title == f"ap: {ap.modality} {ap.description}" and "AP" in ap.description
    by_pane = {p.slot: [la.name for la in layers_for(layers, p)] for p in panes}
    assert by_pane == {
        "ap": ["AP brightness", "AP peak"],
        "lateral": ["Lateral mask", "Lateral box"],
    }
    # composed: the lateral's red mask only on the lateral view
    for pane in panes:
        image = pane.series.image
        plane = native_plane(image)
        rgb = compose_view(image, initial_window(pane.series), plane, 0.0,
                           layers_for(layers, pane)).rgb  # fmt: skip
        red = (rgb[..., 0].astype(int) - rgb[..., 1] > 100) & (rgb[..., 2] < 90)
        plain = compose_view(image, initial_window(pane.series), plane, 0.0, []).rgb
        # the AP map is drawn where it is above its layer's threshold (the bright square), jet's
        # hot end over it; below the threshold the radiograph's pixels are left as they are
        heat = np.any(rgb != plain, axis=-1) & (rgb[..., 0].astype(int) > rgb[..., 2] + 40)
        if pane.slot == "ap":
            assert heat.sum() > 50 and red.sum() == 0
        else:  # no heatmap drawn on the lateral: the same pixels without any heatmap layer
            no_maps = [la for la in layers_for(layers, pane) if la.kind != "heatmap"]
            bare = compose_view(image, initial_window(pane.series), plane, 0.0, no_maps).rgb
            assert red.sum() > 100 and np.array_equal(rgb, bare)


def test_a_mask_slot_is_drawn_on_its_image_not_given_a_view(pair_run):
    request, _, _ = pair_run
    inputs = dict(request.inputs)
    inputs["mask"] = request.inputs["lateral"]
    assert [p.slot for p in input_panes(inputs, mask_slots={"mask"})] == ["ap", "lateral"]
    one = input_panes({"ct": request.inputs["ap"]})
    assert not needs_side_by_side(one)


def test_truth_and_untied_layers_go_to_their_series_or_the_first_pane(pair_run):
    request, _, layers = pair_run
    panes = input_panes(request.inputs)
    lat = request.inputs["lateral"]
    truth = layers.add_overlay(
        LandmarkOverlay("truth", landmarks=[Landmark("t", (1.0, 1.0, 0.0))]),
        "truth", lat.image, lat.series_uid,
    )  # fmt: skip
    user = layers.add_overlay(LandmarkOverlay("user", landmarks=[]))
    assert pane_of(truth, panes).slot == "lateral"
    assert pane_of(user, panes).slot == "ap" and not belongs_to(user, panes[1])


def test_every_kind_of_region_id_finds_its_place(pair_run):
    request, result, layers = pair_run
    ap, lat = request["ap"].image, request["lateral"].image
    by_label = {f.label: f for f in result.findings}
    # a label value of the lateral mask: its centroid, on the lateral
    target = find_target(layers, by_label["damaged"].region_id)
    labels = next(o for o in result.overlays if o.name == "Lateral mask").image.array[0]
    jj, ii = np.nonzero(labels)
    expected = lat.index_to_world(np.array([ii.mean(), jj.mean(), 0.0]))
    assert target.layer.slot == "lateral" and np.allclose(target.world, expected)
    # a landmark by name, on the AP
    target = find_target(layers, by_label["ap-peak"].region_id)
    mark = next(o for o in result.overlays if o.name == "AP peak").landmarks[0]
    assert target.layer.slot == "ap" and np.allclose(target.world, mark.position_lps)
    assert "landmark AP peak" in target.what
    # a box by its region id: the box's centre, on the lateral
    target = find_target(layers, by_label["lateral-box"].region_id)
    box = next(o for o in result.overlays if o.name == "Lateral box").boxes[0]
    centre = lat.index_to_world(np.array([(box.i0 + box.i1) / 2, (box.j0 + box.j1) / 2, 0.0]))
    assert target.layer.slot == "lateral" and np.allclose(target.world, centre)
    assert find_target(layers, "") is None and find_target(layers, "nowhere") is None
    assert not np.allclose(ap.origin, target.world)


def test_a_label_named_in_the_table_but_absent_is_not_a_target():
    vol = ImageVolume(np.zeros((1, 10, 10), np.uint8), (1.0, 1.0, 1.0))
    arr = vol.array.copy()
    arr[0, 2:4, 2:4] = 1
    layers = LayerList()
    layers.add_overlay(
        LabelMapOverlay("m", image=vol.with_array(arr), labels={1: ("a", (1, 2, 3)),
                                                                2: ("b", (4, 5, 6))})
    )  # fmt: skip
    assert find_target(layers, "a") is not None
    assert find_target(layers, "b") is None
