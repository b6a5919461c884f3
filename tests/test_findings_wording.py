"""Decisions in words (issue 14 item 2): every task's findings, as its adapter builds them on a
demo study, read "right: no fracture", "C3: fracture", "L4-L5: disease"; a normal class's
positive call is never an abnormal one; a no-call result reads "no call". The PDF, the CLI and
the SR say the same."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pydicom
import pytest

from app.analysis.request import resolve_inputs
from app.analysis.runner import run_analysis
from app.analysis.tasks import get_adapter
from app.findings.dicom_sr import read_sr, write_sr
from app.findings.io import read_findings, write_result
from app.findings.types import AnalysisResult, Finding
from app.findings.wording import decide, decide_in
from app.study import load

DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo"


def _run(task: str, study: str) -> AnalysisResult:
    path = DEMO / task / study
    adapter = get_adapter(task)
    request = resolve_inputs(adapter.spec, load(path), path, adapter=adapter)
    return run_analysis(adapter, request)


@pytest.fixture(scope="module")
def femur_normal() -> AnalysisResult:
    return _run("femur-ao", "normal_pelvis")


@pytest.fixture(scope="module")
def femur_fracture() -> AnalysisResult:
    return _run("femur-ao", "neck_fracture_B2_right")


def _texts(result: AnalysisResult) -> dict[str, tuple[str, bool]]:
    out = {}
    for f in result.findings:
        d = decide(f)  # the words the findings carry, whatever the domain check said
        out[f"{f.side}:{f.label}" if f.side else f.label] = (d.text, d.abnormal)
    return out


def test_femur_normal_class_reads_no_fracture_and_is_not_abnormal(femur_normal):
    assert not femur_normal.no_call
    texts = _texts(femur_normal)
    for side in ("right", "left"):
        assert texts[f"{side}:normal"] == (f"{side}: no fracture", False)
        assert texts[f"{side}:fracture"] == (f"{side}: no fracture", False)
        assert texts[f"{side}:A"] == (f"{side}: no type A fracture", False)
        assert texts[f"{side}:B2"] == (f"{side}: no B2 fracture", False)
    assert not any(abnormal for _, abnormal in texts.values())


def test_femur_fracture_side_reads_fracture_type_and_subtype(femur_fracture):
    texts = _texts(femur_fracture)
    assert texts["right:fracture"] == ("right: fracture", True)
    assert texts["right:B"] == ("right: type B fracture", True)
    assert texts["right:B2"] == ("right: B2 fracture", True)
    # the type head's normal class, not called on the fractured side
    assert texts["right:normal"] == ("right: not normal", True)
    assert texts["left:fracture"] == ("left: no fracture", False)
    assert texts["left:normal"] == ("left: no fracture", False)


@pytest.mark.parametrize(
    ("task", "study", "pattern"),
    [
        ("cervical-fracture", "phantom_fracture_C2_C6", r"(C[1-7]|patient): (no )?fracture"),
        ("lumbar-mri", "02_degenerated_L4-S1", r"(L[1-5]|T12-L1|L[1-5]-L[1-5]|L5-S1): (no )?disease"),
        ("spine-xray", "02_damaged_L1_wedge", r"spine: (no )?damage"),
        ("calcaneus-fracture", "02_joint_depression", r"[A-Z][A-Za-z ]+: (present|absent)"),
    ],
)  # fmt: skip
def test_every_task_states_its_decisions_in_words(task, study, pattern):
    result = _run(task, study)
    assert result.findings
    for f in result.findings:
        d = decide(f)
        assert re.fullmatch(pattern, d.text), (task, f.label, d.text)
        # no normal class in these tasks: abnormal exactly when called; "no ..." when not
        assert d.abnormal == f.positive, (task, f.label)
        assert d.text.endswith(("absent",)) or (" no " in d.text) != f.positive, d.text
        # the result's own decision: the same words, or "no call" outside the training domain
        shown = decide_in(result, f)
        if result.no_call:
            assert shown.text.endswith(": no call") and shown.no_call and not shown.abnormal
        else:
            assert shown == d


def test_no_call_reads_no_call_for_every_finding(femur_normal):
    result = AnalysisResult(
        femur_normal.task_id,
        femur_normal.findings,
        [],
        femur_normal.provenance,
        no_call="this image is unlike the images the model was trained on",
    )
    for f in result.findings:
        d = decide_in(result, f)
        assert d.text == f"{f.side}: no call" and d.no_call and not d.abnormal


def test_generic_findings_without_a_term_read_present_or_absent():
    assert decide(Finding("A1", 0.9, side="right")).text == "right: A1 present"
    assert decide(Finding("damaged", 0.2)).text == "damaged: absent"
    # a class named "normal" is a normal class unless the adapter says otherwise
    assert decide(Finding("normal", 0.9)) == decide(Finding("normal", 0.9, normal_class=True))
    assert decide(Finding("normal", 0.9)).text == "normal" and not Finding("normal", 0.9).abnormal
    assert not Finding("Normal", 0.2, normal_class=False).normal_class


def test_findings_json_keeps_the_wording_fields(femur_normal, tmp_path):
    path = write_result(femur_normal, tmp_path)
    back = read_findings(path)
    normal = back.result.finding("normal", "right")
    assert normal.normal_class and normal.term == "fracture"
    assert decide(normal).text == "right: no fracture"
    import json

    doc = json.loads(path.read_text())
    row = next(f for f in doc["findings"] if f["label"] == "normal" and f["side"] == "right")
    assert row["decision"] == "right: no fracture" and row["abnormal"] is False
    # a findings.json written before the fields existed: "normal" is still a normal class
    for f in doc["findings"]:
        for key in ("term", "subject", "normal_class", "decision", "abnormal"):
            f.pop(key)
    path.write_text(json.dumps(doc))
    old = read_findings(path).result.finding("normal", "right")
    assert old.normal_class and not old.abnormal


def test_pdf_says_no_fracture_never_positive_for_a_normal_class(femur_normal, tmp_path):
    from app.findings.io import StudyRef
    from app.report import ReportInput, ReportRun, build_report

    path = DEMO / "femur-ao" / "normal_pelvis"
    loaded = load(path)
    series = loaded.all_series()[0]
    pdf = build_report(
        ReportInput(StudyRef.from_series(None, series), [ReportRun(femur_normal, series)]),
        tmp_path / "femur.pdf",
    )
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "POSITIVE" not in text and "positive" not in text.lower().split("explains")[0]
    row = next(line for line in text.splitlines() if re.match(r"\s*› normal\s+right", line))
    assert row.rstrip().endswith("right: no fracture"), row


def test_sr_says_the_fracture_is_absent_for_a_called_normal_class(femur_fracture, tmp_path):
    source = [pydicom.dcmread(DEMO / "femur-ao" / "neck_fracture_B2_right" / "image.dcm")]
    sr = write_sr(femur_fracture, source)
    sr.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    back = {f.identifier: f for f in read_sr(pydicom.dcmread(tmp_path / "sr.dcm"))}
    assert not back["left:normal"].present  # "normal" called on the left: no fracture there
    assert back["right:normal"].present  # not called on the fractured side
    assert back["right:fracture"].present and not back["left:fracture"].present
