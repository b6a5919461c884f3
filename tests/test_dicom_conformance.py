"""Every DICOM object OsteoView writes passes dciodvfy (dicom3tools) with no errors: the demo
studies (each task's phantom writer), DICOM SEG, TID 1500 SR and Encapsulated PDF."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.findings.dicom_pdf import read_pdf, write_pdf
from app.findings.dicom_seg import Algorithm, Segment, write_seg
from app.findings.dicom_sr import read_sr, write_sr
from app.findings.types import AnalysisResult, Finding, Provenance
from app.study.dicom_writer import write_radiograph, write_series
from app.study.geometry import ImageVolume

DCIODVFY = shutil.which("dciodvfy")
needs_dciodvfy = pytest.mark.skipif(
    DCIODVFY is None, reason="dciodvfy not installed (apt-get install dicom3tools)"
)


def dciodvfy_errors(path: Path) -> list[str]:
    """The validator's error lines (warnings are not failures)."""
    run = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=120)
    lines = (run.stdout + run.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")]


def _save(ds: pydicom.Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def _result() -> AnalysisResult:
    prov = Provenance("cervical-fracture", "demo-model", "0.1.0", {}, "paper", "phantoms")
    findings = [
        Finding("patient_overall", 0.81, 0.5, group="patient"),
        Finding("C1", 0.12, 0.5, group="vertebra", parent="patient_overall", region_id="1"),
        Finding("C2", 0.77, 0.5, group="vertebra", parent="patient_overall", region_id="2"),
        Finding("neck", 0.4, 0.3, side="left", group="fracture"),
    ]
    return AnalysisResult("cervical-fracture", findings, [], prov)


def _tiny_pdf() -> bytes:
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    page = canvas.Canvas(buf)
    page.drawString(72, 720, "OsteoView test report")
    page.save()
    return buf.getvalue()


@pytest.fixture()
def ct_study(tmp_path):
    rng = np.random.default_rng(0)
    volume = ImageVolume(rng.integers(-200, 900, (5, 16, 16)).astype(np.float32), (2.0, 0.7, 0.7))
    paths = write_series(volume, tmp_path / "ct", "CT")
    labels = np.zeros(volume.shape, np.uint8)
    labels[1:3, 2:8, 2:8], labels[3:5, 8:14, 6:12] = 1, 2
    return volume.with_array(labels), [pydicom.dcmread(p) for p in paths], paths


@needs_dciodvfy
@pytest.mark.parametrize(
    "task", ["cervical-fracture", "femur-ao", "calcaneus-fracture", "spine-xray", "lumbar-mri"]
)
def test_demo_studies_pass_dciodvfy(task, tmp_path) -> None:
    from app.commands.demo import write_demos

    try:
        write_demos(tmp_path, seed=0, tasks=[task])
    except Exception as exc:  # a task whose phantom code has not landed is not ours to test
        pytest.skip(f"{task}: phantom not available ({exc})")
    files = sorted(tmp_path.rglob("*.dcm"))
    assert files, f"{task}: no DICOM written"
    by_series: dict[str, Path] = {}
    for f in files:  # one file per series: the writer is the same for every slice
        uid = str(pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID)
        by_series.setdefault(uid, f)
    for f in by_series.values():
        assert dciodvfy_errors(f) == [], f


@needs_dciodvfy
def test_bundled_demo_studies_pass_dciodvfy() -> None:
    """What `make run` opens (resources/demo, JPEG 2000 re-encoded by make_demo.py)."""
    demo = Path(__file__).resolve().parents[1] / "resources" / "demo"
    by_series: dict[str, Path] = {}
    for f in sorted(demo.rglob("*.dcm")):
        uid = str(pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID)
        by_series.setdefault(uid, f)
    assert len(by_series) >= 12
    for f in by_series.values():
        assert dciodvfy_errors(f) == [], f


@needs_dciodvfy
def test_writer_radiograph_and_mr_pass_dciodvfy(tmp_path) -> None:
    pixels = np.arange(30 * 20, dtype=np.uint16).reshape(30, 20)
    for photometric in ("MONOCHROME2", "MONOCHROME1"):
        path = write_radiograph(pixels, tmp_path / f"{photometric}.dcm", photometric=photometric)
        assert dciodvfy_errors(path) == []
    for modality, data in (("CR", pixels), ("SC", (pixels % 256).astype(np.uint8))):
        path = write_radiograph(data, tmp_path / f"{modality}.dcm", modality=modality)
        assert dciodvfy_errors(path) == [], modality
    mr = write_series(ImageVolume(np.ones((2, 8, 8), np.float32)), tmp_path / "mr", "MR")
    assert dciodvfy_errors(mr[0]) == []


@needs_dciodvfy
def test_seg_sr_and_encapsulated_pdf_pass_dciodvfy(ct_study, tmp_path) -> None:
    labels, source, _ = ct_study
    segments = [Segment(1, "C1", (255, 0, 0)), Segment(2, "C2", (0, 255, 0))]
    seg = write_seg(labels, segments, source, Algorithm("demo-model", "0.1.0"))
    seg_path = _save(seg, tmp_path / "seg.dcm")
    sr = write_sr(_result(), source, pydicom.dcmread(seg_path))
    pdf_bytes = _tiny_pdf()
    pdf = write_pdf(pdf_bytes, source, "OsteoView report")
    for name, ds in (("seg", seg), ("sr", sr), ("pdf", pdf)):
        path = seg_path if name == "seg" else _save(ds, tmp_path / f"{name}.dcm")
        assert dciodvfy_errors(path) == [], name
    # and they read back: SR values, PDF bytes
    back = {f.identifier: f for f in read_sr(pydicom.dcmread(tmp_path / "sr.dcm"))}
    assert back["C2"].probability == pytest.approx(0.77) and back["C2"].present
    assert back["left:neck"].threshold == pytest.approx(0.3) and back["left:neck"].present
    assert back["C1"].segment == 1 and back["patient_overall"].segment is None
    assert read_pdf(pydicom.dcmread(tmp_path / "pdf.dcm")) == pdf_bytes
    assert pdf.StudyInstanceUID == source[0].StudyInstanceUID == sr.StudyInstanceUID


def test_validator_catches_a_missing_type1_attribute(ct_study, tmp_path) -> None:
    """The check can fail: a CT slice without its Type 1 ImagePositionPatient is reported."""
    if DCIODVFY is None:
        pytest.skip("dciodvfy not installed")
    _, _, paths = ct_study
    ds = pydicom.dcmread(paths[0])
    del ds.ImagePositionPatient
    errors = dciodvfy_errors(_save(ds, tmp_path / "broken.dcm"))
    assert any("ImagePositionPatient" in e for e in errors)
