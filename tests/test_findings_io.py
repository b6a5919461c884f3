"""findings.json and overlay files: written atomically, read back into the same AnalysisResult."""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

import app
from app.analysis.runner import run_on_series
from app.findings import DEMO_DISCLAIMER, LandmarkOverlay
from app.findings.io import (
    FindingsFormatError,
    StudyRef,
    is_complete,
    read_document,
    read_findings,
    write_result,
)
from app.findings.types import Landmark
from app.study.geometry import ImageVolume
from app.study.model import PatientInfo, Series, Study
from tests.fake_tasks import FakeCTAdapter, FakeXrayAdapter, ct_phantom, radiograph_phantom


@pytest.fixture(autouse=True)
def _secret_in_tmp(monkeypatch, tmp_path):
    """Anonymising creates the installation's pseudonym secret: never in the real home."""
    monkeypatch.setenv("OSTEOVIEW_SECRET_FILE", str(tmp_path / "secret" / "pseudonym.key"))


def _ct_series() -> tuple[Study, Series]:
    series = Series(
        "1.2.3.4", "CT", "neck", ct_phantom(fracture_in=2), kind="volume", body_part="CSPINE"
    )
    patient = PatientInfo(
        name="DOE^JANE", patient_id="P-77", birth_date="19800203", accession="A-1"
    )
    return Study("1.2.3", patient, [series]), series


def _xr_series() -> Series:
    image = ImageVolume(
        radiograph_phantom().astype(np.float32), (1.0, 0.2, 0.25), np.array([5.0, -3.0, 0.0])
    )
    return Series("1.2.9", "DX", "hip", image, kind="projection")


def test_ct_result_round_trip_in_world_coordinates(tmp_path):
    study, series = _ct_series()
    result = run_on_series(FakeCTAdapter(), series)
    path = write_result(
        result, tmp_path, StudyRef.from_series(study, series, "/data/x"), {"load_s": 0.5}
    )
    doc = json.loads(path.read_text())
    assert doc["software"]["version"] == app.__version__
    assert doc["disclaimer"] == DEMO_DISCLAIMER == doc["provenance"]["disclaimer"]
    assert doc["study"]["study_uid"] == "1.2.3" and doc["study"]["series_uid"] == "1.2.3.4"
    assert doc["study"]["patient"]["patient_id"] == "P-77"
    assert doc["timings_s"]["load_s"] == 0.5 and "segment" in doc["timings_s"]
    v2 = next(f for f in doc["findings"] if f["label"] == "V2")
    assert v2["call"] == "positive" and v2["parent"] == "fracture" and v2["group"] == "vertebra"
    # The label map is NIfTI whose RAS affine places each voxel where the CT voxel is.
    lm = doc["overlays"][0]
    assert lm["type"] == "labelmap" and lm["labels"]["1"] == ["V1", [255, 0, 0]]
    img = nib.load(tmp_path / lm["file"])
    np.testing.assert_allclose(img.affine, series.image.affine_ras(), atol=1e-5)
    ijk = np.array([20, 24, 15])  # a V2 voxel: (i, j, k)
    assert np.asarray(img.dataobj)[tuple(ijk)] == result.overlays[0].image.array[15, 24, 20] == 2

    back = read_findings(tmp_path)
    assert [(f.label, f.probability, f.parent) for f in back.result.findings] == [
        (f.label, round(f.probability, 6), f.parent) for f in result.findings
    ]
    assert back.result.provenance.weights_sha256 == result.provenance.weights_sha256
    assert back.study.patient.name == "DOE^JANE"
    lm_back = back.result.overlays[0]
    np.testing.assert_array_equal(lm_back.image.array, result.overlays[0].image.array)
    np.testing.assert_allclose(lm_back.image.affine_lps(), series.image.affine_lps(), atol=1e-5)
    assert lm_back.labels[2] == ("V2", (0, 255, 0))


