"""A task with two image inputs in the real window (the two-input fake task, ``ap`` + ``lateral``
+ optional ``mask``): one view per input, each with only its own overlays (asserted on captured
pixels); a click on a finding centres the view of its input; "Use as" and "Load mask into slot"
fill slots; the task box lists only the tasks the open study can feed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.ui.capture import capture_window, save_png
from app.ui.findings_panel import FINDING_ROLE, NO_TASK
from app.ui.slot_actions import SERIES_ROLE
from tests import fake_pair_task
from tests.fake_pair_task import FakePairAdapter
from tests.gui.conftest import WAIT_MS, colour_mask, open_and_wait
from tests.test_analysis_contract import _pair_study

pytestmark = pytest.mark.gui
SHOTS = Path("/tmp/osteoview-shots")  # screenshots kept for a person to look at


@pytest.fixture()
def pair_dir(tmp_path, monkeypatch):
    fake_pair_task.register(monkeypatch)
    FakePairAdapter.stage_s = 0.0
    return _pair_study(tmp_path / "pair")


def _series(window, view: str):
    return next(s for s in window.load_result.all_series() if s.view_position == view)


def _analyse(qtbot, window) -> None:
    window.findings.task_combo.setCurrentText("fake-pair")
    window.findings.run_button.click()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.input_views.update_pending, timeout=WAIT_MS)
    window.input_views.update_now()


def _red_mask(rgb: np.ndarray) -> np.ndarray:
    """The lateral mask's red (255, 0, 0) at opacity 0.5 over grey, and its full-red outline;
    the AP heatmap's hot end (jet 1.0 = (128, 0, 0) over white) stays below these limits."""
    r, g, b = (rgb[..., c].astype(int) for c in range(3))
    return (r > 150) & (g < 90) & (b < 90)


def _heat_mask(rgb: np.ndarray) -> np.ndarray:
    """The AP heatmap's hot end (jet's dark red, half opaque) over the radiograph's bright
    square: pink, less red than the lateral mask's full red over the same square. The map's
    cold end, below the layer's threshold, is not drawn at all."""
    from scipy import ndimage

    r, g, b = (rgb[..., c].astype(int) for c in range(3))
    pink = (r - g > 40) & (r - b > 40) & (g >= 90) & (r < 235)
    return ndimage.binary_opening(pink, iterations=2)  # areas, not the edges of red strokes


def _shot(window, name: str) -> Path:
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / name
    save_png(capture_window(window), str(path))
    return path


def _finding_item(window, label: str):
    return next(
        it for it in window.findings.finding_items() if it.data(0, FINDING_ROLE).label == label
    )


