"""The PDF report: real text, overlay colours on the key-image page, anonymisation, paper sizes, dpi."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import app
from app.analysis.runner import run_on_series
from app.findings import DEMO_DISCLAIMER
from app.findings.io import StudyRef, read_findings, write_result
from app.report import ReportInput, ReportRun, build_report, ordered_findings
from app.study.geometry import ImageVolume
from app.study.model import PatientInfo, Series, Study
from tests.fake_tasks import FakeCTAdapter, FakeXrayAdapter, ct_phantom, radiograph_phantom


@pytest.fixture(autouse=True)
def _secret_in_tmp(monkeypatch, tmp_path):
    """Anonymising creates the installation's pseudonym secret: never in the real home."""
    monkeypatch.setenv("OSTEOVIEW_SECRET_FILE", str(tmp_path / "secret" / "pseudonym.key"))


PATIENT = PatientInfo(
    name="DOE^JANE",
    patient_id="P-4711",
    birth_date="19800203",
    sex="F",
    study_date="20260315",
    accession="ACC-998",
)


def _ct():
    series = Series(
        "1.2.3.4", "CT", "neck", ct_phantom(fracture_in=2), kind="volume", body_part="CSPINE"
    )
    study = Study("1.2.3", PATIENT, [series])
    return StudyRef.from_series(study, series, "/data/ct"), series


def _xr():
    image = ImageVolume(radiograph_phantom().astype(np.float32), (1.0, 0.2, 0.2))
    series = Series("1.2.9", "DX", "hip", image, kind="projection", body_part="HIP")
    return StudyRef.from_series(Study("1.2.8", PATIENT, [series]), series), series


def _text(pdf: Path, page: int | None = None) -> str:
    args = ["pdftotext", "-layout"]
    if page is not None:
        args += ["-f", str(page), "-l", str(page)]
    return subprocess.run([*args, str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def _pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1))


def _page_png(pdf: Path, page: int, tmp_path: Path, dpi: int = 100) -> np.ndarray:
    prefix = tmp_path / f"page{page}"
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            str(dpi),
            "-f",
            str(page),
            "-l",
            str(page),
            "-png",
            "-singlefile",
            str(pdf),
            str(prefix),
        ],
        check=True,
    )
    return np.asarray(Image.open(f"{prefix}.png").convert("RGB")).astype(int)


def _count_colour(rgb: np.ndarray, colour, tol: int = 30) -> int:
    return int(np.all(np.abs(rgb - np.array(colour)) <= tol, axis=-1).sum())


def _first_word(cells: list[str]) -> str:
    """The label of a findings-table row, without the hierarchy marker."""
    return [c.strip("\u203a") for c in cells if c.strip("\u203a")][0]


def _key_image_page(pdf: Path) -> int:
    for page in range(1, _pages(pdf) + 1):
        if "Key images" in _text(pdf, page):
            return page
    raise AssertionError("no key-image page")


@pytest.fixture(scope="module")
def ct_report(tmp_path_factory):
    ref, series = _ct()
    result = run_on_series(FakeCTAdapter(), series)
    out = tmp_path_factory.mktemp("ct") / "report.pdf"
    build_report(
        ReportInput(
            ref,
            [ReportRun(result, series)],
            impression="Fracture of V2.\nNo other finding.",
            reader_name="Dr A. Reader",
            signed_off="2026-11-25 15:30 UTC",
        ),
        out,
    )
    return out, result


def test_ct_report_text_holds_identifiers_provenance_and_findings(ct_report):
    pdf, result = ct_report
    text = _text(pdf)
    for expected in (
        "DOE^JANE",
        "P-4711",
        "19800203",
        "20260315",
        "ACC-998",
        "CSPINE",
        "fake-ct test model version 0.0-test",
        "ab" * 32,
        DEMO_DISCLAIMER,
        "Fracture of V2.",
        "Dr A. Reader",
        "2026-11-25 15:30 UTC",
        f"OsteoView {app.__version__}",
    ):
        assert expected in text, expected
    pages = _pages(pdf)
    assert f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text
    # Findings table rows: label, probability, threshold, decision in words, children after
    # their parent (the fake task names no abnormality: its labels are present or absent).
    assert "POSITIVE" not in text
    rows = [
        line.split()
        for line in text.splitlines()
        if re.search(r"\b(present|absent)$", line.strip())
    ]
    labels = [_first_word(r) for r in rows]
    assert labels == ["fracture", "V1", "V2", "V3"]
    v2 = next(r for r in rows if "V2" in r)
    assert (
        f"{result.finding('V2').probability:.3f}" in v2
        and "0.500" in v2
        and v2[-2:] == ["V2:", "present"]
    )
    assert next(r for r in rows if "V1" in r)[-2:] == ["V1:", "absent"]


def test_ct_key_images_show_the_flagged_vertebra_in_its_colour(ct_report, tmp_path):
    pdf, _ = ct_report
    page = _key_image_page(pdf)
    text = _text(pdf, page)
    assert "axial through V2" in text and "sagittal through V2" in text
    assert "through V1" not in text  # only flagged regions get key images
    rgb = _page_png(pdf, page, tmp_path)
    assert _count_colour(rgb, (0, 255, 0)) > 200  # V2's outline (green) in both views
    # The sagittal view shows the neighbours too, in their own colours.
    assert _count_colour(rgb, (255, 0, 0)) > 50 and _count_colour(rgb, (0, 0, 255)) > 50


