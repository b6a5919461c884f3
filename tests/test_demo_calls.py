"""The bundled demo studies are what a new user analyses first: each must be inside its task's
input domain (a call, not "no call"), with its maps switched on as the task shows them. A demo
outside the domain once slipped through: the lumbar domain had been calibrated on one matrix
size only, and both lumbar demos (320 px of 0.84 mm) got "no call" (distance 10.0 against 7.5).
A result with no call keeps its overlays for reference but switched off."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.analysis.request import resolve_inputs
from app.analysis.runner import run_analysis
from app.analysis.tasks import get_adapter, get_spec
from app.study import load

DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo"
STUDIES = sorted(p for p in DEMO.glob("*/*") if p.is_dir())


@pytest.mark.parametrize("study", STUDIES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_demo_study_gets_a_call(study):
    task = study.parent.name
    adapter = get_adapter(task)
    request = resolve_inputs(get_spec(task), load(study), study, adapter)
    result = run_analysis(adapter, request)
    check = result.provenance.domain_check
    assert not result.no_call, f"{study.name}: {check}"
    assert check["in_domain"] and check["distance"] < check["threshold"]
    assert any(o.visible for o in result.overlays)


def test_a_result_with_no_call_switches_its_overlays_off():
    real = Path(__file__).resolve().parents[2] / "shared/data/real/xray_nema_wg04/RG2_JLSL.dcm"
    if not real.exists():
        pytest.skip("the shared real films are not here")
    adapter = get_adapter("femur-ao")
    request = resolve_inputs(get_spec("femur-ao"), load(real), real, adapter)
    result = run_analysis(adapter, request)
    assert result.no_call
    assert result.overlays and not any(o.visible for o in result.overlays)


def test_there_are_demo_studies_for_every_task():
    assert {p.parent.name for p in STUDIES} >= {
        "femur-ao", "cervical-fracture", "spine-xray", "lumbar-mri", "calcaneus-fracture",
    }  # fmt: skip