def test_each_input_in_its_own_view_with_only_its_overlays(qtbot, window, pair_dir):
    open_and_wait(qtbot, window, pair_dir)
    assert "fake-pair" in window.findings.tasks and window.findings.run_button.isEnabled()
    _analyse(qtbot, window)
    assert window.findings.result is not None, window.findings.message.text()
    assert window.side_by_side and list(window.input_views.areas) == ["ap", "lateral"]
    ap_area, lat_area = window.input_views.areas["ap"], window.input_views.areas["lateral"]
    assert ap_area.series is _series(window, "AP") and lat_area.series is _series(window, "LL")
    _shot(window, "two_inputs.png")
    ap, lat = ap_area.views["native"].capture(), lat_area.views["native"].capture()
    ap = ap[:, : int(ap.shape[1] * 0.88)]  # left of the heatmap's colour bar (jet ends in red)
    assert _heat_mask(ap).sum() > 2000, "the AP heatmap is not on the AP view"
    assert _red_mask(ap).sum() == 0, "the lateral mask is drawn on the AP view"
    assert _red_mask(lat).sum() > 200, "the lateral mask is not on the lateral view"
    assert _heat_mask(lat).sum() == 0, "the AP heatmap is drawn on the lateral view"
    assert colour_mask(lat, (255, 255, 0), 30).sum() > 20  # the lateral box
    assert colour_mask(ap, (255, 255, 0), 30).sum() == 0
    assert ap_area.views["native"].scalar_bar.GetVisibility()
    assert not lat_area.views["native"].scalar_bar.GetVisibility()
    # the panel says which series filled each slot
    text = window.findings.inputs.text()
    assert "<b>ap</b>: DX spine AP" in text and "<b>lateral</b>: DX spine LL" in text
    assert "chosen automatically" in text
    # the report gets each input with its own overlays, and both arranged views
    from app.report.pdf import run_key_images
    from app.ui.report_dialog import collect_report_input

    inp = collect_report_input(window)
    (run,) = inp.runs
    assert list(run.inputs) == ["ap", "lateral"]
    captions = [k.caption for k in run_key_images(run)]
    assert captions[0].startswith("ap: ") and captions[-1] == (
        "lateral: Image with Lateral mask, Lateral box"
    )
    assert [c.split(",")[0] for c, _ in inp.views] == ["ap: DX spine AP", "lateral: DX spine LL"]

    # clicking the lateral box's finding centres the lateral view on the box
    view = lat_area.views["native"]
    view.zoom(4.0)
    view.pan_pixels(250, -180)  # the box is now far from the middle
    lat_area.update_now()
    box = next(o for o in window.findings.result.overlays if o.name == "Lateral box").boxes[0]
    window.findings.tree.itemClicked.emit(_finding_item(window, "lateral-box"), 0)
    lat_area.update_now()
    plane = lat_area.cross.planes["native"]
    centre = lat_area.series.image.index_to_world(
        np.array([(box.i0 + box.i1) / 2, (box.j0 + box.j1) / 2, 0.0])
    )
    row, col, _ = plane.to_plane(centre)
    assert np.allclose(view.camera_centre(), (col * plane.spacing[1], row * plane.spacing[0]))
    shot = view.capture()
    rows, cols = np.nonzero(colour_mask(shot, (255, 255, 0), 30))
    h, w = shot.shape[:2]
    assert rows.size > 100
    assert abs(rows.mean() - h / 2) < 0.05 * h and abs(cols.mean() - w / 2) < 0.05 * w
    _shot(window, "two_inputs_centred_on_lateral_box.png")
    # the AP landmark's finding centres the AP view, not the lateral
    before = view.camera_centre()
    window.findings.tree.itemClicked.emit(_finding_item(window, "ap-peak"), 0)
    assert view.camera_centre() == before
    mark = next(o for o in window.findings.result.overlays if o.name == "AP peak").landmarks[0]
    ap_plane = ap_area.cross.planes["native"]
    r, c, _ = ap_plane.to_plane(np.array(mark.position_lps))
    expected = (c * ap_plane.spacing[1], r * ap_plane.spacing[0])
    assert np.allclose(ap_area.views["native"].camera_centre(), expected)

    # another series restores the normal layout
    window.browser.setCurrentRow(1 if window.browser.currentRow() == 0 else 0)
    qtbot.waitUntil(lambda: not window.side_by_side, timeout=WAIT_MS)
    assert window.input_views.areas == {} and window.view_area.isVisible()


def test_use_as_and_a_mask_loaded_into_its_slot(qtbot, window, pair_dir, tmp_path):
    open_and_wait(qtbot, window, pair_dir)
    ap, lat = _series(window, "AP"), _series(window, "LL")
    window.findings.task_combo.setCurrentText("fake-pair")  # "Use as" lists this task's slots
    assert window._mask_target() == ("fake-pair", "mask")  # File > Load mask into slot...
    menu = window.slot_menu(ap)
    texts = [a.text() for a in menu.actions()]
    assert texts == [
        "ap: an AP radiograph",
        "lateral: a lateral radiograph",
        "mask: a mask on the lateral radiograph",
    ]
    # the two views swapped by hand: the runner checks what the user chose, and refuses it
    menu.actions()[1].trigger()
    window.slot_menu(lat).actions()[0].trigger()
    assert window.slot_overrides["fake-pair"] == {"lateral": ap, "ap": lat}
    texts = {window.browser.item(n).data(SERIES_ROLE).view_position: window.browser.item(n).text()
             for n in range(window.browser.count())}  # fmt: skip
    assert texts["AP"].endswith("as lateral (fake-pair)") and texts["LL"].endswith(
        "as ap (fake-pair)"
    )
    assert window.slot_menu(ap).actions()[1].isChecked()
    assert not window.slot_menu(ap).actions()[0].isChecked()
    _analyse(qtbot, window)
    message = window.findings.message.text()
    assert "needs an AP radiograph" in message and "LL view" in message
    window.slot_menu(ap).actions()[1].trigger()  # unchecked: automatic again
    window.slot_menu(lat).actions()[0].trigger()
    assert "fake-pair" not in window.slot_overrides

    # a mask of another size is refused with both sizes named
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(tmp_path / "small.png")
    window.load_mask_into_slot(str(tmp_path / "small.png"), "fake-pair", "mask")
    qtbot.waitUntil(lambda: "Mask not used" in window.findings.message.text(), timeout=WAIT_MS)
    assert "12x10 pixels" in window.findings.message.text()
    assert "60x80" in window.findings.message.text()
    # an unreadable file: a message naming it
    (tmp_path / "broken.png").write_bytes(b"not a png")
    window.load_mask_into_slot(str(tmp_path / "broken.png"), "fake-pair", "mask")
    qtbot.waitUntil(lambda: "broken.png" in window.findings.message.text(), timeout=WAIT_MS)
    assert "Mask not" in window.findings.message.text()

    # a mask of the lateral's size is used by the run and drawn on the lateral view only
    mask = np.zeros(lat.shape[1:], np.uint8)
    mask[50:70, 10:40] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    window.load_mask_into_slot(str(tmp_path / "mask.png"), "fake-pair", "mask")
    qtbot.waitUntil(lambda: "mask" in window.slot_overrides.get("fake-pair", {}), timeout=WAIT_MS)
    # shown at once as a layer on the lateral (drawn only where the lateral is on screen)
    shown = window.layers.by_name("mask.png (mask)")
    assert shown is not None and shown.series_uid == lat.series_uid
    assert int(shown.overlay.image.array.sum()) == 20 * 30
    assert window._on_shown_series(shown) == (window.series is lat)
    _analyse(qtbot, window)
    result = window.findings.result
    assert result is not None and result.extra["mask_used"] == "given"
    assert list(window.input_views.areas) == ["ap", "lateral"]  # the mask gets no view
    assert "<b>mask</b>" in window.findings.inputs.text()
    assert "assigned by you" in window.findings.inputs.text()
    lat_shot = window.input_views.areas["lateral"].views["native"].capture()
    rows, _ = np.nonzero(_red_mask(lat_shot))
    h = lat_shot.shape[0]
    assert rows.size > 500 and rows.mean() > 0.55 * h  # rows 50-70 of 80: the lower part
    _shot(window, "two_inputs_given_mask.png")


