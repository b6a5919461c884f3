"""Calcaneus in the viewer: analyse a lateral film (the U-Net predicts the mask), paint on that
mask layer in the mask editor, re-run the task on the edited mask. The second run must read the
edited mask (the classifier's input), say so, and the before/after table must show both runs'
probabilities. Real adapter and shipped weights (a run takes well under a second)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.findings.types import LabelMapOverlay
from models.calcaneus_msrt.adapter import LABELS
from tests.gui.conftest import WAIT_MS, open_and_wait, settle
from tests.gui.test_editor_paint import SHOTS, drag

pytestmark = pytest.mark.gui
DEMO = (
    Path(__file__).resolve().parents[2]
    / "resources"
    / "demo"
    / "calcaneus-fracture"
    / "02_joint_depression"
)


def _mask_overlay(result) -> LabelMapOverlay:
    return next(o for o in result.overlays if isinstance(o, LabelMapOverlay))


def _analyse_then_paint(qtbot, window, ui):
    """Analyse the demo (the U-Net predicts the mask), start the editor on the predicted mask
    layer and paint a broad stroke; returns (the first result, its predicted mask as it was,
    the painted mask). The editor paints into the layer's array: the copy is taken first."""
    open_and_wait(qtbot, window, DEMO)
    window.findings.task_combo.setCurrentText("calcaneus-fracture")
    window.findings.run_button.click()
    qtbot.waitUntil(lambda: window.result is not None and not window.is_busy(),
                    timeout=WAIT_MS)  # fmt: skip
    before = window.result
    assert before.extra["mask_used"] == "predicted"
    predicted = np.asarray(_mask_overlay(before).image.array) > 0
    layer = window.layers.by_name("Fracture mask (predicted)")
    assert layer is not None
    ed = ui.start(layer)
    assert ed is not None and ui.layer is layer
    view = window.view_area.views["native"]
    settle(qtbot, window)
    ed.set_radius(ed.voxel_mm * 25)
    w, h = view.width(), view.height()
    drag(view, (w * 0.3, h * 0.35), (w * 0.7, h * 0.65))
    return before, predicted, ed.data.copy() > 0


def test_edit_the_predicted_mask_and_rerun_uses_it(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setenv("OSTEOVIEW_WORKSPACE_DIR", str(tmp_path / "ws"))
    ui = window.mask_editor
    try:
        before, predicted, painted = _analyse_then_paint(qtbot, window, ui)
        assert painted.sum() > predicted.sum() + 1000  # the stroke added to the mask
        assert ui.files.rerun()
        qtbot.waitUntil(lambda: ui.files.compare_table is not None
                        and ui.files.compare_table.rowCount() > 0, timeout=WAIT_MS)  # fmt: skip
        qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
        after = window.result
        assert after is not before
        assert after.extra["mask_used"] == "edited"
        # The classifier read the edited mask, pixel for pixel, and it is shown as the layer.
        used = np.asarray(_mask_overlay(after).image.array) > 0
        assert np.array_equal(used, painted)
        assert "edited" in _mask_overlay(after).name
        p0 = {f.label: f.probability for f in before.findings}
        p1 = {f.label: f.probability for f in after.findings}
        assert max(abs(p1[lab] - p0[lab]) for lab in LABELS) > 1e-3  # the mask is an input
        table = ui.files.compare_table
        rows = {table.item(r, 0).text(): (table.item(r, 1).text(), table.item(r, 2).text())
                for r in range(table.rowCount())}  # fmt: skip
        for lab in LABELS:
            assert rows[lab] == (f"{p0[lab]:.3f}", f"{p1[lab]:.3f}")
        assert table.parentWidget().isVisible()
        SHOTS.mkdir(exist_ok=True)
        from app.ui.capture import capture_window, save_png

        save_png(capture_window(window), str(SHOTS / "calcaneus_rerun.png"))
    finally:
        ui.close()


def test_analyse_while_editing_the_mask_reads_the_edited_mask(qtbot, window, tmp_path, monkeypatch):
    """The habit the issue names: edit the mask layer, press Analyse again."""
    monkeypatch.setenv("OSTEOVIEW_WORKSPACE_DIR", str(tmp_path / "ws"))
    ui = window.mask_editor
    try:
        before, _, painted = _analyse_then_paint(qtbot, window, ui)
        window.findings.run_button.click()  # Analyse, not the Mask menu's re-run
        qtbot.waitUntil(lambda: window.result is not before and not window.is_busy(),
                        timeout=WAIT_MS)  # fmt: skip
        # the before/after table is filled by the result's second receiver, one event later
        qtbot.waitUntil(lambda: ui.files.compare_table is not None
                        and ui.files.compare_table.rowCount() > 0, timeout=WAIT_MS)  # fmt: skip
        after = window.result
        assert after.extra["mask_used"] == "edited"
        assert np.array_equal(np.asarray(_mask_overlay(after).image.array) > 0, painted)
        # the inputs line names the edit once, and no longer calls the mask predicted
        from app.ui.findings_panel import inputs_text

        line = inputs_text(after.provenance.inputs)
        assert line.count("edited") == 1 and "predicted" not in line, line
    finally:
        ui.close()
