"""Choosing the label value in the toolbar, and importing a DICOM SEG into the viewer."""

from __future__ import annotations

import numpy as np
import pytest

from app.editing.export import save_seg
from app.findings.types import LabelMapOverlay
from tests.gui.conftest import open_and_wait, settle
from tests.gui.test_editor_paint import drag

pytestmark = pytest.mark.gui


@pytest.fixture()
def ui(window, tmp_path, monkeypatch):
    monkeypatch.setenv("OSTEOVIEW_WORKSPACE_DIR", str(tmp_path / "ws"))
    yield window.mask_editor
    window.mask_editor.close()


def test_label_value_from_the_toolbar(qtbot, window, ct_dir, ui):
    open_and_wait(qtbot, window, ct_dir)
    ed = ui.new_mask()
    assert ui.label_box.isEnabled() and ui.label_box.value() == 1
    ui.label_box.setValue(3)
    assert ed.label == 3 and 3 in ed.overlay.labels
    view = window.view_area.views["axial"]
    settle(qtbot, window)
    ed.set_radius(3.0)
    drag(view, (view.width() * 0.3, view.height() * 0.5), (view.width() * 0.7, view.height() * 0.5))
    assert set(np.unique(ed.data)) == {0, 3}
    settle(qtbot, window)
    colour = np.array(ed.overlay.labels[3][1])
    shot = view.capture().astype(int)
    assert (np.abs(shot - colour).max(axis=-1) <= 3).sum() > 20  # label 3's own colour, its edge


def test_import_a_seg_as_a_layer(qtbot, window, ct_dir, ui, tmp_path):
    open_and_wait(qtbot, window, ct_dir)
    series = window.series
    labels = np.zeros(series.image.shape, np.uint8)
    labels[18:24, 20:40, 15:45] = 1
    ov = LabelMapOverlay("C5", image=series.image.with_array(labels),
                         labels={1: ("C5", (0, 0, 255))})  # fmt: skip
    path = save_seg(ov, series, tmp_path / "c5.dcm", edited=False)
    layer = ui.files.import_seg(path)
    assert layer is not None and layer.kind == "labelmap"
    np.testing.assert_array_equal(layer.overlay.image.array, labels)
    va = window.view_area
    va.centre_on(series.image.index_to_world(np.array([30.0, 30.0, 21.0])))
    settle(qtbot, window)
    shot = va.views["axial"].capture().astype(int)
    blue = (shot[..., 2] - shot[..., 0] > 60) & (shot[..., 2] - shot[..., 1] > 60)
    assert blue.sum() > 50
    assert ui.files.import_seg(tmp_path / "missing.dcm") is None
    assert "not imported" in window.statusBar().currentMessage()