def test_images_are_at_least_150_dpi_and_paper_sizes(ct_report, tmp_path):
    pdf, result = ct_report
    listing = subprocess.run(
        ["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True
    ).stdout
    ppi = [
        (int(cols[12]), int(cols[13]))
        for cols in (line.split() for line in listing.splitlines()[2:])
    ]
    assert ppi and all(x >= 150 and y >= 150 for x, y in ppi), ppi
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "(A4)" in info
    ref, series = _ct()
    letter = build_report(
        ReportInput(ref, [ReportRun(result, series)], page_size="Letter"), tmp_path / "l.pdf"
    )
    info = subprocess.run(
        ["pdfinfo", str(letter)], capture_output=True, text=True, check=True
    ).stdout
    assert "612 x 792 pts (letter)" in info
    with pytest.raises(ValueError, match="A4 or Letter"):
        build_report(ReportInput(ref, [], page_size="A3"), tmp_path / "x.pdf")


def test_anonymised_report_has_no_identifier(tmp_path):
    ref, series = _ct()
    result = run_on_series(FakeCTAdapter(), series)
    pdf = build_report(
        ReportInput(ref, [ReportRun(result, series)], anonymise=True), tmp_path / "a.pdf"
    )
    text = _text(pdf)
    for ident in ("DOE^JANE", "P-4711", "19800203", "20260315", "ACC-998", "1.2.3.4"):
        assert ident not in text, ident
    assert "anonymised" in text and ref.anonymous_id() in text
    assert "V2" in text and DEMO_DISCLAIMER in text
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "DOE" not in info


def test_radiograph_report_hierarchy_heatmap_boxes_and_viewer_views(tmp_path):
    ref, series = _xr()
    result = run_on_series(FakeXrayAdapter(), series)
    result.overlays[0].opacity = 1.0  # the map's hot end then shows in its pure colour
    view = np.zeros((300, 400, 3), dtype=np.uint8)
    view[:, :] = (255, 0, 255)
    pdf = build_report(
        ReportInput(ref, [ReportRun(result, series)], views=[("Reader's arranged view", view)]),
        tmp_path / "xr.pdf",
    )
    text = _text(pdf)
    assert "Views arranged by the reader" in text and "Reader's arranged view" in text
    assert "No impression entered." in text and "Not signed off" in text
    rows = [
        line.split() for line in text.splitlines() if re.search(r"(present|absent)$", line.strip())
    ]
    right = [_first_word(r) for r in rows if "right" in r]
    assert right == ["fracture", "A", "A1", "B"]  # A1 refines A; B is A's sibling
    assert "CAM fracture explains right: fracture present" in text
    page = _key_image_page(pdf)
    rgb = _page_png(pdf, page, tmp_path)
    assert _count_colour(rgb, (255, 255, 0), tol=40) > 30  # the boxes
    assert _count_colour(rgb, (128, 0, 0), tol=40) > 20  # the heatmap's hot end (jet)
    views_page = next(
        p for p in range(1, _pages(pdf) + 1) if "Reader's arranged view" in _text(pdf, p)
    )
    assert _count_colour(_page_png(pdf, views_page, tmp_path), (255, 0, 255)) > 1000


def test_report_from_findings_json_matches_the_live_result(tmp_path):
    """The reader restores a run well enough to report it later (e.g. after a batch)."""
    ref, series = _ct()
    result = run_on_series(FakeCTAdapter(), series)
    write_result(result, tmp_path / "out", ref)
    saved = read_findings(tmp_path / "out")
    pdf = build_report(
        ReportInput(saved.study, [ReportRun(saved.result, series)]), tmp_path / "r.pdf"
    )
    rgb = _page_png(pdf, _key_image_page(pdf), tmp_path)
    assert _count_colour(rgb, (0, 255, 0)) > 200
    assert "DOE^JANE" in _text(pdf)


def test_hierarchy_ordering_handles_sides_and_dangling_parents():
    from app.findings.types import Finding

    fs = [
        Finding("A", 0.9, side="left", parent="fracture"),
        Finding("fracture", 0.9, side="right"),
        Finding("fracture", 0.9, side="left"),
        Finding("A", 0.1, side="right", parent="fracture"),
        Finding("orphan", 0.2, parent="missing"),
    ]
    order = [(f.label, f.side, d) for f, d in ordered_findings(fs)]
    assert order == [
        ("fracture", "right", 0),
        ("A", "right", 1),
        ("fracture", "left", 0),
        ("A", "left", 1),
        ("orphan", "", 0),
    ]


def test_key_images_follow_the_result_not_the_task():
    """Hidden class maps still illustrate positive findings; flagged label-map regions get slices."""
    from app.report import standard_key_images

    _, xr = _xr()
    result = run_on_series(FakeXrayAdapter(), xr)
    result.overlays[0].visible = False
    captions = [k.caption for k in standard_key_images(result, xr)]
    assert captions == [
        "Image with Boxes from CAM",
        "CAM fracture explains right: fracture present (p=1.00, threshold 0.50)",
    ]
    assert all(k.rgb.dtype == np.uint8 and k.rgb.ndim == 3 for k in standard_key_images(result, xr))

    _, ct = _ct()
    result = run_on_series(FakeCTAdapter(), ct)
    result.task_id = "a-task-added-later"
    for (
        f
    ) in result.findings:  # region ids may be label values (named by the table) as well as names
        f.region_id = {"V1": "1", "V2": "2", "V3": "3"}.get(f.label, "")
    result.finding("V3").probability = 0.8
    captions = [k.caption for k in standard_key_images(result, ct)]
    assert [c.rsplit(": ", 1)[1] for c in captions] == [
        "axial through V2",
        "sagittal through V2",
        "axial through V3",
        "sagittal through V3",
    ]
    for f in result.findings:
        f.probability = 0.0
    captions = [k.caption for k in standard_key_images(result, ct)]
    assert captions == [
        "Vertebrae: axial overview through V2 (no region flagged)",
        "Vertebrae: sagittal overview through V2 (no region flagged)",
    ]
