"""The findings panel greys a no-call result (issue 14 item 5): the probability bars are drawn in
grey instead of red/blue, the call column says "no call" in grey, and the reason is shown.
Asserted on the rendered pixels of the bars and on the items' text and brushes."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine.domain import NO_CALL_REASON
from app.findings.types import AnalysisResult, Finding, Provenance

pytest.importorskip("pytestqt")


def _result(no_call: str) -> AnalysisResult:
    prov = Provenance("femur-ao", "femur-ao-demo", "0.1.0", {}, "paper", "synthetic phantoms")
    prov.domain_check = {"measure": "m", "distance": 1386.6, "threshold": 10.0,
                         "in_domain": not no_call}  # fmt: skip
    findings = [Finding("fracture", 0.92, side="left", term="fracture"),
                Finding("normal", 0.3, side="left", term="fracture")]  # fmt: skip
    summary = f"{NO_CALL_REASON} (model output for reference only)" if no_call else "left: fracture"
    return AnalysisResult("femur-ao", findings, [], prov, summary, {}, no_call)


def _bar_fill_rgb(panel, label: str) -> np.ndarray:
    """The colour inside the filled part of a finding's bar, right of its printed value."""
    from app.ui.findings_panel import FINDING_ROLE

    item = next(i for i in panel.finding_items() if i.data(0, FINDING_ROLE).label == label)
    bar = panel.tree.itemWidget(item, 1)
    img = bar.grab().toImage()
    f = item.data(0, FINDING_ROLE)
    # near the fill's top edge, clear of the printed value (drawn centred in the bar's height)
    x = max(3, int(bar.width() * f.probability * 0.6))
    c = img.pixelColor(x, 3)
    return np.array([c.red(), c.green(), c.blue()])


@pytest.fixture()
def panel(qtbot):
    from app.ui.findings_panel import FindingsPanel

    w = FindingsPanel()
    qtbot.addWidget(w)
    w.resize(420, 600)
    w.show()
    qtbot.waitExposed(w)
    return w


def _is_grey(rgb: np.ndarray) -> bool:
    return int(rgb.max()) - int(rgb.min()) <= 12 and 90 <= rgb.mean() <= 200


def test_panel_greys_probabilities_of_a_no_call_result(panel, qtbot):
    panel.show_result(_result(""))
    qtbot.wait(50)
    called = _bar_fill_rgb(panel, "fracture")
    assert not _is_grey(called) and called[0] > called[2] + 60  # a positive call: red
    assert [i.text(2) for i in panel.finding_items()] == ["fracture", "not normal"]

    panel.show_result(_result(NO_CALL_REASON))
    qtbot.wait(50)
    for label in ("fracture", "normal"):
        assert _is_grey(_bar_fill_rgb(panel, label)), label
    items = panel.finding_items()
    assert [i.text(2) for i in items] == ["no call", "no call"]
    fg = items[0].foreground(2).color()
    assert abs(fg.red() - fg.blue()) <= 12 and fg.red() >= 100  # the call text is grey too
    assert NO_CALL_REASON in panel.summary.text().lower()
    assert panel.summary.isVisible()
