"""The spine demo studies say what their names say with the shipped classifier (retrained with
mild wedges, MODEL_CARD.md): ``02_damaged_L1_wedge`` (anterior/posterior 0.77, a mild wedge) is
called damaged and ``01_normal`` normal. With the classifier before the retraining the damaged
demo read P(damaged) 0.23 and this test failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.analysis.request import resolve_inputs
from app.analysis.runner import run_analysis
from app.analysis.tasks import get_adapter, get_spec
from app.study import load

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo" / "spine-xray"


@pytest.mark.parametrize(("case", "damaged"), [("01_normal", False), ("02_damaged_L1_wedge", True)])
def test_the_demo_is_called_as_its_name_says(case, damaged):
    adapter = get_adapter("spine-xray")
    study = DEMO / case
    result = run_analysis(
        adapter, resolve_inputs(get_spec("spine-xray"), load(study), study, adapter)
    )
    assert not result.no_call
    top = [f for f in result.findings if f.label == "damaged"]
    assert top, [f.label for f in result.findings]
    assert top[0].positive == damaged, f"{case}: P(damaged) {top[0].probability:.3f}"
