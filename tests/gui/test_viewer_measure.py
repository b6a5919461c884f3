"""Measuring on the views with the mouse: angle, Cobb angle, ROIs, the ruler kept as a length;
the measurements panel, drawn pixels, jumping and the saved reading; the window/level dialog
and the DICOM tag browser."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Qt

from app.ui.measure_draw import DONE_COLOUR
from app.viewstate.state import ViewerState
from tests.gui.conftest import colour_mask, open_and_wait, settle

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[2]
SPINE = REPO / "resources" / "demo" / "spine-xray" / "02_damaged_L1_wedge"
SHOTS = Path(tempfile.gettempdir()) / "osteoview-shots"  # to look at; never in the repository


def _send(view, kind, xy, buttons, which) -> None:
    p = QtCore.QPointF(*xy)
    ev = QtGui.QMouseEvent(kind, p, view.mapToGlobal(p), which, buttons,
                           Qt.KeyboardModifier.NoModifier)  # fmt: skip
    QtWidgets.QApplication.sendEvent(view, ev)


def click(view, xy) -> None:
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    _send(view, QtCore.QEvent.Type.MouseButtonPress, xy, left, left)
    _send(view, QtCore.QEvent.Type.MouseButtonRelease, xy, none, left)


def drag(view, a, b, steps=4) -> None:
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    _send(view, QtCore.QEvent.Type.MouseButtonPress, a, left, left)
    for n in range(1, steps + 1):
        p = (a[0] + (b[0] - a[0]) * n / steps, a[1] + (b[1] - a[1]) * n / steps)
        _send(view, QtCore.QEvent.Type.MouseMove, p, left, none)
    _send(view, QtCore.QEvent.Type.MouseButtonRelease, b, none, left)


def tilted(x0, y0, length, deg):
    """Screen end points of a line tilted ``deg`` degrees up from horizontal (y grows down)."""
    t = math.radians(deg)
    return (x0, y0), (x0 + length * math.cos(t), y0 - length * math.sin(t))


def yellow(view) -> np.ndarray:
    view.set_corner_visible(False)
    try:
        return colour_mask(view.capture(), DONE_COLOUR, 40)
    finally:
        view.set_corner_visible(True)


def screen_of(view, x_mm: float, y_mm: float) -> tuple[float, float]:
    """Widget pixel (y down) of plane millimetres (x, y up), through the view's camera."""
    r = view.renderer
    r.SetWorldPoint(x_mm, y_mm, 0.0, 1.0)
    r.WorldToDisplay()
    dx, dy, _ = r.GetDisplayPoint()
    ratio = view.devicePixelRatioF()
    return dx / ratio, (view.GetRenderWindow().GetSize()[1] - 1 - dy) / ratio