def test_the_task_box_lists_only_tasks_the_study_can_feed(qtbot, window, pair_dir, monkeypatch):
    from app.analysis import tasks

    monkeypatch.setattr(tasks, "available_tasks", lambda: ["fake-pair"])
    window._refresh_tasks()
    assert window.findings.task_combo.currentText() == "open a study"
    assert not window.findings.run_button.isEnabled()
    only_ap = pair_dir.parent / "only_ap"
    shutil.copytree(pair_dir / "AP", only_ap / "AP")
    open_and_wait(qtbot, window, only_ap)
    panel = window.findings
    assert panel.task_combo.currentText() == NO_TASK and panel.current_task() == ""
    assert not panel.run_button.isEnabled()
    assert "this study has only an AP" in panel.task_combo.toolTip()
    open_and_wait(qtbot, window, pair_dir)
    assert panel.tasks == ["fake-pair"] and panel.run_button.isEnabled()


def test_explain_a_finding_in_a_worker_with_cancel(qtbot, window, pair_dir):
    open_and_wait(qtbot, window, pair_dir)
    _analyse(qtbot, window)
    panel = window.findings
    assert panel.explain_button.isVisible() and panel.explain_method.currentText() == "occlusion"
    assert not panel.explain_button.isEnabled()  # no finding selected yet
    item = _finding_item(window, "damaged")
    panel.tree.setCurrentItem(item)
    panel.tree.itemClicked.emit(item, 0)
    assert panel.explain_button.isEnabled()
    ap_view = window.input_views.areas["ap"].views["native"]
    before = ap_view.capture()[:, : int(ap_view.width() * 0.88)]
    # slow stages: Cancel stops it at the next stage boundary
    FakePairAdapter.stage_s = 0.2
    panel.explain_button.click()
    qtbot.waitUntil(lambda: "occlusion" in panel.stage_label.text(), timeout=WAIT_MS)
    assert panel.cancel_button.isEnabled() and window.is_busy()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    assert "Explanation cancelled" in panel.message.text()
    assert window.layers.by_name("Occlusion damaged") is None
    FakePairAdapter.stage_s = 0.0
    panel.explain_button.click()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    layer = window.layers.by_name("Occlusion damaged")
    assert layer is not None and layer.visible and layer.slot == "ap"
    assert not window.layers.by_name("AP brightness").visible  # one map at a time
    window.input_views.update_now()
    _shot(window, "two_inputs_explained.png")
    after = ap_view.capture()[:, : int(ap_view.width() * 0.88)]
    # the occlusion map (coolwarm) replaced the brightness map (jet) on the AP view
    # (before: only the antialiased edges of the green "AP peak" caption over jet's blue)
    assert _coolwarm_cold(before).sum() < 300 and _coolwarm_cold(after).sum() > 50_000
    lat = window.input_views.areas["lateral"].views["native"].capture()
    assert _coolwarm_cold(lat).sum() == 0  # the AP's explanation is not on the lateral


def _coolwarm_cold(rgb: np.ndarray) -> np.ndarray:
    """coolwarm's blue end (59, 76, 191) over grey: blue, with more green than red; jet's dark
    blue (0, 0, 128) over grey has as much red as green."""
    r, g, b = (rgb[..., c].astype(int) for c in range(3))
    return (b - r > 40) & (g - r > 5)
