"""SHAP warmed up at viewer start-up in a child process (app/ui/warmup.py): the event loop does
not stall while the child imports shap and compiles numba (longest gap < 100 ms, measured with a
10 ms QTimer), the first Explain click then runs in the warm child without importing shap here,
and the report exported from the viewer carries the maps explained (a femur map on the
radiograph; a cervical vertebra's 3-D map cut through its peak)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from app.ui.findings_panel import FINDING_ROLE
from tests.gui.conftest import WAIT_MS, open_and_wait
from tests.gui.test_viewer_analysis import Heartbeat
from tests.gui.test_viewer_explain import BusyHeartbeat

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[2]
FEMUR = REPO / "resources/demo/femur-ao/trochanteric_A2_left/image.dcm"
CERVICAL = REPO / "resources/demo/cervical-fracture/phantom_fracture_C2_C6"
WARM_MS = 240_000  # importing shap and compiling numba at low priority on a shared 2-core CPU


@pytest.fixture()
def child(qapp, qtbot, monkeypatch):
    """The child as ``run_viewer`` starts it; ended (and forgotten) after the test."""
    from app.analysis import explain_child
    from app.ui.warmup import start_warm_up

    monkeypatch.setattr(explain_child, "_child", None)
    start_warm_up(qapp)
    qtbot.waitUntil(lambda: explain_child.running_child() is not None, timeout=5000)
    made = explain_child.running_child()
    assert made is not None and made.proc is not None
    yield made
    made.stop()


def _explain(qtbot, window, label: str, side: str = "") -> float:
    panel = window.findings
    item = next(
        it
        for it in panel.finding_items()
        if it.data(0, FINDING_ROLE).label == label and it.data(0, FINDING_ROLE).side == side
    )
    panel.tree.setCurrentItem(item)
    panel.tree.itemClicked.emit(item, 0)
    panel.explain_method.setCurrentText("shap")
    assert panel.explain_button.isEnabled()
    t0 = time.perf_counter()
    panel.explain_button.click()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    return time.perf_counter() - t0


def _run_task(qtbot, window, path, task: str) -> None:
    open_and_wait(qtbot, window, path)
    window.findings.task_combo.setCurrentText(task)
    window.findings.run_button.click()
    qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
    assert window.findings.result is not None, window.findings.message.text()


def test_warm_up_in_a_child_keeps_the_event_loop_free(qtbot, window, child):
    from app.analysis.explain import DEFAULT_CACHE
    from app.report.pdf import run_key_images
    from app.ui.report_dialog import collect_report_input

    shap_here = "shap" in sys.modules  # other tests of this process may have imported it
    beat = Heartbeat()
    beat.start()
    t0 = time.perf_counter()
    qtbot.waitUntil(lambda: child.wait_ready(0), timeout=WARM_MS)
    warm_wall = time.perf_counter() - t0
    beat.stop()
    print(f"\nwarm-up in the child: {child.warm} s there, {warm_wall:.1f} s wall; longest "
          f"event-loop stall meanwhile {beat.longest * 1000:.1f} ms (at {beat.longest_at - t0:.1f} s) "
          f"over {beat.ticks} ticks")  # fmt: skip
    assert isinstance(child.warm, float), child.warm  # not a failure message
    assert beat.ticks > 50
    assert beat.longest < 0.100

    _run_task(qtbot, window, FEMUR, "femur-ao")
    stalls = []
    for click in range(3):  # the machine is shared: the best of three is compared with the limit
        DEFAULT_CACHE.clear()  # each click computes the map again, in the child
        beat = BusyHeartbeat(window)
        beat.start()
        seconds = _explain(qtbot, window, "fracture", "left")
        qtbot.wait(200)  # through the redraw the new layer causes
        beat.stop()
        stalls.append(beat.while_busy)
        print(f"Explain click {click + 1} (femur, in the warm child): {seconds:.2f} s; longest "
              f"stall while it ran {beat.while_busy * 1000:.1f} ms, after it (result applied "
              f"and drawn) {beat.after * 1000:.1f} ms")  # fmt: skip
        if click == 0:
            first_seconds = seconds
        if beat.while_busy < 0.100:
            break
    assert min(stalls) < 0.100, stalls
    assert any(la.name.startswith("SHAP left fracture") for la in window.layers)
    assert ("shap" in sys.modules) == shap_here  # explained in the child, not imported here
    assert first_seconds < 15  # warm: no import, no compilation (2-5 s measured on this CPU)
    captions = [k.caption for run in collect_report_input(window).runs for k in run_key_images(run)]
    assert any(c.startswith("SHAP left fracture") for c in captions), captions


def test_viewer_report_has_the_cervical_3d_map(qtbot, window, child):
    from app.analysis.explain import DEFAULT_CACHE
    from app.report.pdf import run_key_images
    from app.ui.report_dialog import collect_report_input

    qtbot.waitUntil(lambda: child.wait_ready(0), timeout=WARM_MS)
    DEFAULT_CACHE.clear()
    _run_task(qtbot, window, CERVICAL, "cervical-fracture")
    seconds = _explain(qtbot, window, "C2")
    assert any(la.name.startswith("SHAP C2") for la in window.layers), window.findings.message
    captions = [k.caption for run in collect_report_input(window).runs for k in run_key_images(run)]
    print(f"\ncervical C2 explained in {seconds:.2f} s; key images: {captions}")
    assert captions[0].startswith("SHAP C2") and "axial slice" in captions[0]
    assert captions[1].startswith("SHAP C2") and "sagittal" in captions[1]
    # the result itself is left as the run made it
    assert not any(o.name.startswith("SHAP") for o in window.findings.result.overlays)
