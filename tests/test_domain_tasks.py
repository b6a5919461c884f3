"""Issue 14 item 5 per task: held-out phantoms (seeds no calibration used) get calls; every real
input in ``shared/data/real`` that a task accepts gets "no call"; the check is in the provenance,
findings.json, the report and the CLI summary.

``OSTEOVIEW_DOMAIN_PHANTOMS`` sets how many phantoms per task (default below); the calibration
script (``python -m app.analysis.domain_calibrate ... --n-verify N``) measures the same share on
more of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from app.analysis.domain_calibrate import phantom_features
from app.analysis.request import resolve_inputs
from app.analysis.runner import run_analysis
from app.analysis.tasks import get_adapter, get_spec
from app.engine.domain import NO_CALL_REASON, domain_check, load_domain_model
from app.findings.io import read_findings, write_result
from app.report import ReportInput, ReportRun, build_report
from app.study import load
from tests.domain_real import accepted

TASKS = ("femur-ao", "cervical-fracture", "spine-xray", "lumbar-mri", "calcaneus-fracture")
# Tasks whose domain.json ships with this change; the others' is checked when it is present.
REQUIRED = ("femur-ao", "cervical-fracture", "spine-xray")
# Far from the calibration's fitting, held-out and verification seeds (7.1, 7.2, 7.3 million).
TEST_SEED0 = 7_400_000
PHANTOMS = {"femur-ao": 24, "spine-xray": 24, "cervical-fracture": 6, "lumbar-mri": 12,
            "calcaneus-fracture": 24}  # fmt: skip
# Real inputs each task must find (so the "every accepted input" test cannot pass on none).
MUST_ACCEPT = {
    "femur-ao": "xray_nema_wg04/RG2_JLSL.dcm",
    "cervical-fracture": "totalsegmentator/example_ct.nii.gz",
    "spine-xray": "radoss_ddh_xray/331_DDH_1.dcm",
    "lumbar-mri": "pydicom_data/MR2_UNCR.dcm",
    "calcaneus-fracture": "radoss_ddh_xray/331_DDH_1.dcm",
}


def _model(task_id: str):
    """The task's shipped domain model; a task outside REQUIRED without one is skipped."""
    from app.analysis.tasks import adapter_error

    if task_id not in REQUIRED and adapter_error(task_id):
        pytest.skip(f"{task_id}: {adapter_error(task_id)}")
    model = load_domain_model(get_adapter(task_id))  # raises unless the pinned digest matches
    if model is None and task_id not in REQUIRED:
        pytest.skip(f"{task_id}: no weights/domain.json yet")
    assert model is not None, f"{task_id}: no weights/domain.json"
    return model


@pytest.mark.parametrize("task_id", TASKS)
def test_the_task_ships_a_pinned_calibrated_domain_model(task_id):
    model = _model(task_id)
    cal = model.calibration
    assert cal["task"] == task_id and cal["heldout_n"] >= 50
    assert model.threshold > cal["quantile_distance"] > 0
    # the calibration's own verification seeds (disjoint from fitting and threshold seeds)
    assert cal["verify_n"] >= 50 and cal["verify_share_called"] >= 0.99


@pytest.mark.parametrize("task_id", TASKS)
def test_held_out_phantoms_get_calls(task_id):
    n = int(os.environ.get("OSTEOVIEW_DOMAIN_PHANTOMS", PHANTOMS[task_id]))
    model = _model(task_id)
    distances = [
        max(model.distance(f) for f in feats.values())
        for _, feats in phantom_features(task_id, range(TEST_SEED0, TEST_SEED0 + n))
    ]
    called = sum(d <= model.threshold for d in distances)
    assert called / n >= 0.99, (
        f"{task_id}: {called}/{n} phantoms get calls; distances {sorted(distances)[-3:]}, "
        f"threshold {model.threshold:.2f}"
    )


@pytest.mark.parametrize("task_id", TASKS)
def test_every_real_input_the_task_accepts_gets_no_call(task_id, real_data):
    _model(task_id)
    adapter = get_adapter(task_id)
    inputs = accepted(real_data, task_id)
    names = [name for name, _ in inputs]
    assert any(name.startswith(MUST_ACCEPT[task_id]) for name in names), names
    verdicts = {name: domain_check(adapter, request) for name, request in inputs}
    called = {n: round(c.distance or 0, 2) for n, c in verdicts.items() if c.in_domain}
    assert not called, f"{task_id}: real inputs inside the phantom domain: {called}"
    for check in verdicts.values():
        assert check.threshold is not None and check.measure != "none"


@pytest.fixture(scope="module")
def real_hip_run(real_data):
    path = real_data / "xray_nema_wg04" / "RG2_JLSL.dcm"
    adapter = get_adapter("femur-ao")
    request = resolve_inputs(get_spec("femur-ao"), load(path), path, adapter)
    return run_analysis(adapter, request), request


def test_real_hip_is_no_call_with_the_check_in_the_provenance(real_hip_run, tmp_path):
    result, _ = real_hip_run
    assert result.no_call == NO_CALL_REASON
    assert result.summary.lower().startswith(NO_CALL_REASON)
    check = result.provenance.domain_check
    assert check["in_domain"] is False and check["distance"] > check["threshold"] > 0
    assert "domain check" in result.provenance.timings_s
    # the probabilities stay (for reference); no decision is taken on them
    assert all(0.0 <= f.probability <= 1.0 for f in result.findings)
    assert {result.call_of(f) for f in result.findings} == {"no call"}
    write_result(result, tmp_path)
    doc = json.loads((tmp_path / "findings.json").read_text())
    assert {f["call"] for f in doc["findings"]} == {"no call"}
    assert doc["provenance"]["domain_check"]["in_domain"] is False
    assert read_findings(tmp_path).result.no_call == NO_CALL_REASON


def test_demo_phantom_hip_gets_calls():
    from models.femur_ao.phantom import generate, write_study

    adapter = get_adapter("femur-ao")
    with tempfile.TemporaryDirectory() as tmp:
        path = write_study(generate(0, shape=(820, 1000), labels={"right": "B2"}), Path(tmp))
        result = run_analysis(adapter, resolve_inputs(adapter.spec, load(path), path, adapter))
    assert result.no_call == "" and result.provenance.domain_check["in_domain"] is True
    assert {result.call_of(f) for f in result.findings} <= {"positive", "negative"}


def test_report_greys_a_no_call_result(real_hip_run, tmp_path):
    from app.findings.study_ref import StudyRef

    result, request = real_hip_run
    series = request["radiograph"]
    ref = StudyRef.from_series(request.study, series, "RG2_JLSL.dcm")
    pdf = build_report(ReportInput(ref, [ReportRun(result, series)]), tmp_path / "r.pdf")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    flat = " ".join(text.split())
    assert "No call: this image is unlike the images the model was trained on" in flat
    assert "OUTSIDE the training domain" in flat
    assert "POSITIVE" not in text and text.count("no call") >= len(result.findings)


def test_cli_summary_says_no_call(real_data, tmp_path, capsys):
    from app.cli import main

    path = real_data / "xray_nema_wg04" / "RG2_JLSL.dcm"
    rc = main(["analyze", str(path), "--task", "femur-ao", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "OUTSIDE the training domain" in out and f"findings: {NO_CALL_REASON}" in out
    lines = [ln for ln in out.splitlines() if "(threshold" in ln]
    assert lines and all(ln.rstrip().endswith("no call") for ln in lines)
