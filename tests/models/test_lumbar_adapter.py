"""The lumbar CCF-Net adapter through the runner: a demo study, the inputs it declines (real
cervical MR, a brain, axial, CT, radiographs), and that it runs without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.analysis.request import single_input
from app.analysis.runner import run_analysis
from app.engine.adapter import InputRejected
from app.findings import HeatmapOverlay
from app.findings.types import LandmarkOverlay
from app.study import load
from app.study.geometry import ImageVolume
from app.study.model import Series
from models.lumbar_ccfnet.adapter import LumbarCCFAdapter
from models.lumbar_ccfnet.anatomy import DISCS, OBJECTS
from models.lumbar_ccfnet.evaluate import load_complete
from tests.conftest import REAL_DATA

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "resources" / "demo" / "lumbar-mri" / "02_degenerated_L4-S1"


@pytest.fixture(scope="module")
def adapter():
    return LumbarCCFAdapter()


@pytest.fixture(scope="module")
def demo_result(adapter):
    # Every slice, or the mid slice moves (the loader drops a file whose decoder times out).
    series = load_complete(DEMO, len(list(DEMO.glob("*.dcm"))))
    return series, run_analysis(adapter, single_input(adapter, series))


def _truth() -> dict[str, np.ndarray]:
    doc = json.loads((DEMO / "truth.json").read_text())
    return {m["name"]: np.asarray(m["position_lps"]) for m in doc["landmarks"]}


def test_demo_study_landmarks_land_near_the_truth(demo_result):
    series, r = demo_result
    (marks,) = [o for o in r.overlays if isinstance(o, LandmarkOverlay)]
    assert [m.name for m in marks.landmarks] == list(OBJECTS)
    truth = _truth()
    err = np.array([np.linalg.norm(np.asarray(m.position_lps) - truth[m.name])
                    for m in marks.landmarks])  # fmt: skip
    assert np.median(err) < 4.0, err
    assert (err < 6.0).sum() >= 10, err  # the paper's 6 mm criterion
    k = r.extra["analysed_slice_index"]
    assert k == series.shape[0] // 2 and "mid-sagittal" in r.summary
    # Every landmark lies on the analysed slice.
    ijk = series.image.world_to_index(np.array([m.position_lps for m in marks.landmarks]))
    np.testing.assert_allclose(ijk[:, 2], k, atol=1e-6)


def test_findings_one_per_object_pointing_at_their_landmark(demo_result):
    _, r = demo_result
    assert [f.label for f in r.findings] == list(OBJECTS)
    for f in r.findings:
        assert f.region_id == f.label and 0.0 <= f.probability <= 1.0
        assert f.group == ("disc" if f.label in DISCS else "vertebra")
    assert r.provenance.task_id == "lumbar-mri" and r.provenance.weights_sha256
    assert "slice and resampling" in r.provenance.timings_s


def test_heatmaps_are_hidden_layers_peaking_at_their_landmark(demo_result):
    _, r = demo_result
    heat = [o for o in r.overlays if isinstance(o, HeatmapOverlay)]
    assert [h.label for h in heat] == list(OBJECTS) and not any(h.visible for h in heat)
    truth = _truth()
    for h in heat:
        a = h.image.array[0]
        j, i = np.unravel_index(np.argmax(a), a.shape)
        peak = h.image.index_to_world(np.array([i, j, 0.0]))
        cell = max(h.image.spacing[1:])
        # The peak cell's centre is within a cell of the object (the offset does the rest).
        assert np.linalg.norm(peak - truth[h.label]) < 1.5 * cell, h.label


def _declined(adapter, series) -> str:
    with pytest.raises(InputRejected) as exc:
        run_analysis(adapter, single_input(adapter, series))
    return str(exc.value)


@pytest.mark.parametrize(
    ("rel", "words"),
    [
        ("sct_testing_data/t2/t2.nii.gz", ("field of view", "too short")),
        ("mri_brain_colin27/ch2.nii.gz", ("axial",)),
    ],
)
def test_real_non_lumbar_files_get_a_clear_message(adapter, rel, words):
    path = REAL_DATA / rel
    if not path.exists():
        pytest.skip(f"{path} not available")
    msg = _declined(adapter, load(path).all_series()[0])
    assert msg.startswith(adapter.title) and "sagittal T2" in msg
    for w in words:
        assert w in msg, msg


def _series(modality, kind, direction, shape=(5, 300, 300), spacing=(4.0, 0.8, 0.8), **kw):
    image = ImageVolume(np.ones(shape, np.float32), spacing, np.zeros(3), direction)
    return Series("1.2.3", modality, kw.pop("description", ""), image, kind, **kw)


SAGITTAL = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def test_axial_ct_radiograph_and_other_regions_are_declined(adapter):
    axial = _declined(adapter, _series("MR", "volume", np.eye(3), body_part="LSPINE"))
    assert "axial" in axial
    assert "CT" in _declined(adapter, _series("CT", "volume", SAGITTAL))
    xray = _series("DX", "projection", np.eye(3), shape=(1, 300, 300), spacing=(1, 0.2, 0.2))
    assert "DX" in _declined(adapter, xray)
    brain = _series("MR", "volume", SAGITTAL, description="SAG T2 BRAIN")
    assert "BRAIN" in _declined(adapter, brain)
    assert "T1" in _declined(adapter, _series("MR", "volume", SAGITTAL, description="Sag T1"))
    assert "HEAD" in _declined(adapter, _series("MR", "volume", SAGITTAL, body_part="HEAD"))
    adapter.check_input(single_input(adapter, _series("MR", "volume", SAGITTAL)))  # accepted


def test_the_adapter_runs_with_torch_blocked():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from app.study import load\n"
        "from app.analysis.request import single_input\n"
        "from app.analysis.runner import run_analysis\n"
        "from models.lumbar_ccfnet.adapter import LumbarCCFAdapter\n"
        "a = LumbarCCFAdapter()\n"
        f"s = load({str(DEMO)!r}).all_series()[0]\n"
        "r = run_analysis(a, single_input(a, s))\n"
        "assert len(r.findings) == 11\n"
        "assert not any(m == 'torch' or m.startswith('torch.') for m in sys.modules if sys.modules[m])\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_the_slice_the_reader_looks_at_is_the_one_analysed(adapter, demo_result):
    series, mid = demo_result
    assert mid.extra["analysed_slice_index"] == series.shape[0] // 2
    k = series.shape[0] // 2 - 1
    request = single_input(adapter, series)
    request.focus_lps = tuple(series.image.index_to_world(np.array([10.0, 20.0, float(k)])))
    result = run_analysis(adapter, request)
    assert result.extra["analysed_slice_index"] == k
    assert "viewer" in result.extra["analysed_slice_reason"]
    assert "the slice you were viewing" in result.summary
    ks = [
        series.image.world_to_index(np.array(m.position_lps))[2]
        for m in result.overlays[0].landmarks
    ]
    assert np.allclose(ks, k, atol=1e-6)
