"""The femur AO adapter end to end on phantoms and on the real hip film (shipped demo weights)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from app.analysis.runner import run_on_series
from app.analysis.tasks import get_adapter
from app.engine.adapter import InputRejected
from app.engine.runtime import WeightsError
from app.findings import DEMO_DISCLAIMER, BoxOverlay, HeatmapOverlay
from app.study import load
from app.study.geometry import ImageVolume
from app.study.model import Series
from models.femur_ao.adapter import WEIGHTS_DIR, FemurAOAdapter
from models.femur_ao.phantom import generate, write_study

SUBTYPES = ("A1", "A2", "A3", "B1", "B2", "B3")


@pytest.fixture(scope="module")
def adapter():
    return get_adapter("femur-ao")


def _study(tmp_path, seed, labels, shape=(614, 750), view="bilateral"):
    path = write_study(generate(seed, shape=shape, labels=labels, view=view), tmp_path / f"s{seed}")
    return load(path).all_series()[0]


def test_registry_gives_the_adapter(adapter):
    assert isinstance(adapter, FemurAOAdapter) and adapter.task_id == "femur-ao"


def test_bilateral_phantom_gives_both_sides_with_the_hierarchy(adapter, tmp_path):
    series = _study(tmp_path, 11, {"right": "B2", "left": "normal"})
    r = run_on_series(adapter, series)
    for side in ("right", "left"):
        f = {x.label: x for x in r.findings if x.side == side}
        assert f["fracture"].group == "fracture" and f["fracture"].parent == ""
        for t in ("normal", "A", "B"):
            assert f[t].group == "type" and f[t].parent == "fracture"
        for st in SUBTYPES:
            assert f[st].group == "subtype" and f[st].parent == st[0]
        assert sum(f[t].probability for t in ("normal", "A", "B")) == pytest.approx(1, abs=1e-4)
        # Subtypes share their type's probability: the tree is consistent.
        for t in ("A", "B"):
            kids = sum(f[st].probability for st in SUBTYPES if st[0] == t)
            assert kids == pytest.approx(f[t].probability, abs=1e-5)
        cond = r.extra["sides"][side]["p_subtype_given_fracture"]
        assert sum(cond.values()) == pytest.approx(1, abs=1e-4)
    heat = [o for o in r.overlays if isinstance(o, HeatmapOverlay)]
    assert {h.label for h in heat} == {"fracture", "normal", "A", "B", *SUBTYPES}
    assert sum(h.visible for h in heat) == 1
    for h in heat:
        assert 0.0 <= h.image.array.min() and h.image.array.max() <= 1.0
        # The map's grid covers the radiograph: its corners land on the image's corners.
        far = h.image.index_to_world(np.array([h.image.shape[2] - 0.5, h.image.shape[1] - 0.5, 0]))
        ref_far = series.image.index_to_world(
            np.array([series.shape[2] - 0.5, series.shape[1] - 0.5, 0])
        )
        assert np.allclose(far, ref_far, atol=2 * series.image.spacing[1] * 2)
    assert any(h.image.array.max() > 0.9 for h in heat)
    roi = next(
        o for o in r.overlays if isinstance(o, BoxOverlay) and o.name == "STN region of interest"
    )
    assert sorted(b.caption.split()[0] for b in roi.boxes) == ["left", "right"]
    assert roi.reference is series.image
    # The right femur's region lies in the image's left half (radiological convention).
    right = next(b for b in roi.boxes if b.caption.startswith("right"))
    assert (right.i0 + right.i1) / 2 < series.shape[2] / 2
    json.dumps(r.extra)  # JSON-able
    assert set(r.extra["sides"]) == {"right", "left"}
    assert r.extra["sides"]["right"]["roi_box_mm"][2] > r.extra["sides"]["right"]["roi_box_mm"][0]
    p = r.provenance
    assert p.disclaimer == DEMO_DISCLAIMER and DEMO_DISCLAIMER in r.summary
    assert p.weights_sha256 == adapter.manifest.sha256s()
    assert {"inference", "maps and boxes"} <= set(p.timings_s)


def test_fractured_side_scores_higher_than_its_normal_side(adapter, tmp_path):
    """If sides were swapped or mirrored wrongly, the fracture would be found on the other side."""
    wins = 0
    cases = [("right", "B2"), ("left", "A2"), ("right", "A1"), ("left", "B3")]
    for n, (side, st) in enumerate(cases):
        other = "left" if side == "right" else "right"
        r = run_on_series(adapter, _study(tmp_path, 200 + n, {side: st, other: "normal"}))
        wins += r.finding("fracture", side).probability > r.finding("fracture", other).probability
    assert wins >= 3


def test_cam_boxes_lie_on_the_fractured_femur(adapter, tmp_path):
    series = _study(tmp_path, 31, {"right": "normal", "left": "B1"})
    r = run_on_series(adapter, series)
    left = r.extra["sides"]["left"]
    if r.finding("fracture", "left").probability < 0.5:
        pytest.fail(f"the demo model missed a clear B1 fracture: {r.summary}")
    boxes = left["cam_boxes"]
    assert boxes, "a side called fractured gets boxes from its CAM"
    for b in boxes:
        i0, j0, i1, j1 = b["box_px"]
        assert series.shape[2] / 2 - 5 <= i0 < i1 <= series.shape[2] + 1  # on the left femur's half
        assert b["box_mm"][0] == pytest.approx(i0 * series.image.spacing[2], abs=0.02)


def test_single_hip_phantom_is_one_side(adapter, tmp_path):
    series = _study(tmp_path, 41, {"right": "normal", "left": "A3"}, view="left")
    r = run_on_series(adapter, series)
    assert {f.side for f in r.findings} == {"left"}
    assert "single hip" in r.summary


@pytest.mark.parametrize(
    "name", ["RG2_UNC", "RG2_J2KR", "RG2_JLSL", "RG2_RLE", "RG2_JPLL", "RG2_JPLY"]
)
def test_real_hip_radiograph_runs_the_whole_path(adapter, real_data, name):
    from app.study.model import StudyLoadError

    try:
        series = load(real_data / "xray_nema_wg04" / f"{name}.dcm").all_series()[0]
    except StudyLoadError as exc:  # the loader's business (12-bit lossy JPEG needs GDCM support)
        pytest.skip(f"{name} does not decode here: {exc}")
    r = run_on_series(adapter, series)
    assert {f.side for f in r.findings} == {"left"}
    assert "Not a phantom" in r.summary and "means little" in r.summary
    heat = [o for o in r.overlays if isinstance(o, HeatmapOverlay)]
    assert len(heat) == 10 and all(np.isfinite(h.image.array).all() for h in heat)
    roi = next(o for o in r.overlays if o.name == "STN region of interest").boxes[0]
    assert 0 <= roi.i0 < roi.i1 <= series.shape[2] and 0 <= roi.j0 < roi.j1 <= series.shape[1]
    assert r.extra["real_image"] is True and r.extra["side_detection"]


def test_ct_volume_is_declined_with_a_reason(adapter):
    ct = Series("1.2", "CT", "axial", ImageVolume(np.zeros((40, 64, 64), np.int16)), kind="volume")
    with pytest.raises(InputRejected, match="CT volume with 40 slice"):
        run_on_series(adapter, ct)
    mr = Series("1.3", "MR", "sag", ImageVolume(np.zeros((12, 64, 64), np.int16)), kind="volume")
    with pytest.raises(InputRejected, match="radiograph"):
        adapter.check_slot(adapter.slots[0], mr)


def test_modified_weights_are_refused(tmp_path):
    shutil.copytree(WEIGHTS_DIR, tmp_path / "w")
    onnx = tmp_path / "w" / "femur_ao.onnx"
    data = bytearray(onnx.read_bytes())
    data[-10] ^= 0xFF
    onnx.write_bytes(bytes(data))
    series = Series(
        "1", "DX", "x", ImageVolume(np.zeros((1, 256, 300), np.uint16)), kind="projection"
    )
    with pytest.raises(WeightsError, match="sha256"):
        run_on_series(FemurAOAdapter(tmp_path / "w"), series)


def test_real_paediatric_pelvis_gives_two_sides(adapter, real_data):
    series = load(real_data / "radoss_ddh_xray" / "331_DDH_1.dcm").all_series()[0]
    r = run_on_series(adapter, series)
    assert {f.side for f in r.findings} == {"right", "left"}
    assert r.extra["layout"] == "bilateral" and r.extra["real_image"] is True
    heat = next(o for o in r.overlays if isinstance(o, HeatmapOverlay))
    assert heat.image.shape == (1, 331, 331)


def test_a_radiograph_labelled_as_another_body_part_is_declined(real_data):
    from app.engine.adapter import InputRejected
    from app.study import load
    from models.femur_ao.adapter import FemurAOAdapter

    ankle = load(real_data / "xray_nema_wg04" / "RG3_UNC.dcm").all_series()[0]
    assert ankle.body_part == "EXTREMITY"
    with pytest.raises(InputRejected, match="BodyPartExamined=EXTREMITY"):
        FemurAOAdapter().check_slot(FemurAOAdapter().slots[0], ankle)
