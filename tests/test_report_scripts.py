"""Patient names in any script reach the PDF as text in reading order, drawn with real glyphs:
no ■ (reportlab's stand-in for a character its font lacks), no empty .notdef box; control
characters shown as U+FFFD; a 10,000-character name cut visibly instead of breaking the layout."""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from app.findings.io import StudyRef
from app.report import ReportInput, build_report
from app.report import fonts as report_fonts
from app.study.model import PatientInfo

pytestmark = pytest.mark.skipif(
    not (shutil.which("pdftotext") and shutil.which("pdftoppm")), reason="needs poppler-utils"
)

NAMES = {
    "arabic": "محمد علي",
    "hebrew": "דוד כהן",
    "chinese": "王小明",
    "japanese": "山田 太郎 やまだ",
    "korean": "이지현",  # no ㅁ: that jamo is itself a hollow square and would read as a box
}
DPI = 150


def _report(tmp_path: Path, name: str, tag: str = "r") -> Path:
    ref = StudyRef(study_uid="1.2.3", patient=PatientInfo(name=name, patient_id="PID-7"))
    return build_report(ReportInput(study=ref, runs=[]), tmp_path / f"{tag}.pdf")


def _text(pdf: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def _name_line(pdf: Path) -> str:
    """The patient-name value as pdftotext reads it, bidi marks dropped, Arabic presentation
    forms folded back to letters (NFKC)."""
    line = next(ln for ln in _text(pdf).splitlines() if "Patient name" in ln)
    value = line.split("Patient name", 1)[1]
    value = re.sub("[\u202a-\u202e\u2066-\u2069]", "", value)
    return unicodedata.normalize("NFKC", value).strip()


def _name_cell_pixels(pdf: Path, tmp_path: Path) -> np.ndarray:
    """Grey pixels of the name row's value cell on page 1 (located with pdftotext -bbox)."""
    xhtml = subprocess.run(
        ["pdftotext", "-bbox", "-f", "1", "-l", "1", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    words = re.findall(
        r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', xhtml
    )
    pairs = zip(words, words[1:], strict=False)
    label = next(w for w, nxt in pairs if w[4] == "Patient" and nxt[4] == "name")
    x_name_end = float(next(w for w in words if w[4] == "name")[2])
    y0, y1 = float(label[1]) - 3, float(label[3]) + 3
    subprocess.run(
        ["pdftoppm", "-png", "-r", str(DPI), "-f", "1", "-l", "1", str(pdf), str(tmp_path / "p")],
        check=True,
    )
    page = np.asarray(Image.open(next(tmp_path.glob("p-*.png"))).convert("L"))
    s = DPI / 72.0
    return page[int(y0 * s) : int(y1 * s), int((x_name_end + 20) * s) : int(560 * s)]


def _boxes(grey: np.ndarray) -> list[tuple[int, int]]:
    """Glyph-sized blobs that are filled squares (■, touching ones merge into one wide blob) or
    a hollow rectangle (.notdef): (height, width) of each."""
    ink = grey < 128
    labels, _ = ndimage.label(ink)
    found = []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        blob = labels[sl] == k
        h, w = blob.shape
        if h < 8 or w < 5 or w / h < 0.4:
            continue
        border = np.concatenate([blob[0], blob[-1], blob[:, 0], blob[:, -1]]).mean()
        interior = blob[2:-2, 2:-2].mean()
        if blob.mean() > 0.85:
            found += [(h, w)] * max(1, round(w / h))
        elif w / h <= 1.6 and border > 0.85 and interior < 0.1:
            found.append((h, w))
    return found


@pytest.fixture(autouse=True)
def _fresh_fonts():
    report_fonts.reset_for_tests()
    yield
    report_fonts.reset_for_tests()


def test_the_box_detector_sees_the_boxes_reportlab_draws_for_missing_glyphs(tmp_path):
    """The check below can fail: Helvetica alone (the old report) gives ■ for each letter."""
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table

    pdf = tmp_path / "old.pdf"
    st = getSampleStyleSheet()["BodyText"]
    table = Table([[Paragraph("Patient name", st), Paragraph(NAMES["arabic"], st)]])
    SimpleDocTemplate(str(pdf)).build([table])
    assert "■" in _text(pdf)
    assert len(_boxes(_name_cell_pixels(pdf, tmp_path))) >= 4


@pytest.mark.parametrize("script", sorted(NAMES))
def test_names_come_out_as_text_in_reading_order_without_boxes(script, tmp_path):
    fonts = report_fonts.report_fonts()
    if script in ("arabic", "hebrew") and fonts.sans is None:
        pytest.skip("DejaVu Sans is not installed (fonts-dejavu-core)")
    if script in ("chinese", "japanese", "korean") and not fonts.cjk:
        pytest.skip("no TrueType CJK font installed (fonts-wqy-microhei)")
    pdf = _report(tmp_path, NAMES[script])
    assert "■" not in _text(pdf)
    assert _name_line(pdf) == NAMES[script]
    assert _boxes(_name_cell_pixels(pdf, tmp_path)) == []


def test_control_characters_are_shown_as_replacement_characters(tmp_path):
    pdf = _report(tmp_path, "SMITH\x00JOHN\x1b[31m")
    line = _name_line(pdf)
    assert line == "SMITH\ufffdJOHN\ufffd[31m"
    assert "■" not in _text(pdf)


def test_a_bidi_override_cannot_disguise_a_name(tmp_path):
    """U+202E would draw 'EVIL' as 'LIVE'; it is shown as U+FFFD and the letters keep their order."""
    pdf = _report(tmp_path, "\u202eEVIL")
    assert _name_line(pdf) == "\ufffdEVIL"


def test_a_long_right_to_left_name_wraps_and_still_reads_from_its_start(tmp_path):
    if report_fonts.report_fonts().sans is None:
        pytest.skip("DejaVu Sans is not installed")
    words = ["שרה", "לוי", "בן", "דוד", "כהן"] * 12
    pdf = _report(tmp_path, " ".join(words))
    text = unicodedata.normalize("NFKC", re.sub("[\u202a-\u202e]", "", _text(pdf)))
    lines = [ln.strip() for ln in text.splitlines() if any(w in ln for w in words)]
    assert len(lines) >= 2  # it wrapped
    joined = " ".join(ln.replace("Patient name", "").strip() for ln in lines)
    assert joined.split()[:10] == words[:10]  # the first line holds the first words


def test_a_ten_thousand_character_name_is_cut_visibly(tmp_path):
    name = "Z" * 10_000
    pdf = _report(tmp_path, name)
    text = _text(pdf)
    assert "9,700 more characters not shown" in text
    pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert re.search(r"Pages:\s+1\b", pages)


def test_without_any_font_file_the_report_still_builds_and_marks_what_it_cannot_draw(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("OSTEOVIEW_FONT_DIRS", str(tmp_path / "no-fonts"))
    report_fonts.reset_for_tests()
    fonts = report_fonts.report_fonts()
    assert fonts.sans is None and fonts.cjk == []
    pdf = _report(tmp_path, "דוד 王小明")
    # CJK by a CID font the viewer supplies (poppler only with its poppler-data language pack)
    assert b"/BaseFont /STSong-Light" in pdf.read_bytes()
    assert "???" in _text(pdf)  # Hebrew with no font for it: visible marks, never a box
    assert "■" not in _text(pdf)
