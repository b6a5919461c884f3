"""The cervical adapter with the shipped ONNX weights: results, geometry, input checks, cancel."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from app.analysis.runner import run_on_series
from app.engine.adapter import AnalysisCancelled, InputRejected
from app.engine.runtime import Manifest, WeightsError
from app.findings import DEMO_DISCLAIMER, BoxOverlay, LabelMapOverlay
from app.study import load
from app.study.geometry import ImageVolume
from app.study.model import Series
from models.cervical_fracture import pipeline as P
from models.cervical_fracture.adapter import WEIGHTS_DIR, CervicalFractureAdapter
from models.cervical_fracture.phantom import generate, write_study

ABDOMEN_CT = "totalsegmentator/example_ct_dicom"


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


@pytest.fixture(scope="module")
def adapter():
    return CervicalFractureAdapter()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A demo-sized phantom (seed not used in training) written as DICOM and loaded back."""
    sample = generate(0, fractures=["C2", "C6"], shape=128)
    folder = write_study(sample, tmp_path_factory.mktemp("cspine") / "study")
    series = [s for s in load(folder).all_series() if s.modality == "CT" and s.kind == "volume"]
    return sample, series[0]


@pytest.fixture(scope="module")
def result(adapter, study):
    calls = []
    res = run_on_series(adapter, study[1], progress=lambda stage, f: calls.append((stage, f)))
    return res, calls


def test_adapter_imports_no_torch():
    # other tests import torch into this process, so check the sources instead of sys.modules
    import models.cervical_fracture.adapter as mod
    import models.cervical_fracture.inference as inf
    import models.cervical_fracture.pipeline as pipe

    for m in (mod, inf, pipe):
        src = open(m.__file__).read()
        assert "import torch" not in src and "monai" not in src


def test_shipped_weights_are_small_and_verified():
    m = Manifest.load(WEIGHTS_DIR)
    for name in ("stage1.onnx", "stage2.onnx"):
        path = m.verified_path(name)
        assert path.stat().st_size < 15_000_000
    assert "phantom" in m.data["trained_on"]


def test_findings_per_vertebra_and_patient(result):
    res, _ = result
    assert [f.label for f in res.findings] == [*P.VERTEBRAE, "patient_overall"]
    for n, f in enumerate(res.findings[:7], start=1):
        assert f.group == "vertebra" and f.region_id == str(n) and 0 <= f.probability <= 1
    patient = res.finding("patient_overall")
    assert patient.group == "patient"
    top = np.sort([f.probability for f in res.findings[:7]])[::-1][: P.TOP_N]
    assert patient.probability == pytest.approx(1 - np.prod(1 - top), abs=1e-6)
    assert all(f.threshold == 0.5 for f in res.findings)


def test_label_map_is_in_the_study_geometry_and_overlaps_truth(result, study):
    res, _ = result
    sample, series = study
    lm = next(o for o in res.overlays if isinstance(o, LabelMapOverlay))
    assert lm.name == "Vertebrae C1-C7"
    assert lm.image.shape == series.image.shape
    np.testing.assert_allclose(lm.image.affine_lps(), series.image.affine_lps())
    assert {lm.labels[n][0] for n in range(1, 8)} == set(P.VERTEBRAE)
    assert len({lm.labels[n][1] for n in range(1, 8)}) == 7  # a distinct colour per vertebra
    dices = [_dice(lm.image.array == c, sample.labels.array == c) for c in range(1, 8)]
    assert min(dices) > 0.6, dices
    boxes = next(o for o in res.overlays if isinstance(o, BoxOverlay))
    assert len(boxes.boxes) == 7 and boxes.reference is series.image
    c4 = res.extra["vertebra_boxes"]["C4"]
    kk, jj, ii = np.nonzero(sample.labels.array == 4)
    assert c4["k0"] <= np.median(kk) <= c4["k1"]
    assert c4["i0"] <= np.median(ii) <= c4["i1"] and c4["j0"] <= np.median(jj) <= c4["j1"]


def test_provenance_and_progress(result):
    res, calls = result
    prov = res.provenance
    assert prov.weights_sha256 == Manifest.load(WEIGHTS_DIR).sha256s()
    assert prov.disclaimer == DEMO_DISCLAIMER and prov.inputs["ct"]["series_uid"]
    assert prov.device == "CUDA" or prov.device.startswith("CPU (")  # CPU says why not CUDA
    for stage in ("preprocess", "stage1_segmentation", "stage2_classification", "aggregate"):
        assert prov.timings_s[stage] >= 0
    fractions = [f for _, f in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert "stage2_classification" in [s for s, _ in calls]


def test_study_stored_head_first_gives_the_same_world_labels(adapter, study, result):
    sample, series = study
    img = series.image
    # the same voxels, slice order reversed: origin moves to the top slice, k points inferior
    direction = img.direction.copy()
    direction[:, 2] *= -1
    origin = img.index_to_world(np.array([0.0, 0.0, img.shape[0] - 1.0]))
    flipped = ImageVolume(img.array[::-1].copy(), img.spacing, origin, direction)
    res = run_on_series(adapter, Series("flip", "CT", "flipped", flipped))
    lm = next(o for o in res.overlays if isinstance(o, LabelMapOverlay)).image
    base = next(o for o in result[0].overlays if isinstance(o, LabelMapOverlay)).image
    agree = (lm.array[::-1] == base.array)[base.array > 0].mean()
    assert agree > 0.9


def test_cancel_between_stages(adapter, study):
    seen = []

    def cancel():
        return "stage2_classification" in seen

    with pytest.raises(AnalysisCancelled):
        run_on_series(adapter, study[1], progress=lambda s, f: seen.append(s), cancel=cancel)


def test_declines_radiograph_and_mr(adapter):
    xray = Series("x", "DX", "hip", ImageVolume(np.zeros((1, 64, 64))), kind="projection")
    with pytest.raises(InputRejected, match="axial CT series covering the cervical spine"):
        run_on_series(adapter, xray)
    mr = Series("m", "MR", "t2", ImageVolume(np.zeros((40, 64, 64))), kind="volume")
    with pytest.raises(InputRejected, match="MR"):
        run_on_series(adapter, mr)


def test_declines_the_real_abdomen_ct(adapter, real_data):
    folder = real_data / ABDOMEN_CT
    series = [s for s in load(folder).all_series() if s.modality == "CT"][0]
    assert series.shape[0] == 20
    with pytest.raises(InputRejected, match="covers only 38 mm"):
        run_on_series(adapter, series)
    # the segmentation on its own also says it: no cervical vertebrae in a lumbar CT
    from models.cervical_fracture.inference import PipelineOutput

    grid, labels = adapter.segment(series)
    regions = P.vertebra_regions(labels)
    assert len(regions) < 7
    out = PipelineOutput(grid, labels, P.labels_to_study(labels, grid))
    out.missing = [v for v in P.VERTEBRAE if v not in regions]
    with pytest.raises(InputRejected, match="missing"):
        adapter.reject_if_not_neck(out, series)


def test_tampered_weights_are_refused(tmp_path, study):
    shutil.copytree(WEIGHTS_DIR, tmp_path / "w")
    with open(tmp_path / "w" / "stage2.onnx", "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(WeightsError, match="sha256"):
        run_on_series(CervicalFractureAdapter(weights_dir=tmp_path / "w"), study[1])
