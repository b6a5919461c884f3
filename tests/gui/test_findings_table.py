"""The findings table (issue 14 items 2 and 3): decisions in words with only abnormal findings in
colour, provenance folded under one click, the table growing with the panel, sorting by a
column title click, and the abnormal-only filter. Driven with real clicks; bars read as pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtCore import Qt

from app.findings.types import AnalysisResult, Finding, Provenance
from app.findings.wording import decide

pytest.importorskip("pytestqt")


def _femur_like() -> AnalysisResult:
    """Findings shaped as the femur adapter builds them: a fractured right side, a normal left."""
    prov = Provenance("femur-ao", "femur-ao-demo", "0.1.0", {"w.onnx": "ab" * 32}, "a paper",
                      "synthetic phantoms", timings_s={"infer": 0.5})  # fmt: skip
    findings = []
    for side, p_frac, p_normal, p_b, p_b2 in (("right", 0.97, 0.02, 0.9, 0.8),
                                              ("left", 0.01, 0.99, 0.004, 0.001)):  # fmt: skip
        roi = f"{side}-roi"
        findings += [
            Finding("fracture", p_frac, 0.5, "fracture", "", side, roi, "fracture"),
            Finding("normal", p_normal, 0.5, "type", "fracture", side, roi, "fracture"),
            Finding("A", 0.08, 0.5, "type", "fracture", side, roi, "type A fracture"),
            Finding("B", p_b, 0.5, "type", "fracture", side, roi, "type B fracture"),
            Finding("B1", 0.05, 0.5, "subtype", "B", side, roi, "B1 fracture"),
            Finding("B2", p_b2, 0.5, "subtype", "B", side, roi, "B2 fracture"),
        ]
    return AnalysisResult("femur-ao", findings, [], prov, "right: fracture; left: no fracture")


@pytest.fixture()
def panel(qtbot):
    from app.ui.findings_panel import FindingsPanel

    w = FindingsPanel()
    qtbot.addWidget(w)
    w.resize(460, 520)
    w.show()
    qtbot.waitExposed(w)
    w.show_result(_femur_like())
    qtbot.wait(50)
    return w


def _rows(panel) -> list[tuple[str, str, str]]:
    from app.ui.findings_tree import FINDING_ROLE

    out = []
    for item in panel.finding_items():
        f = item.data(0, FINDING_ROLE)
        hidden, it = False, item
        while it is not None:
            hidden |= it.isHidden()
            it = it.parent()
        if not hidden:
            out.append((f.side, f.label, item.text(2)))
    return out


def _bar_rgb(panel, side: str, label: str) -> np.ndarray:
    from app.ui.findings_tree import FINDING_ROLE

    item = next(
        i
        for i in panel.finding_items()
        if (i.data(0, FINDING_ROLE).side, i.data(0, FINDING_ROLE).label) == (side, label)
    )
    bar = panel.tree.itemWidget(item, 1)
    img = bar.grab().toImage()
    x = max(3, int(bar.width() * item.data(0, FINDING_ROLE).probability * 0.6))
    c = img.pixelColor(x, 3)  # near the fill's top edge, clear of the printed value
    return np.array([c.red(), c.green(), c.blue()])


def test_decisions_in_words_and_only_abnormal_in_red(panel):
    rows = {(s, label): text for s, label, text in _rows(panel)}
    assert rows[("left", "normal")] == "no fracture"
    assert rows[("left", "fracture")] == "no fracture"
    assert rows[("right", "fracture")] == "fracture"
    assert rows[("right", "B2")] == "B2 fracture"
    assert all("positive" not in t.lower() for t in rows.values())
    normal = _bar_rgb(panel, "left", "normal")  # p = 0.99 of the normal class: not red
    assert normal[2] > normal[0] + 60
    fracture = _bar_rgb(panel, "right", "fracture")
    assert fracture[0] > fracture[2] + 60
    # the decision's text colour: red for the abnormal one only
    from app.ui.findings_tree import FINDING_ROLE

    for item in panel.finding_items():
        f = item.data(0, FINDING_ROLE)
        red = item.foreground(2).color().red() > 180 and item.foreground(2).style() != Qt.NoBrush
        assert red == decide(f).abnormal, (f.side, f.label)


def test_provenance_is_folded_and_opens_with_one_click(panel, qtbot):
    assert not panel.provenance.isVisible()
    assert "femur-ao-demo" in panel.provenance.text()
    assert panel.disclaimer.isVisible()  # the disclaimer stays in plain sight
    tree_before = panel.tree.height()
    qtbot.mouseClick(panel.provenance_toggle, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(panel.provenance.isVisible, timeout=2000)
    qtbot.wait(50)
    assert panel.tree.height() < tree_before  # the provenance takes its room from the table
    qtbot.mouseClick(panel.provenance_toggle, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.provenance.isVisible(), timeout=2000)


def test_table_grows_with_the_panel(panel, qtbot):
    small = panel.tree.height()
    panel.resize(460, 900)
    qtbot.waitUntil(lambda: panel.height() >= 880, timeout=2000)
    qtbot.wait(50)
    assert panel.tree.height() - small >= 0.8 * (900 - 520)


def test_sort_by_probability_with_a_title_click(panel, qtbot):
    tree = panel.tree
    header = tree.header()
    x = header.sectionViewportPosition(1) + header.sectionSize(1) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QtCore.QPoint(x, 5))
    qtbot.wait(50)
    assert header.isSortIndicatorShown() and header.sortIndicatorSection() == 1

    def siblings(parent) -> list[float]:
        from app.ui.findings_tree import FINDING_ROLE

        return [
            parent.child(n).data(0, FINDING_ROLE).probability for n in range(parent.childCount())
        ]

    # under each finding its children run from the most to the least probable
    right_side = next(
        tree.topLevelItem(n) for n in range(tree.topLevelItemCount())
        if tree.topLevelItem(n).text(0).startswith("Right")
    )  # fmt: skip
    fracture = right_side.child(0)
    probs = siblings(fracture)
    assert len(probs) == 3 and probs == sorted(probs, reverse=True)
    assert all(tree.itemWidget(i, 1) is not None for i in panel.finding_items())  # bars kept
    # second click: reversed; third: the result's own order again
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QtCore.QPoint(x, 5))
    qtbot.wait(50)
    fracture = next(
        tree.topLevelItem(n) for n in range(tree.topLevelItemCount())
        if tree.topLevelItem(n).text(0).startswith("Right")
    ).child(0)  # fmt: skip
    assert siblings(fracture) == sorted(probs)
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QtCore.QPoint(x, 5))
    qtbot.wait(50)
    assert not header.isSortIndicatorShown()
    assert [label for s, label, _ in _rows(panel) if s == "right"] == [
        "fracture", "normal", "A", "B", "B1", "B2",
    ]  # fmt: skip


def test_abnormal_only_filter(panel, qtbot):
    every = _rows(panel)
    box = panel.abnormal_only
    on_box = QtCore.QPoint(8, box.height() // 2)  # the check box's indicator
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=on_box)
    assert box.isChecked()
    shown = _rows(panel)
    result = panel.result
    abnormal = {(f.side, f.label) for f in result.findings if decide(f).abnormal}
    assert abnormal == {("right", "fracture"), ("right", "normal"), ("right", "B"), ("right", "B2")}
    assert {(s, label) for s, label, _ in shown} == abnormal
    assert len(shown) < len(every)
    assert not [s for s, _, _ in shown if s == "left"]
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=on_box)
    assert _rows(panel) == every
