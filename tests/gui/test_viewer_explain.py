"""SHAP in the viewer on the femur demo study: the event loop stays responsive while the
explanation runs in its worker (longest stall < 100 ms), and the map lands on the radiograph as a
coolwarm layer over the fractured femur."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from app.ui.capture import capture_window, save_png
from app.ui.findings_panel import FINDING_ROLE
from tests.gui.conftest import WAIT_MS, open_and_wait
from tests.gui.test_viewer_analysis import Heartbeat

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[2]
STUDY = REPO / "resources/demo/femur-ao/trochanteric_A2_left/image.dcm"
SHOTS = Path("/tmp/osteoview-shots")  # screenshots kept for a person to look at


def _item(window, label: str, side: str):
    return next(
        it
        for it in window.findings.finding_items()
        if it.data(0, FINDING_ROLE).label == label and it.data(0, FINDING_ROLE).side == side
    )


class BusyHeartbeat(Heartbeat):
    """The heartbeat that also notes, tick by tick, whether the window is still busy, so that
    the stalls while the explanation runs are told apart from drawing its result afterwards."""

    def __init__(self, window) -> None:
        super().__init__()
        self.window = window
        self.while_busy = 0.0  # longest gap ending while the explanation was running
        self.after = 0.0  # longest gap ending once it was done (the result applied and drawn)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            gap = now - self.last
            if self.window.is_busy():
                self.while_busy = max(self.while_busy, gap)
            else:
                self.after = max(self.after, gap)
        super()._tick()


def test_shap_runs_without_stalling_the_event_loop(qtbot, window):
    from app.analysis.explain import DEFAULT_CACHE
    from app.engine.shap_maps import warm_up

    warm_up()  # what the viewer does in the background at start-up (numba compiled once)
    open_and_wait(qtbot, window, STUDY)
    panel = window.findings
    panel.task_combo.setCurrentText("femur-ao")
    panel.run_button.click()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    assert panel.result is not None, panel.message.text()
    item = _item(window, "fracture", "left")
    panel.tree.setCurrentItem(item)
    panel.tree.itemClicked.emit(item, 0)
    panel.explain_method.setCurrentText("shap")
    assert panel.explain_method.currentText() == "shap" and panel.explain_button.isEnabled()
    runs = []
    for _ in range(3):  # the machine is shared: the best of three is compared with the limit
        DEFAULT_CACHE.clear()  # each run computes the map again
        beat = BusyHeartbeat(window)
        beat.start()
        t0 = time.perf_counter()
        panel.explain_button.click()
        qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
        seconds = time.perf_counter() - t0
        qtbot.wait(200)  # keep measuring through the redraw the new layer causes
        beat.stop()
        runs.append(beat.while_busy)
        print(f"\nSHAP in the viewer: {seconds:.2f} s; longest event-loop stall while it ran "
              f"{beat.while_busy * 1000:.1f} ms, after it (result applied and drawn) "
              f"{beat.after * 1000:.1f} ms; {beat.ticks} ticks")  # fmt: skip
        assert beat.ticks > 50
        if beat.while_busy < 0.100:
            break
    assert min(runs) < 0.100, f"stalls while SHAP ran {[round(r * 1000) for r in runs]} ms"
    layer = next(la for la in window.layers if la.name.startswith("SHAP left fracture"))
    assert layer.visible and layer.kind == "heatmap"
    window.view_area.update_now()
    SHOTS.mkdir(exist_ok=True)
    rgb = capture_window(window)
    save_png(rgb, str(SHOTS / "femur_shap_explained.png"))
    # coolwarm's warm end (positive SHAP) shows on screen
    warm = (rgb[..., 0].astype(int) > 150) & (rgb[..., 2].astype(int) < 120)
    warm &= rgb[..., 0].astype(int) - rgb[..., 1].astype(int) > 60
    assert warm.sum() > 200, np.count_nonzero(warm)
