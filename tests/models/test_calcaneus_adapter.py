"""The calcaneus adapter with the shipped demo weights: outputs, which mask was used, input checks
(the real AP ankle film RG3 included), the CLI with a corrected mask, and no torch at run time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.analysis.explain import explain
from app.analysis.request import resolve_inputs, series_by_uid_or_path
from app.analysis.runner import run_analysis
from app.engine.adapter import AnalysisRequest, ExplainUnavailable, InputRejected
from app.engine.runtime import WeightsError
from app.findings import DEMO_DISCLAIMER, HeatmapOverlay
from app.findings.types import LabelMapOverlay
from app.study import load
from app.study.geometry import ImageVolume
from app.study.model import Series
from models.calcaneus_msrt import phantom
from models.calcaneus_msrt.adapter import WEIGHTS_DIR, CalcaneusAdapter
from models.calcaneus_msrt.labels import LABELS

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "resources" / "demo" / "calcaneus-fracture" / "02_joint_depression"
RG3 = ("RG3_UNC", "RG3_RLE")


@pytest.fixture(scope="module")
def adapter():
    return CalcaneusAdapter()


@pytest.fixture(scope="module")
def loaded():
    return load(DEMO)


def _request(adapter, loaded, overrides=None, origins=None):
    req = resolve_inputs(adapter.spec, loaded, DEMO, adapter, overrides or {})
    req.origins.update(origins or {})
    return req


def _mask_png(tmp_path: Path, shape=(512, 512), seed=2) -> Path:
    s = phantom.generate(seed, rows=shape[0], cols=shape[1], labels={"Primary Line": True})
    path = tmp_path / "mask.png"
    Image.fromarray((s.rough_mask * 255).astype(np.uint8)).save(path)
    return path


def test_labels_match_the_shipped_manifest(adapter):
    # one label table (models/calcaneus_msrt/labels.py); the weights must have been exported with it
    assert tuple(adapter.manifest.data["labels"]) == LABELS


def test_demo_study_gives_six_findings_maps_and_the_predicted_mask(adapter, loaded):
    req = _request(adapter, loaded)
    assert set(req.inputs) == {"radiograph"}
    r = run_analysis(adapter, req)
    assert [f.label for f in r.findings] == list(LABELS)
    assert all(f.group == "subtype" and 0 <= f.probability <= 1 for f in r.findings)
    heat = [o for o in r.overlays if isinstance(o, HeatmapOverlay)]
    assert [h.label for h in heat] == list(LABELS)
    # listed as layers, none drawn unasked: they do not localise (models/calcaneus_msrt/adapter.py)
    assert not any(h.visible for h in heat)
    series = req["radiograph"]
    for h in heat:
        assert h.slot == "radiograph" and 0 <= h.image.array.min() <= h.image.array.max() <= 1
        # The map covers the radiograph: its far corner lands on the image's far corner.
        far = h.image.index_to_world(np.array([h.image.shape[2] - 0.5, h.image.shape[1] - 0.5, 0]))
        ref = series.image.index_to_world(np.array([511.5, 511.5, 0]))
        assert np.allclose(far, ref, atol=0.5)
    (mask,) = [o for o in r.overlays if isinstance(o, LabelMapOverlay)]
    assert mask.slot == "radiograph" and mask.image.shape == series.image.shape
    assert r.extra["mask_used"] == "predicted" and "predicted" in mask.name
    assert r.provenance.disclaimer == DEMO_DISCLAIMER and DEMO_DISCLAIMER in r.summary
    json.dumps(r.extra)


def test_given_and_edited_masks_are_used_and_named(adapter, loaded, tmp_path):
    png = _mask_png(tmp_path)
    given = series_by_uid_or_path(loaded, str(png), load)
    req = _request(adapter, loaded, {"fracture_mask": given})
    assert req.origins["fracture_mask"] == "user"
    r = run_analysis(adapter, req)
    assert r.extra["mask_used"] == "given"
    used = next(o for o in r.overlays if isinstance(o, LabelMapOverlay)).image.array[0] > 0
    assert np.array_equal(used, np.asarray(Image.open(png)) > 127)
    edited = run_analysis(adapter, _request(adapter, loaded, {"fracture_mask": given},
                                            {"fracture_mask": "edited"}))  # fmt: skip
    assert edited.extra["mask_used"] == "edited"
    # The mask is an input: an empty one changes the probabilities.
    empty = series_by_uid_or_path(loaded, str(_blank(tmp_path, (512, 512))), load)
    r0 = run_analysis(adapter, _request(adapter, loaded, {"fracture_mask": empty}))
    diff = max(
        abs(a.probability - b.probability) for a, b in zip(r.findings, r0.findings, strict=True)
    )
    assert diff > 1e-3


def test_calls_use_the_manifests_per_label_thresholds(loaded, tmp_path):
    shutil.copytree(WEIGHTS_DIR, tmp_path / "w")
    manifest = tmp_path / "w" / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["thresholds"] = {lab: 0.05 + 0.15 * k for k, lab in enumerate(LABELS)}
    manifest.write_text(json.dumps(doc))
    custom = CalcaneusAdapter(tmp_path / "w")
    r = run_analysis(custom, _request(custom, loaded))
    for k, f in enumerate(r.findings):
        assert f.threshold == pytest.approx(0.05 + 0.15 * k)
    assert r.extra["thresholds"] == pytest.approx(doc["thresholds"])
    called = [lab for lab in LABELS if f"{lab} p=" in r.summary]
    assert called == [f.label for f in r.findings if f.probability >= f.threshold]
    # Without "thresholds" every label is called at 0.5.
    del doc["thresholds"]
    manifest.write_text(json.dumps(doc))
    plain = CalcaneusAdapter(tmp_path / "w")
    assert set(plain.thresholds().values()) == {0.5}


def _blank(tmp_path: Path, shape) -> Path:
    path = tmp_path / f"blank_{shape[0]}x{shape[1]}.png"
    Image.fromarray(np.zeros(shape, np.uint8)).save(path)
    return path


def test_a_mask_off_the_radiographs_grid_is_declined(adapter, loaded, tmp_path):
    wrong = series_by_uid_or_path(loaded, str(_mask_png(tmp_path, (300, 400))), load)
    with pytest.raises(
        InputRejected, match=r"mask is 400x300 pixels but the radiograph is 512x512"
    ):
        run_analysis(adapter, _request(adapter, loaded, {"fracture_mask": wrong}))


@pytest.mark.parametrize("name", RG3)
def test_real_ap_ankle_film_is_declined_naming_the_lateral_view(adapter, real_data, name):
    path = real_data / "xray_nema_wg04" / f"{name}.dcm"
    film = load(path)
    assert film.all_series()[0].view_position == "AP"
    with pytest.raises(InputRejected, match="needs a lateral view") as exc:
        resolve_inputs(adapter.spec, film, path, adapter)
    assert "AP view" in str(exc.value)


@pytest.mark.parametrize("name", RG3)
def test_cli_declines_the_ap_ankle_film_without_a_traceback(real_data, name, tmp_path):
    proc = _cli("analyze", str(real_data / "xray_nema_wg04" / f"{name}.dcm"),
                "--task", "calcaneus-fracture", "--out", str(tmp_path / "o"))  # fmt: skip
    assert proc.returncode != 0
    assert "lateral" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


def _cli(*args: str) -> subprocess.CompletedProcess:
    entry = "import sys; from app.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", entry, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_cli_with_a_corrected_mask_says_given(tmp_path):
    png = _mask_png(tmp_path)
    proc = _cli("analyze", str(DEMO), "--task", "calcaneus-fracture", "--out",
                str(tmp_path / "o"), "--input", f"fracture_mask={png}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "o" / "findings.json").read_text())
    assert doc["extra"]["mask_used"] == "given"
    assert "mask: given" in doc["summary"]


def _series(modality, kind, shape, body_part="FOOT", view="LL") -> Series:
    s = Series("1.2", modality, "x", ImageVolume(np.zeros(shape, np.int16)), kind=kind)
    s.body_part, s.view_position = body_part, view
    return s


def test_other_modalities_and_body_parts_are_declined(adapter):
    slot = adapter.slots[0]
    with pytest.raises(InputRejected, match="CT volume with 40 slice"):
        adapter.check_slot(slot, _series("CT", "volume", (40, 64, 64)))
    with pytest.raises(InputRejected, match="MR volume"):
        adapter.check_slot(slot, _series("MR", "volume", (12, 64, 64)))
    with pytest.raises(InputRejected, match="BodyPartExamined=CHEST"):
        adapter.check_slot(slot, _series("DX", "projection", (1, 256, 256), "CHEST", "LL"))
    adapter.check_slot(slot, _series("DX", "projection", (1, 256, 256), "ANKLE", "LAT"))
    with pytest.raises(InputRejected, match="2-D label map"):
        adapter.check_slot(adapter.slots[1], _series("SEG", "labelmap", (3, 256, 256)))


def test_explain_returns_the_findings_attention_map(adapter, loaded):
    req = _request(adapter, loaded)
    r = run_analysis(adapter, req)
    f = r.findings[3]
    (ov,) = explain(adapter, req, r, f, "cam", cache=None)
    assert isinstance(ov, HeatmapOverlay) and ov.label == f.label and ov.slot == "radiograph"
    assert ov.name == f"Attention {f.label}"
    with pytest.raises(ExplainUnavailable):  # SHAP is there (tests/test_explain_calcaneus.py)
        explain(adapter, req, r, f, "lime", cache=None)


def test_modified_weights_are_refused(tmp_path):
    shutil.copytree(WEIGHTS_DIR, tmp_path / "w")
    onnx = tmp_path / "w" / "calcaneus_msrt.onnx"
    data = bytearray(onnx.read_bytes())
    data[-10] ^= 0xFF
    onnx.write_bytes(bytes(data))
    s = _series("DX", "projection", (1, 256, 256))
    req = AnalysisRequest("calcaneus-fracture", {"radiograph": s}, origins={"radiograph": "user"})
    with pytest.raises(WeightsError, match="sha256"):
        run_analysis(CalcaneusAdapter(tmp_path / "w"), req)


def test_adapter_runs_with_torch_blocked():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np\n"
        "from app.engine.adapter import AnalysisRequest\n"
        "from app.analysis.runner import run_analysis\n"
        "from app.study.geometry import ImageVolume\n"
        "from app.study.model import Series\n"
        "from models.calcaneus_msrt.adapter import CalcaneusAdapter\n"
        "img = np.random.default_rng(0).integers(0, 4000, (1, 300, 260)).astype(np.uint16)\n"
        "s = Series('1', 'DX', 'lat', ImageVolume(img), kind='projection')\n"
        "r = run_analysis(CalcaneusAdapter(), AnalysisRequest('calcaneus-fracture', "
        "{'radiograph': s}, origins={'radiograph': 'user'}))\n"
        "assert len(r.findings) == 6 and r.extra['mask_used'] == 'predicted'\n"
        "print('ok', 'torch' in sys.modules and sys.modules['torch'] is not None)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok False"