def test_radiograph_heatmap_boxes_and_landmarks(tmp_path):
    series = _xr_series()
    result = run_on_series(FakeXrayAdapter(), series)
    result.overlays.append(
        LandmarkOverlay(name="Marks", landmarks=[Landmark("tip", (1.0, 2.0, 3.0), 0.7)])
    )
    write_result(result, tmp_path, StudyRef.from_series(None, series))
    doc, _ = read_document(tmp_path)
    heat, boxes, marks = doc["overlays"]
    arr = np.load(tmp_path / heat["npy"], allow_pickle=False)
    np.testing.assert_array_equal(arr, result.overlays[0].image.array.astype(np.float32))
    png = np.asarray(Image.open(tmp_path / heat["png"]))
    assert png.shape == (120, 160, 3)
    peak = np.unravel_index(np.argmax(arr[0]), arr[0].shape)
    assert png[peak][0] > 100 and png[peak][2] < 60  # hot end of jet: red, not blue
    assert png[0, -1][2] > png[0, -1][0]  # a cold corner is blue
    box = boxes["boxes"][0]
    assert box["caption"] == "right"
    # mm: indices through the reference geometry (column spacing 0.25, row spacing 0.2).
    assert box["mm"]["width_mm"] == pytest.approx((box["i1"] - box["i0"] + 1) * 0.25)
    assert box["mm"]["height_mm"] == pytest.approx((box["j1"] - box["j0"] + 1) * 0.2)
    assert box["mm"]["corner0_lps"] == pytest.approx(
        [5.0 + box["i0"] * 0.25, -3.0 + box["j0"] * 0.2, 0.0]
    )
    assert marks["landmarks"][0]["position_lps"] == [1.0, 2.0, 3.0]

    back = read_findings(tmp_path).result
    hm, bx, lmk = back.overlays
    np.testing.assert_allclose(hm.image.affine_lps(), series.image.affine_lps())
    assert hm.label == "fracture" and hm.colormap == "jet"
    assert (bx.boxes[0].i0, bx.boxes[0].caption) == (result.overlays[1].boxes[0].i0, "right")
    np.testing.assert_allclose(bx.reference.affine_lps(), series.image.affine_lps())
    assert lmk.landmarks[0].position_lps == (1.0, 2.0, 3.0)
    assert [f.side for f in back.findings] == [f.side for f in result.findings]


def test_anonymised_output_holds_no_identifier(tmp_path):
    study, series = _ct_series()
    result = run_on_series(FakeCTAdapter(), series)
    write_result(result, tmp_path, StudyRef.from_series(study, series, "/data/DOE"), anonymise=True)
    text = (tmp_path / "findings.json").read_text()
    for ident in ("DOE^JANE", "P-77", "19800203", "A-1", "1.2.3.4", "/data/DOE"):
        assert ident not in text
    ref = read_findings(tmp_path).study
    assert ref.anonymised and ref.patient.patient_id.startswith("ANON-")
    # The pseudonym is stable across runs (summary rows of a resumed batch agree).
    assert ref.patient.patient_id == StudyRef.from_series(study, series).anonymous_id()


def test_files_are_complete_and_plain(tmp_path):
    study, series = _ct_series()
    write_result(
        run_on_series(FakeCTAdapter(), series), tmp_path, StudyRef.from_series(study, series)
    )
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if n.startswith(".tmp-")]
    assert is_complete(tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    assert all((p.stat().st_mode & 0o777) == (0o666 & ~umask) for p in tmp_path.iterdir())
    # A missing overlay file makes the folder incomplete (a resumed batch redoes it).
    next(tmp_path.glob("labelmap_*")).unlink()
    assert not is_complete(tmp_path)


def test_bad_findings_file_names_the_file(tmp_path):
    (tmp_path / "findings.json").write_text("{not json")
    with pytest.raises(FindingsFormatError, match="findings.json"):
        read_findings(tmp_path)
    (tmp_path / "findings.json").write_text('{"format": "something else"}')
    with pytest.raises(FindingsFormatError, match="not an OsteoView findings file"):
        read_findings(tmp_path)
    assert not is_complete(tmp_path / "nowhere")


def test_importing_and_writing_never_touch_the_process_umask(tmp_path):
    """os.umask is process-wide: reading it by setting and restoring races with threads that
    create files in between. The writers leave the umask to the kernel (os.open with 0o666)."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "def refuse(*a):\n"
        "    raise AssertionError('os.umask called')\n"
        "os.umask = refuse\n"
        "import app.findings.io, app.atomic, app.report.pdf, app.study.nifti\n"
        "p = app.atomic.atomic_write_text(sys.argv[1], 'x')\n"
        "print(oct(os.stat(p).st_mode & 0o777))\n"
    )
    out = tmp_path / "f.txt"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        capture_output=True,
        text=True,
        cwd=app.__path__[0] + "/..",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    umask = os.umask(0o022)
    os.umask(umask)
    assert proc.stdout.strip() == oct(0o666 & ~umask)


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    from app.atomic import atomic_path, atomic_write_text

    target = atomic_write_text(tmp_path / "findings.json", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("disk full, say")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["findings.json"]


@pytest.mark.parametrize(
    "edit, says",
    [
        (lambda d: d["findings"][0].update(probability="0.9"), "'probability' must be a number"),
        (lambda d: d["findings"][0].update(label=["x"]), "'label' must be a string"),
        (lambda d: d["provenance"].update(task_id=None), "'task_id' must be a string"),
    ],
)
def test_a_wrongly_typed_field_is_refused_not_coerced(tmp_path, edit, says):
    """findings.json is read through the typed records it shares with the child processes'
    messages (app.findings.serial): a field of the wrong type names itself."""
    _, series = _ct_series()
    path = write_result(run_on_series(FakeCTAdapter(), series), tmp_path)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(FindingsFormatError, match=f"incomplete findings file.*{says}"):
        read_findings(path)
