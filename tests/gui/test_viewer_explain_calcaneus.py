"""Calcaneus SHAP in the viewer: after a run on the joint-depression demo the Explain combo and the
finding's context menu offer both "cam" and "shap" (from the adapter's explain_methods), and
"Explain" by SHAP puts a coolwarm layer on the radiograph. The screenshot is kept for a person to
look at (/tmp/osteoview-shots/calcaneus_shap_explained.png)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.ui.capture import capture_window, save_png
from app.ui.findings_panel import FINDING_ROLE
from tests.gui.conftest import WAIT_MS, open_and_wait

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "resources/demo/calcaneus-fracture/02_joint_depression"
SHOTS = Path("/tmp/osteoview-shots")
LABEL = "Collapse Fracture Block"


def test_shap_is_offered_and_drawn(qtbot, window):
    from app.engine.shap_maps import warm_up

    warm_up()  # what the viewer does in the background at start-up
    open_and_wait(qtbot, window, DEMO)
    panel = window.findings
    panel.task_combo.setCurrentText("calcaneus-fracture")
    panel.run_button.click()
    qtbot.waitUntil(lambda: window.result is not None and not window.is_busy(), timeout=WAIT_MS)
    methods = [panel.explain_method.itemText(n) for n in range(panel.explain_method.count())]
    assert methods == ["cam", "shap"]
    item = next(
        it for it in window.findings.finding_items() if it.data(0, FINDING_ROLE).label == LABEL
    )
    panel.tree.setCurrentItem(item)
    panel.tree.itemClicked.emit(item, 0)
    menu = panel.explain_menu(item.data(0, FINDING_ROLE))
    assert [a.data() for a in menu.actions()] == ["cam", "shap"]
    menu.deleteLater()
    panel.explain_method.setCurrentText("shap")
    assert panel.explain_button.isEnabled()
    panel.explain_button.click()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    layer = next(la for la in window.layers if la.name.startswith(f"SHAP {LABEL}"))
    assert layer.visible and layer.kind == "heatmap", layer
    # one map at a time: the run's attention layers are switched off for the new one
    assert [la.name for la in window.layers.of_kind("heatmap") if la.visible] == [layer.name]
    window.view_area.update_now()
    SHOTS.mkdir(exist_ok=True)
    rgb = capture_window(window)
    save_png(rgb, str(SHOTS / "calcaneus_shap_explained.png"))
    # coolwarm's warm end (positive SHAP) shows on screen
    warm = (rgb[..., 0].astype(int) > 150) & (rgb[..., 2].astype(int) < 120)
    warm &= rgb[..., 0].astype(int) - rgb[..., 1].astype(int) > 60
    assert warm.sum() > 200, np.count_nonzero(warm)