def test_angle_cobb_roi_and_ruler_on_the_spine_demo(qtbot, window, tmp_path):
    open_and_wait(qtbot, window, SPINE)
    va = window.view_area
    view = va.views["native"]
    tools = window.measure_tools
    assert yellow(view).sum() == 0
    # places on the image whatever the layout: fractions of its width and height on screen
    w_mm, h_mm = va.cross.planes["native"].extent_mm
    (x0, y0), (x1, y1) = screen_of(view, 0, h_mm), screen_of(view, w_mm, 0)

    def at(fx, fy):
        return (round(x0 + fx * (x1 - x0)), round(y0 + fy * (y1 - y0)))

    d = round(min(x1 - x0, y1 - y0) * 0.15)  # a length in screen pixels that fits
    assert d > 30

    # angle: three clicks, a right angle on screen is a right angle in mm (square screen px)
    tools.actions["angle"].trigger()
    assert tools.tool == "angle"
    ax, ay = at(0.2, 0.7)
    for xy in ((ax, ay), (ax + d, ay), (ax + d, ay - d)):
        click(view, xy)
    # Cobb: two endplates tilted +20 and -25 degrees on screen; Esc drops a half-drawn one
    tools.actions["cobb"].trigger()
    click(view, at(0.5, 0.5))
    assert tools._pending is not None
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert tools._pending is None and len(window.measurements) == 1
    cx, cy = at(0.35, 0.3)
    for xy in (*tilted(cx, cy, d, 20), *tilted(cx, cy + 2 * d, d, -25)):
        click(view, xy)
    # rectangle and ellipse ROIs by dragging
    tools.actions["rectangle"].trigger()
    rx, ry = at(0.65, 0.3)
    drag(view, (rx, ry), (rx + d, ry + d))
    tools.actions["ellipse"].trigger()
    ex, ey = at(0.65, 0.6)
    drag(view, (ex, ey), (ex + d, ey + d))
    # the ruler (r) keeps its line as a length
    tools.actions["ellipse"].trigger()  # tool off
    assert tools.tool is None
    qtbot.keyClick(view, Qt.Key.Key_R)
    lx, ly = at(0.1, 0.1)
    drag(view, (lx, ly), (lx, ly + d))
    qtbot.waitUntil(lambda: len(window.measurements) == 5, timeout=5000)
    qtbot.keyClick(view, Qt.Key.Key_R)

    ms = {m.name: m for m in window.measurements}
    assert list(ms) == ["Angle 1", "Cobb angle 1", "Rectangle 1", "Ellipse 1", "Length 1"]
    assert ms["Angle 1"].value == pytest.approx(90.0, abs=0.5)
    assert ms["Cobb angle 1"].value == pytest.approx(45.0, abs=0.5)
    mm_px = view.mm_per_screen_pixel()
    assert ms["Length 1"].value == pytest.approx(d * mm_px, rel=0.02)
    rect, ell = ms["Rectangle 1"].stats, ms["Ellipse 1"].stats
    assert rect.area_mm2 == pytest.approx((d * mm_px) ** 2, rel=0.03)
    assert ell.area_mm2 == pytest.approx(math.pi / 4 * (d * mm_px) ** 2, rel=0.03)
    # the rectangle's mean and SD, worked out here from the pixels under its corners
    image = va.series.image
    a, b = ms["Rectangle 1"].points
    (i0, j0, _), (i1, j1, _) = image.world_to_index(np.array([a, b]))
    ii, jj = np.meshgrid(np.arange(image.shape[2]), np.arange(image.shape[1]))
    inside = ((ii >= min(i0, i1)) & (ii <= max(i0, i1)) & (jj >= min(j0, j1))
              & (jj <= max(j0, j1)))  # fmt: skip
    values = image.array[0][inside].astype(float)
    assert rect.n_pixels == inside.sum()
    assert rect.mean == pytest.approx(values.mean())
    assert rect.sd == pytest.approx(values.std())
    assert ms["Rectangle 1"].unit == "raw (not HU)"  # a radiograph: stored values, not HU

    # the panel lists them with value, unit and slice
    rows = tools.panel.rows()
    assert [r[0] for r in rows] == list(ms)
    assert rows[1][1:] == (f"{ms['Cobb angle 1'].value:.1f}", "°", "", "native 1")
    assert rows[2][1:4] == (f"{rect.mean:.1f} ± {rect.sd:.1f} SD", "raw (not HU)",
                            f"{rect.area_mm2:.1f}")  # fmt: skip

    # drawn: yellow lines where they were clicked
    settle(qtbot, window)
    shot = yellow(view)
    SHOTS.mkdir(exist_ok=True)
    window.view_area.update_now()
    from app.ui.capture import capture_window, save_png

    save_png(capture_window(window), SHOTS / "measure_spine.png")
    assert shot[ay - 5 : ay + 6, ax + 10 : ax + d - 10].sum() > d / 2  # the angle's arm
    assert shot[ay - d + 10 : ay - 10, ax + d - 5 : ax + d + 6].sum() > d / 2  # its other arm
    assert shot[ry + 5 : ry + d - 5, rx - 5 : rx + 6].sum() > d / 2  # the rectangle's side
    assert shot.sum() > 1000

    # saved with the reading: the state round-trips every measurement
    path = window.viewer_state().save(tmp_path / "reading.json")
    before = rows
    window.measurements.clear()
    settle(qtbot, window)
    assert yellow(view).sum() < shot.sum() / 20  # gone from the view (labels too)
    window.apply_state(ViewerState.load(path))
    settle(qtbot, window)
    assert tools.panel.rows() == before
    assert yellow(view).sum() == pytest.approx(shot.sum(), rel=0.1)

    # the lateral film the spine's hanging protocol shows beside the AP is measured too
    for guest in va.guests:
        gview = guest.views["native"]
        tools.actions["angle"].trigger()
        gx, gy = gview.width() // 2, gview.height() // 2
        for xy in ((gx - d, gy), (gx, gy), (gx, gy - d)):
            click(gview, xy)
        tools.actions["angle"].trigger()
        lat = window.measurements.items[-1]
        assert lat.series_uid == guest.series.series_uid != va.series.series_uid
        assert lat.value == pytest.approx(90.0, abs=0.5)
        settle(qtbot, window)
        assert gview._measure_overlay.drawn == [lat]
        window.measurements.remove(lat)

    # the report lists them (the views it pictures are captured with them drawn)
    from app.ui.report_dialog import collect_report_input

    lines = collect_report_input(window).measurements
    assert len(lines) == 5
    assert f"Angle 1 (native slice 1): {ms['Angle 1'].value:.1f}°" in lines

    # delete from the panel
    tools.panel.table.selectRow(0)
    tools.panel.delete_selected()
    assert [m.name for m in window.measurements][0] == "Cobb angle 1"


