"""``analyze dicomweb:... --send`` end to end against the real Orthanc: the study is pulled like a
path, analysed, and SEG, SR and Encapsulated PDF come back from the server referencing the source
study with the values findings.json holds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass

from app.cli import main
from app.findings.dicom_pdf import read_pdf
from app.findings.dicom_seg import read_seg
from app.findings.dicom_sr import read_sr
from app.findings.io import read_result
from app.findings.types import LabelMapOverlay

DEMO = Path(__file__).resolve().parents[2] / "resources/demo/cervical-fracture/phantom_no_fracture"


@pytest.fixture()
def cervical_on_pacs(orthanc, tmp_path, monkeypatch):
    if not DEMO.is_dir():
        pytest.skip(f"{DEMO} is missing")
    orthanc.clear()
    files = sorted(DEMO.glob("*.dcm"))
    orthanc.upload(files)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("OSTEOVIEW_PACS_PASSWORD", orthanc.password)
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    return orthanc, str(first.StudyInstanceUID), str(first.SeriesInstanceUID)


def _instances_by_modality(server, study_uid: str) -> dict[str, list[pydicom.Dataset]]:
    """Read the study back with a plain dicomweb-client (not the code under test)."""
    web = DICOMwebClient(
        server.dicomweb, session=create_session_from_user_pass(server.user, server.password)
    )
    out: dict[str, list[pydicom.Dataset]] = {}
    for series in web.search_for_series(study_uid):
        modality = series["00080060"]["Value"][0]
        if modality in ("SEG", "SR", "DOC"):
            uid = series["0020000E"]["Value"][0]
            out[modality] = web.retrieve_series(
                study_uid, uid, media_types=(("application/dicom", "*"),)
            )
    return out


def test_analyze_from_pacs_and_send_results_back(cervical_on_pacs, tmp_path, capsys) -> None:
    server, study_uid, series_uid = cervical_on_pacs
    out = tmp_path / "out"
    source = f"dicomweb:{server.dicomweb}/studies/{study_uid}"
    code = main(["analyze", source, "--task", "cervical-fracture", "--out", str(out),
                 "--user", server.user, "--report", "--send"])  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"stored 1 SEG, 1 SR, 1 Encapsulated PDF in study {study_uid}" in printed.out
    back = _instances_by_modality(server, study_uid)
    assert set(back) == {"SEG", "SR", "DOC"}
    (seg,), (sr,), (pdf,) = back["SEG"], back["SR"], back["DOC"]
    first = pydicom.dcmread(sorted(DEMO.glob("*.dcm"))[0], stop_before_pixels=True)
    for ds in (seg, sr, pdf):
        assert ds.StudyInstanceUID == study_uid and ds.PatientID == first.PatientID
    # SEG: the label map of findings.json, on the source slices at their world positions
    source = [pydicom.dcmread(p) for p in sorted(DEMO.glob("*.dcm"))]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series_uid
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "AUTOMATIC"
    labels = read_seg(seg, source)
    result = read_result(out / "findings.json")
    (overlay,) = [o for o in result.overlays if isinstance(o, LabelMapOverlay)]
    vol = overlay.image
    for k_src, uid in enumerate(labels.source_uids):
        ds = next(d for d in source if d.SOPInstanceUID == uid)
        i, j, k = vol.world_to_index(np.array([float(v) for v in ds.ImagePositionPatient]))
        assert abs(i) < 1e-3 and abs(j) < 1e-3 and abs(k - round(k)) < 1e-3
        assert (labels.labels[k_src] == vol.array[int(round(k))]).all()
    assert {v: s.name for v, s in labels.segments.items()} == {
        v: name for v, (name, _) in overlay.labels.items() if (vol.array == v).any()
    }
    # SR: every finding with its probability, threshold and call, in the source study
    doc = json.loads((out / "findings.json").read_text())
    expected = {f["label"]: f for f in doc["findings"]}
    got = {f.identifier: f for f in read_sr(sr)}
    assert set(got) == set(expected)
    for label, f in expected.items():
        assert got[label].probability == pytest.approx(f["probability"], abs=1e-6)
        assert got[label].threshold == pytest.approx(f["threshold"])
        assert got[label].present == (f["call"] == "positive")
    assert got["C1"].segment is not None  # linked to its SEG segment
    evidence = {r.ReferencedSOPInstanceUID for st in sr.CurrentRequestedProcedureEvidenceSequence
                for se in st.ReferencedSeriesSequence for r in se.ReferencedSOPSequence}  # fmt: skip
    assert seg.SOPInstanceUID in evidence and source[0].SOPInstanceUID in evidence
    # Encapsulated PDF: the report, byte for byte
    assert read_pdf(pdf) == (out / "report.pdf").read_bytes()
    assert pdf.SourceInstanceSequence[0].ReferencedSOPInstanceUID in {
        d.SOPInstanceUID for d in source
    }


def test_send_without_a_server_or_with_anonymise_fails_before_any_work(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code = main(["analyze", str(DEMO), "--task", "cervical-fracture", "--out", str(out), "--send"])
    assert code == 2 and "--send needs a server" in capsys.readouterr().err
    code = main(["analyze", str(DEMO), "--task", "cervical-fracture", "--out", str(out),
                 "--send", "http://127.0.0.1:9/dicom-web", "--anonymise"])  # fmt: skip
    assert code == 2 and "not with --anonymise" in capsys.readouterr().err
    assert not out.exists()
