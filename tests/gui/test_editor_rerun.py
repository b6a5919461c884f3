"""Edit a model's mask in the viewer, save it as DICOM SEG, re-run the task on it and see the
findings before and after."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pytest

from tests import fake_pair_task
from tests.fake_pair_task import FakePairAdapter
from tests.gui.conftest import WAIT_MS, open_and_wait
from tests.gui.test_editor_paint import SHOTS, drag
from tests.test_analysis_contract import _pair_study

pytestmark = pytest.mark.gui


def test_edit_model_mask_save_seg_and_rerun(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setenv("OSTEOVIEW_WORKSPACE_DIR", str(tmp_path / "ws"))
    fake_pair_task.register(monkeypatch)
    FakePairAdapter.stage_s = 0.0
    study = _pair_study(tmp_path / "pair")
    ui = window.mask_editor
    try:
        open_and_wait(qtbot, window, study)
        window.findings.task_combo.setCurrentText("fake-pair")
        window.findings.run_button.click()
        qtbot.waitUntil(lambda: window.result is not None and not window.is_busy(),
                        timeout=WAIT_MS)  # fmt: skip
        qtbot.waitUntil(lambda: not window.input_views.update_pending, timeout=WAIT_MS)
        window.input_views.update_now()
        before = {f.label: f.probability for f in window.result.findings}
        layer = window.layers.by_name("Lateral mask")
        ed = ui.start(layer)
        assert ed is not None and ui.layer is layer
        area = window.input_views.area_of(layer)
        view = next(iter(area.views.values()))
        ed.set_radius(ed.voxel_mm * 6)
        drag(
            view,
            (view.width() * 0.2, view.height() * 0.3),
            (view.width() * 0.8, view.height() * 0.7),
        )
        painted = ed.data.copy()
        assert painted.sum() > int((np.asarray(layer.overlay.image.array) > 0).sum()) // 2
        out = ui.files.save(tmp_path / "edited.dcm", "seg")
        assert out is not None and not ed.history.dirty and ed.history.can_undo
        seg = hd.seg.segread(out)
        assert {str(d.SegmentAlgorithmType) for d in seg.SegmentSequence} == {"SEMIAUTOMATIC"}
        assert ui.files.rerun()
        qtbot.waitUntil(lambda: ui.files.compare_table is not None
                        and ui.files.compare_table.rowCount() > 0, timeout=WAIT_MS)  # fmt: skip
        qtbot.waitUntil(lambda: not window.is_busy(), timeout=WAIT_MS)
        after = window.result
        assert after.extra["mask_used"] == "given"
        assert after.provenance.inputs["mask"]["origin"] == "edited"
        table = ui.files.compare_table
        rows = {table.item(r, 0).text(): (table.item(r, 1).text(), table.item(r, 2).text())
                for r in range(table.rowCount())}  # fmt: skip
        expected = min(float((painted > 0).mean() * 5), 1.0)
        assert rows["damaged"] == (f"{before['damaged']:.3f}", f"{expected:.3f}")
        # the user's edited layer survived the re-run, which replaced the task's own layers
        kept = window.layers.by_name("Lateral mask (edited)")
        assert kept is not None and (kept.overlay.image.array == painted).all()
        SHOTS.mkdir(exist_ok=True)
        from app.ui.capture import capture_window, save_png

        save_png(capture_window(window), str(SHOTS / "editor_rerun.png"))
    finally:
        ui.close()