def test_roi_on_ct_says_hu_and_double_click_jumps_back(qtbot, window, ct_dir, tmp_path,
                                                        monkeypatch):  # fmt: skip
    monkeypatch.setenv("OSTEOVIEW_WORKSPACE_DIR", str(tmp_path / "workspaces"))
    open_and_wait(qtbot, window, ct_dir)
    va = window.view_area
    tools = window.measure_tools
    name = next(iter(va.views))
    assert name == "axial"
    view = va.views[name]
    start = va.cross.slice_index(name)
    # a measuring tool takes the left button from the mask editor (its edits are kept)
    window.mask_editor.new_mask()
    assert window.mask_editor.editor is not None
    tools.actions["ellipse"].trigger()
    assert window.mask_editor.editor is None
    cx, cy = view.width() / 2, view.height() / 2
    drag(view, (cx - 30, cy - 30), (cx + 30, cy + 30))
    (m,) = list(window.measurements)
    assert m.unit == "HU"
    assert m.slice_index == start + 1
    assert m.stats.n_pixels > 20
    # the phantom's body is 40 HU and its bony column 700 HU: the centre ROI mixes them
    assert 40 <= m.stats.mean <= 700
    settle(qtbot, window)
    assert view._measure_overlay.drawn == [m]
    va.scroll(name, 5)
    settle(qtbot, window)
    assert view._measure_overlay.drawn == []  # another slice
    tools.panel._on_double_click(0, 0)
    settle(qtbot, window)
    assert va.cross.slice_index(name) == start
    assert view._measure_overlay.drawn == [m]
    window.mask_editor.close()


