"""The viewer's side of the PDF report: the reader's impression (autosaved per series, restored,
signed off) and File -> Export report... (preview pages, Save, errors), checked on the PDF's text
(pdftotext) and pixels (pdftoppm)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.viewstate.report_draft import draft_path
from tests.gui.conftest import WAIT_MS, colour_mask, open_and_wait, settle
from tests.gui.viewer_fakes import FakeVolumeAdapter

pytestmark = [
    pytest.mark.gui,
    pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils not installed"),
]
KEEP = os.environ.get("OSTEOVIEW_KEEP_ARTIFACTS")  # a folder: keep the PDF and dialog screenshot


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    monkeypatch.setenv("OSTEOVIEW_DATA_DIR", str(folder))
    return folder


def _type_impression(qtbot, win, text: str, reader: str) -> None:
    qtbot.keyClicks(win.impression.text, text)
    qtbot.keyClicks(win.impression.reader, reader)


def _run(qtbot, win) -> None:
    win.run_task("fake-volume", adapter=FakeVolumeAdapter())
    qtbot.waitUntil(lambda: not win.is_busy(), timeout=WAIT_MS)
    settle(qtbot, win)


def _wait_dialog(qtbot, dialog) -> None:
    qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=WAIT_MS)


def _pdftotext(pdf: Path, page: int | None = None) -> str:
    pages = ["-f", str(page), "-l", str(page)] if page else []
    cmd = ["pdftotext", "-layout", *pages, str(pdf), "-"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def _page_count(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1))


def _render_page(pdf: Path, page: int, out: Path, dpi: int = 60) -> np.ndarray:
    cmd = ["pdftoppm", "-r", str(dpi), "-png", "-singlefile", "-f", str(page), "-l", str(page)]
    subprocess.run([*cmd, str(pdf), str(out)], check=True)
    return np.asarray(Image.open(str(out) + ".png").convert("RGB"))


def test_impression_autosaved_restored_and_signed(qtbot, window, ct_dir, data_dir):
    open_and_wait(qtbot, window, ct_dir)
    panel = window.impression
    assert panel.isEnabled() and panel.text.toPlainText() == ""
    _type_impression(qtbot, window, "Fracture of C2", "Dr Ada Reader")
    assert panel.dirty
    # debounced autosave, about 1 s after typing stops
    qtbot.waitUntil(lambda: not panel.dirty, timeout=WAIT_MS)
    series = window.series
    study = window.study_of(series)
    saved = draft_path(data_dir, study.study_uid, series.series_uid)
    assert "Fracture of C2" in saved.read_text()

    panel.sign_button.click()
    assert panel.draft.is_signed and "Signed off by Dr Ada Reader" in panel.status.text()
    assert not panel.sign_button.isEnabled()
    qtbot.keyClicks(panel.text, ", no cord compression.")  # editing again withdraws it
    assert not panel.draft.is_signed and panel.sign_button.isEnabled()
    assert panel.status.text().startswith("Not signed off")

    window.close()  # closing saves the draft typed less than 1 s ago
    from app.ui.main import MainWindow

    again = MainWindow()
    again.confirm_close = lambda: True
    qtbot.addWidget(again)
    again.show()
    open_and_wait(qtbot, again, ct_dir)
    restored = again.impression
    assert restored.text.toPlainText() == "Fracture of C2, no cord compression."
    assert restored.reader.text() == "Dr Ada Reader" and not restored.draft.is_signed
    assert not restored.dirty  # restoring is not an edit
    again.close()


def test_export_report_preview_save_text_and_overlay_colours(qtbot, window, ct_dir, tmp_path):
    open_and_wait(qtbot, window, ct_dir)
    _run(qtbot, window)
    _run(qtbot, window)  # a second run of the session: both go into the report
    assert len(window.results_for(window.series)) == 2
    # the reader's arrangement: class maps off, the label map on, bone window
    for layer in list(window.layers):
        if layer.kind == "heatmap":
            window.layers.set_visible(layer.id, False)
    window.view_area.set_window(400, 1800)
    settle(qtbot, window)
    _type_impression(qtbot, window, "Probable fracture of V3; CT follow-up.", "Dr Ada Reader")
    window.impression.sign_button.click()

    dialog = window.make_report_dialog()
    qtbot.addWidget(dialog)
    dialog.show()
    assert "2 analysis run(s)" in dialog.contents.text()
    assert len(dialog.base.views) == 3
    captions = [c for c, _ in dialog.base.views]
    assert any(c.startswith("Axial 21/40, W 1800 L 400") for c in captions), captions
    assert all(c.endswith("layers: Vertebrae (fake)") for c in captions), captions

    dialog.refresh_preview()
    _wait_dialog(qtbot, dialog)
    assert dialog.last_error == ""
    assert 1 <= len(dialog.preview_pngs) <= 3 and dialog.preview_note == ""
    pixmaps = [lab.pixmap() for lab in dialog.page_labels]
    assert pixmaps and all(not p.isNull() for p in pixmaps)
    # 60 dpi A4 is about 496 x 702 pixels
    assert abs(pixmaps[0].width() - 496) <= 3 and abs(pixmaps[0].height() - 702) <= 3
    assert "Preview: first" in dialog.status.text()
    if KEEP:
        Path(KEEP).mkdir(parents=True, exist_ok=True)
        dialog.grab().save(str(Path(KEEP) / "report_dialog.png"))
        from app.ui.capture import capture_window, save_png

        save_png(capture_window(window), str(Path(KEEP) / "main_window.png"))

    out = tmp_path / "reports" / "ct-report.pdf"
    dialog.save(str(out))
    _wait_dialog(qtbot, dialog)
    assert dialog.last_saved == str(out) and dialog.last_error == ""
    assert not [p for p in out.parent.iterdir() if p.name != out.name]  # no temporaries left
    text = _pdftotext(out)
    assert "Probable fracture of V3; CT follow-up." in text
    assert "Signed off by Dr Ada Reader at" in text
    assert re.search(r"^\s*fracture\s.*0\.800\s+0\.500\s+fracture: present", text, re.M), text
    assert "POSITIVE" not in text
    assert re.search(r"V3\s.*0\.800", text)
    assert text.count("Task: fake-volume") == 2
    assert "viewer test phantom" in text  # identifiers: not anonymised by default

    # the page holding the reader's views shows the label map's colours (red, green, blue)
    pages = _page_count(out)
    views_pages = [
        n for n in range(1, pages + 1) if "layers: Vertebrae (fake)" in _pdftotext(out, n)
    ]
    assert views_pages
    rgb = _render_page(out, views_pages[0], tmp_path / "views_page")
    for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255)):
        assert colour_mask(rgb, colour, 40).sum() > 30, f"label colour {colour} missing"
    if KEEP:
        shutil.copy(out, Path(KEEP) / "ct-report.pdf")

    # options: anonymised, Letter, then Save rebuilds (not the A4 preview's bytes)
    dialog.anonymise.setChecked(True)
    dialog.page_size.setCurrentText("Letter")
    qtbot.waitUntil(lambda: dialog._preview_key == (True, "Letter"), timeout=WAIT_MS)
    _wait_dialog(qtbot, dialog)
    anon = tmp_path / "reports" / "anon.pdf"
    dialog.save(str(anon))
    _wait_dialog(qtbot, dialog)
    info = subprocess.run(["pdfinfo", str(anon)], capture_output=True, text=True).stdout
    assert "612 x 792" in info
    anon_text = _pdftotext(anon)
    assert "viewer test phantom" not in anon_text and "anonymised" in anon_text
    assert "Probable fracture of V3" in anon_text

    # an unwritable path is a message naming it, not a crash
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    dialog.save(str(blocker / "report.pdf"))
    _wait_dialog(qtbot, dialog)
    assert str(blocker) in dialog.last_error and "Report failed" in dialog.status.text()
    assert window.isVisible() and dialog.isVisible()
    dialog.done(0)


def test_export_without_analysis_and_without_pdftoppm(qtbot, window, ct_dir, tmp_path, monkeypatch):
    import app.ui.report_job as report_job
    from app.ui.report_dialog import ReportDialog

    open_and_wait(qtbot, window, ct_dir)
    real_which = shutil.which
    monkeypatch.setattr(
        report_job.shutil, "which", lambda n: None if n == "pdftoppm" else real_which(n)
    )
    # File -> Export report... (Ctrl+E) opens the dialog and starts its preview
    action = next(a for a in window.menuBar().actions()[0].menu().actions() if "report" in a.text())
    assert action.shortcut().toString() == "Ctrl+E"
    action.trigger()
    dialog = window.findChild(ReportDialog)
    assert dialog is not None and dialog.isVisible()
    assert "No analysis was run on this series" in dialog.contents.text()
    qtbot.waitUntil(lambda: dialog.preview_note != "", timeout=WAIT_MS)
    _wait_dialog(qtbot, dialog)
    assert dialog.preview_pngs == []
    assert "pdftoppm" in dialog.preview_note and "No analysis run" in dialog.preview_note
    assert "View: Axial" in dialog.preview_note
    out = tmp_path / "plain.pdf"
    dialog.save(str(out))
    _wait_dialog(qtbot, dialog)
    text = _pdftotext(out)
    assert "Views arranged by the reader" in text and "No impression entered." in text
    dialog.done(0)
