"""Analysis in the viewer: worker thread with progress and Cancel, findings panel, result overlays
as layers, click-to-centre, class maps, rejected input, closing while busy, event-loop stalls."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore

from app.findings.types import DEMO_DISCLAIMER
from app.ui.findings_panel import FINDING_ROLE, NO_TASK
from tests.gui.conftest import WAIT_MS, colour_mask, open_and_wait, settle
from tests.gui.viewer_fakes import (
    FakeImageAdapter,
    FakeVolumeAdapter,
    RejectingAdapter,
    SlowAdapter,
)

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[2]


def _run(qtbot, window, adapter, task="fake"):
    window.run_task(task, adapter=adapter)
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    settle(qtbot, window)


class Heartbeat:
    """A 10 ms QTimer; records the longest gap between two ticks (an event-loop stall)."""

    def __init__(self) -> None:
        self.timer = QtCore.QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last = None
        self.longest = 0.0
        self.longest_at = 0.0
        self.ticks = 0

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None and now - self.last > self.longest:
            self.longest = now - self.last
            self.longest_at = now
        self.last = now
        self.ticks += 1

    def start(self) -> None:
        self.last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()


def test_volume_result_panel_layers_click_centres(qtbot, window, ct_dir):
    open_and_wait(qtbot, window, ct_dir)
    _run(qtbot, window, FakeVolumeAdapter())
    panel = window.findings
    assert panel.result is not None and "p=0.80" in panel.summary.text()
    assert DEMO_DISCLAIMER in panel.disclaimer.text() and panel.disclaimer.isVisible()
    assert "viewer-test-fake" in panel.provenance.text()
    items = {it.data(0, FINDING_ROLE).label: it for it in panel.finding_items()}
    assert set(items) == {"fracture", "V1", "V2", "V3"}
    assert items["V2"].parent() is items["fracture"]  # hierarchy: vertebrae under the patient
    # overlays became layers, the label map in its colours in every view
    names = [la.name for la in window.layers]
    assert "Vertebrae (fake)" in names and "Map V1" in names
    label_layer = window.layers.by_name("Vertebrae (fake)")
    assert label_layer._centroids is not None  # computed in the worker, not the event loop
    # click V3 in the panel: the views centre on V3's centroid
    panel.tree.itemClicked.emit(items["V3"], 0)
    settle(qtbot, window)
    centroid = label_layer.centroids()[3]
    assert np.allclose(window.view_area.cross.point, centroid, atol=1e-6)
    k = int(round(window.series.image.world_to_index(centroid)[2]))
    assert window.view_area.cross.slice_index("axial") == k
    window.layers.set_visible(window.layers.by_name("Map V1").id, False)
    settle(qtbot, window)
    blue = colour_mask(window.view_area.views["axial"].capture(), (0, 0, 255), 10)
    assert blue.sum() > 10, "label 3 (blue) not drawn on its centroid's slice"
    # choosing class V2 shows V2's map only
    panel.tree.itemClicked.emit(items["V2"], 0)
    assert window.layers.by_name("Map V2").visible
    assert not window.layers.by_name("Map V1").visible


def test_radiograph_sides_hierarchy_heatmap_colorbar(qtbot, window, real_data):
    hip = real_data / "xray_nema_wg04" / "RG2_UNC.dcm"
    open_and_wait(qtbot, window, hip)
    _run(qtbot, window, FakeImageAdapter())
    panel = window.findings
    tops = [panel.tree.topLevelItem(n).text(0) for n in range(panel.tree.topLevelItemCount())]
    assert tops == ["Left side", "Right side"]
    view = window.view_area.views["native"]
    assert view.scalar_bar.GetVisibility()
    assert window.layers.by_name("CAM A").visible and not window.layers.by_name("CAM B").visible
    shot_a = view.capture()
    b_item = next(
        it for it in panel.finding_items() if it.text(0).startswith("B") and it.parent().parent()
    )
    panel.tree.itemClicked.emit(b_item, 0)
    settle(qtbot, window)
    assert window.layers.by_name("CAM B").visible and not window.layers.by_name("CAM A").visible
    shot_b = view.capture()
    h, w = shot_a.shape[:2]
    # CAM A is hot (red) on image columns < half (left of screen), CAM B on the other half
    red_a = shot_a[:, : w // 2, 0].astype(int) - shot_a[:, : w // 2, 2]
    red_b = shot_b[:, : w // 2, 0].astype(int) - shot_b[:, : w // 2, 2]
    assert red_a.mean() > red_b.mean() + 20
    assert colour_mask(shot_b, (255, 0, 255), 30).sum() > 50  # ROI boxes drawn


def test_rejected_input_is_a_message_not_a_crash(qtbot, window, ct_dir):
    open_and_wait(qtbot, window, ct_dir)
    _run(qtbot, window, RejectingAdapter())
    msg = window.findings.message
    assert msg.isVisible() and "covering the neck" in msg.text()
    assert window.findings.result is None and window.isVisible()
    assert window.findings.run_button.isEnabled()


def test_cancel_and_close_while_busy_asks(qtbot, window, ct_dir):
    open_and_wait(qtbot, window, ct_dir)
    window.run_task("fake-slow", adapter=SlowAdapter())
    qtbot.waitUntil(lambda: "waiting" in window.findings.stage_label.text(), timeout=WAIT_MS)
    assert window.findings.cancel_button.isEnabled()
    window.findings.cancel_button.click()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    assert "cancelled" in window.findings.message.text()

    window.run_task("fake-slow", adapter=SlowAdapter())
    qtbot.waitUntil(window.is_busy, timeout=WAIT_MS)
    asked = []
    window.confirm_close = lambda: asked.append(1) or False
    window.close()
    assert asked and window.isVisible() and window.is_busy()
    window.confirm_close = lambda: asked.append(2) or True
    window.close()
    assert asked == [1, 2] and not window.isVisible() and not window.is_busy()


def _stall_during(qtbot, window, adapter, task="fake"):
    beat = Heartbeat()
    beat.start()
    window.run_task(task, adapter=adapter)
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    # the result is applied on the event loop: keep measuring through the redraw it causes
    qtbot.waitUntil(lambda: not window.view_area._update_pending, timeout=WAIT_MS)
    qtbot.wait(100)
    beat.stop()
    return beat


def test_event_loop_stays_responsive_while_analysing(qtbot, window, ct_dir):
    """Longest event-loop stall while a study is analysed (2 s of numpy work in the worker) and
    its result drawn. The machine is shared, so the best of three runs is compared with the
    100 ms limit: work done on the event loop would stall every run, not one."""
    open_and_wait(qtbot, window, ct_dir)
    runs = []
    for _ in range(3):
        beat = _stall_during(qtbot, window, FakeVolumeAdapter(work_s=2.0))
        assert window.findings.result is not None
        assert beat.ticks > 50
        runs.append(beat.longest)
        print(f"fake adapter (2 s numpy work): longest stall {beat.longest * 1000:.1f} ms, "
              f"{beat.ticks} ticks")  # fmt: skip
        if beat.longest < 0.100:
            break
    assert min(runs) < 0.100, f"stalls {[round(r * 1000) for r in runs]} ms"


def test_real_adapters_if_present(qtbot, window, real_data):
    """The shipped adapters in the viewer: femur on the real hip, cervical declines a radiograph."""
    from app.analysis.tasks import available_tasks, get_adapter

    tasks = available_tasks()
    if "femur-ao" not in tasks:
        pytest.skip("femur-ao adapter not available")
    open_and_wait(qtbot, window, real_data / "xray_nema_wg04" / "RG2_UNC.dcm")
    try:
        adapter = get_adapter("femur-ao")
    except Exception as exc:  # noqa: BLE001 - weights not exported yet
        pytest.skip(f"femur-ao not usable: {exc}")
    runs = []
    for _ in range(3):
        beat = _stall_during(qtbot, window, adapter, "femur-ao")
        if window.findings.result is None:
            pytest.skip(f"femur-ao gave no result: {window.findings.message.text()}")
        runs.append(beat.longest)
        print(f"femur-ao on the real hip: longest stall {beat.longest * 1000:.1f} ms")
        if beat.longest < 0.100:
            break
    assert min(runs) < 0.100, f"stalls {[round(r * 1000) for r in runs]} ms"
    heatmaps = [la for la in window.layers if la.kind == "heatmap"]
    assert heatmaps, "the CAMs are listed as layers"
    # a real film is outside the phantoms' domain: no call, and no map drawn in colour over it
    assert window.findings.result.no_call
    assert not any(la.visible for la in heatmaps)
    if "cervical-fracture" in tasks:
        _run(qtbot, window, None, "cervical-fracture")
        assert window.findings.message.isVisible()
        assert window.findings.message.text().startswith("Not analysed")


def test_a_real_head_ct_is_offered_no_task(qtbot, window, real_data):
    """The real head CT (BodyPartExamined HEAD) cannot feed the cervical task: the task box
    says so, with the reason on hover, and Analyse stays off."""
    open_and_wait(qtbot, window, real_data / "ct_head_gantry_tilt")
    panel = window.findings
    assert panel.task_combo.currentText() == NO_TASK and not panel.run_button.isEnabled()
    assert "BodyPartExamined=HEAD" in panel.task_combo.toolTip()


def test_cervical_adapter_click_a_vertebra_centres_the_views(qtbot, window):
    """With the shipped cervical weights: the C1-C7 map in the views, click a vertebra."""
    from app.analysis.tasks import available_tasks, get_adapter

    demos = sorted((REPO / "resources" / "demo" / "cervical-fracture").glob("phantom_*"))
    if "cervical-fracture" not in available_tasks() or not demos:
        pytest.skip("cervical-fracture adapter or demo study not available")
    try:
        adapter = get_adapter("cervical-fracture")
    except Exception as exc:  # noqa: BLE001 - weights not exported yet
        pytest.skip(f"cervical-fracture not usable: {exc}")
    messages = []
    for demo in demos:  # the first demo study the demo weights accept
        open_and_wait(qtbot, window, demo)
        window.layers.clear("truth")
        _run(qtbot, window, adapter, "cervical-fracture")
        if window.findings.result is not None:
            break
        messages.append(window.findings.message.text())
    else:
        pytest.skip(f"cervical-fracture gave no result: {messages}")
    labelmaps = [la for la in window.layers if la.kind == "labelmap"]
    assert labelmaps, "the C1-C7 label map is not a layer"
    clickable = [
        it
        for it in window.findings.finding_items()
        if window.layers.find_region(it.data(0, FINDING_ROLE).region_id)
    ]
    assert clickable, "no finding refers to a vertebra of the label map"
    item = clickable[len(clickable) // 2]
    window.findings.tree.itemClicked.emit(item, 0)
    layer, value = window.layers.find_region(item.data(0, FINDING_ROLE).region_id)
    assert np.allclose(window.view_area.cross.point, layer.centroids()[value], atol=1e-6)
    window.layers.set_opacity(layer.id, 1.0)  # pure label colours for the pixel check
    settle(qtbot, window)
    colour = layer.label_lut()[value, :3]
    for name, rgb in window.view_area.capture_views().items():
        near = colour_mask(rgb, tuple(int(c) for c in colour), 60)
        assert near.sum() > 0, f"{name}: the clicked vertebra is not drawn"