def test_window_level_dialog_moves_the_view_window_live(qtbot, window, ct_dir):
    from app.ui.wl_dialog import open_window_level_dialog

    open_and_wait(qtbot, window, ct_dir)
    va = window.view_area
    view = va.views["axial"]
    before = view.capture().astype(float)
    dialog = open_window_level_dialog(window)
    qtbot.waitExposed(dialog)
    x, y = dialog.hist.item.plot.getData()
    assert len(x) == 256 and y.max() > 0  # the histogram is there
    assert "HU" in dialog.caption.text()
    # the region starts on the view's window
    lo, hi = dialog.hist.item.getLevels()
    assert (lo + hi) / 2 == pytest.approx(va.window.center)
    dialog.hist.item.setLevels(-1000.0, -900.0)  # what dragging the region does
    assert va.window.center == pytest.approx(-950.0)
    assert va.window.width == pytest.approx(100.0)
    settle(qtbot, window)
    after = view.capture().astype(float)
    # everything above -900 HU (the whole body) is now white
    white_before, white_after = ((x > 250).all(axis=-1).sum() for x in (before, after))
    assert white_after > white_before + 5000
    # a preset from the list sets the view and moves the region
    bone = next(
        n for n in range(dialog.presets.count())
        if dialog.presets.item(n).data(Qt.ItemDataRole.UserRole) == "Bone"
    )  # fmt: skip
    dialog._on_preset(dialog.presets.item(bone))
    assert (va.window.center, va.window.width) == (400.0, 1800.0)
    assert dialog.hist.item.getLevels() == pytest.approx((-500.0, 1300.0))
    # a drag in the view moves the region
    va._on_window_drag(50, 0)
    lo, hi = dialog.hist.item.getLevels()
    assert hi - lo == pytest.approx(va.window.width)
    dialog.close()


def test_tag_browser_shows_the_real_ct_header(qtbot, window, real_data):
    from app.ui.tag_browser import open_tag_browser

    folder = real_data / "ct_head_gantry_tilt"
    if not folder.is_dir():
        pytest.skip(f"{folder} missing")
    open_and_wait(qtbot, window, folder)
    dialog = open_tag_browser(window)
    rows = dialog.visible_rows()
    by_name = {r[1]: r for r in rows}
    assert by_name["Modality"][3] == "CT"
    assert by_name["PatientName"][0] == "(0010,0010)"
    assert "PixelData" not in by_name  # the header only
    # the file of the slice at the crosshair (the series' files are not in slice order)
    import pydicom

    ds = pydicom.dcmread(dialog.path, stop_before_pixels=True)
    normal = window.view_area.series.image.direction[:, 2]
    here = float(np.asarray(ds.ImagePositionPatient, float) @ normal)
    cross = float(window.view_area.cross.point @ normal)
    steps = [abs(here - cross)]
    for p in window.view_area.series.source_paths:
        other = pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient
        steps.append(abs(float(np.asarray(other, float) @ normal) - cross))
    assert steps[0] == pytest.approx(min(steps[1:]))
    dialog.filter.setText("modality")
    assert {r[1] for r in dialog.visible_rows()} >= {"Modality"}
    assert "PatientName" not in {r[1] for r in dialog.visible_rows()}
    dialog.close()


def test_tag_browser_on_nifti_and_sequences(qtbot, window, real_data):
    from app.ui.tag_browser import TagBrowser

    nii = real_data / "totalsegmentator" / "example_ct_sm.nii.gz"
    ect = real_data / "pydicom_data" / "eCT_Supplemental.dcm"
    if not nii.is_file() or not ect.is_file():
        pytest.skip("real files missing")
    d = TagBrowser(str(nii), window)
    assert "NIfTI header" in d.summary.text()
    assert any(r[1] == "pixdim" for r in d.visible_rows())
    d.close()
    d = TagBrowser(str(ect), window)
    top = d.tree.topLevelItemCount()
    seq = next(
        d.tree.topLevelItem(n) for n in range(top)
        if d.tree.topLevelItem(n).text(1) == "DimensionIndexSequence"
    )  # fmt: skip
    assert seq.text(2) == "SQ" and seq.childCount() == 2  # two items, expandable
    assert seq.child(0).childCount() > 0
    d.close()
    d = TagBrowser(str(REPO / "no-such-file.dcm"), window)
    assert "Cannot show the header" in d.summary.text() and "no-such-file" in d.summary.text()
    d.close()
