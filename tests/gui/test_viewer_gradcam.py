"""Grad-CAM in the viewer. Spine demo study (two inputs): a finding's context menu offers
"Explain by CAM" beside SHAP, the maps land as heatmap layers on each view's radiograph (asserted
on captured pixels) and are toggled off and on like any layer. Cervical demo study: the Explain
button's "cam" puts C2's 3-D map on the CT's axial, sagittal and coronal views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.ui.capture import capture_window, save_png
from app.ui.findings_panel import FINDING_ROLE
from tests.gui.conftest import WAIT_MS, open_and_wait

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[2]
STUDY = REPO / "resources/demo/spine-xray/02_damaged_L1_wedge"
SHOTS = Path("/tmp/osteoview-shots")  # screenshots kept for a person to look at


def _warm(window) -> int:
    """Pixels of jet's warm half (red to yellow) on both views, left of the colour bars."""
    window.input_views.update_now()
    total = 0
    for area in window.input_views.areas.values():
        rgb = area.views["native"].capture()
        rgb = rgb[:, : int(rgb.shape[1] * 0.85)].astype(int)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        total += int(((r > 150) & (r - b > 80) & (g < r)).sum())
    return total


def test_context_menu_explains_by_cam_as_toggled_layers(qtbot, window):
    open_and_wait(qtbot, window, STUDY)
    panel = window.findings
    panel.task_combo.setCurrentText("spine-xray")
    panel.run_button.click()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    assert panel.result is not None, panel.message.text()
    item = next(it for it in panel.finding_items() if it.data(0, FINDING_ROLE).label == "damaged")
    panel.tree.setCurrentItem(item)
    panel.tree.itemClicked.emit(item, 0)
    menu = panel.explain_menu(item.data(0, FINDING_ROLE))
    assert menu is not None
    by = {a.data(): a for a in menu.actions()}
    assert set(by) == {"shap", "cam"} and by["cam"].isEnabled()
    assert by["cam"].text() == "Explain by CAM (class activation map)"
    for layer in list(window.layers):  # the film alone, so the map's colours are its own
        window.layers.set_visible(layer.id, False)
    before = _warm(window)
    by["cam"].trigger()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    cams = [la for la in window.layers if la.name.startswith("Grad-CAM damaged")]
    assert sorted(la.name for la in cams) == ["Grad-CAM damaged (AP)", "Grad-CAM damaged (LAT)"]
    assert all(la.visible and la.kind == "heatmap" for la in cams)
    shown = _warm(window)
    SHOTS.mkdir(exist_ok=True)
    save_png(capture_window(window), str(SHOTS / "spine_gradcam_explained.png"))
    print(f"\nwarm pixels: {before} before, {shown} with the Grad-CAM layers")
    assert shown > before + 500
    for la in cams:  # toggled off: the film as before; on again: the map back
        window.layers.set_visible(la.id, False)
    assert _warm(window) <= before + 50
    for la in cams:
        window.layers.set_visible(la.id, True)
    assert _warm(window) == pytest.approx(shown, rel=0.05)
    assert "explained" in panel.stage_label.text()
    assert np.isfinite(shown)


CERVICAL = REPO / "resources/demo/cervical-fracture/phantom_fracture_C2_C6"


def test_cervical_cam_from_the_explain_button_lands_on_the_ct(qtbot, window):
    """The 3-D map of a vertebra (its stage-2 crops on the study's slices) on the CT views."""
    open_and_wait(qtbot, window, CERVICAL)
    panel = window.findings
    panel.task_combo.setCurrentText("cervical-fracture")
    panel.run_button.click()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    assert panel.result is not None, panel.message.text()
    item = next(it for it in panel.finding_items() if it.data(0, FINDING_ROLE).label == "C2")
    panel.tree.setCurrentItem(item)
    panel.tree.itemClicked.emit(item, 0)  # centres the views on C2
    panel.explain_method.setCurrentText("cam")
    assert panel.explain_method.currentText() == "cam" and panel.explain_button.isEnabled()
    for layer in list(window.layers):
        window.layers.set_visible(layer.id, False)
    panel.explain_button.click()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    [layer] = [la for la in window.layers if la.name == "Grad-CAM C2"]
    assert layer.visible and layer.kind == "heatmap"
    # the crosshair to the map's peak, so every view cuts through it
    grid = layer.overlay.image
    k, j, i = np.unravel_index(np.argmax(grid.array), grid.shape)
    window.view_area.centre_on(grid.index_to_world(np.array([i, j, k], float)))
    shown = _view_pixels(window)
    SHOTS.mkdir(exist_ok=True)
    save_png(capture_window(window), str(SHOTS / "cervical_gradcam_explained.png"))
    window.layers.set_visible(layer.id, False)
    hidden = _view_pixels(window)
    # pixels the layer turns warm (jet's red to yellow half): the orientation letters, yellow
    # too, are in both captures and so do not count
    changed = 0
    for a, b in zip(shown, hidden, strict=True):
        r, g, bl = a[..., 0], a[..., 1], a[..., 2]
        warm = (r > 150) & (r - bl > 80) & (g < r)
        changed += int((warm & (np.abs(a - b).sum(-1) > 60)).sum())
    print(f"\npixels the Grad-CAM C2 layer turns warm in the CT views: {changed}")
    assert changed > 100


def _view_pixels(window) -> list[np.ndarray]:
    """The single-series views (axial, sagittal, coronal), colour bars excluded."""
    window.view_area.update_now()
    out = []
    for view in window.view_area.views.values():
        rgb = view.capture()
        out.append(rgb[:, : int(rgb.shape[1] * 0.85)].astype(int))
    return out
