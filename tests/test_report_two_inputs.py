"""The report of a two-input run: each input's key images carry only the overlays computed on
that input (the AP's heatmap on the AP, the lateral's mask on the lateral), in the PDF too."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from app.analysis.request import resolve_inputs
from app.analysis.runner import run_analysis
from app.findings.io import StudyRef
from app.report import ReportInput, ReportRun, build_report
from app.report.pdf import run_key_images
from app.study import load
from tests import fake_pair_task
from tests.fake_pair_task import FakePairAdapter
from tests.test_analysis_contract import _pair_study


def _red(rgb: np.ndarray) -> np.ndarray:
    """The lateral mask (255, 0, 0): full red on its outline, half red inside."""
    r, g, b = (rgb[..., c].astype(int) for c in range(3))
    return (r > 150) & (g < 90) & (b < 90)


def _cold_heat(rgb: np.ndarray) -> np.ndarray:
    """The AP heatmap's cold end (jet: dark blue) over the grey radiograph."""
    return rgb[..., 2].astype(int) - rgb[..., 0] > 40


def _coloured(rgb: np.ndarray) -> np.ndarray:
    """Pixels that are not grey: a map drawn over the grey radiograph (or a box, a mask)."""
    rgb = rgb.astype(int)
    return rgb.max(-1) - rgb.min(-1) > 40


@pytest.fixture()
def pair_report(monkeypatch, tmp_path):
    fake_pair_task.register(monkeypatch)
    adapter = FakePairAdapter()
    study = _pair_study(tmp_path / "s")
    loaded = load(study)
    request = resolve_inputs(adapter.spec, loaded, study, adapter=adapter)
    result = run_analysis(adapter, request)
    run = ReportRun(result, request["ap"], inputs=dict(request.inputs))
    return request, result, run


def test_each_input_has_key_images_with_only_its_overlays(pair_report):
    request, _, run = pair_report
    images = run_key_images(run)
    by_slot = {"ap": [], "lateral": []}
    for k in images:
        slot, _, caption = k.caption.partition(": ")
        by_slot[slot].append((caption, k.rgb))
    assert [c for c, _ in by_slot["ap"]] == [
        "Image with AP peak",
        "AP brightness explains damaged: absent (p=0.48, threshold 0.50)",
    ]
    assert [c for c, _ in by_slot["lateral"]] == ["Image with Lateral mask, Lateral box"]
    width = request["ap"].shape[2]
    heat_picture = by_slot["ap"][1][1][:, :width]  # without the colour bar on its right
    # the map is drawn only above its threshold (transparent below): there it colours the
    # film beyond the peak box the plain picture has
    plain = by_slot["ap"][0][1][:, :width]
    assert _coloured(heat_picture).sum() > _coloured(plain).sum() + 0.02 * plain.size / 3
    assert _red(heat_picture).sum() == 0
    for _, rgb in by_slot["ap"]:
        assert _red(rgb[:, :width]).sum() == 0, "the lateral mask is on an AP key image"
    lateral = by_slot["lateral"][0][1]
    assert _red(lateral).sum() > 50 and _cold_heat(lateral).sum() == 0
    # the mask's pixels are where the lateral's bright pixels are (labels = top 10 %)
    labels = next(o for o in run.result.overlays if o.name == "Lateral mask").image.array[0]
    assert (_red(lateral) <= (labels > 0)).all()


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm not installed")
def test_the_pdf_captions_each_key_image_with_its_input(pair_report, tmp_path):
    request, result, run = pair_report
    pdf = build_report(
        ReportInput(StudyRef.from_series(request.study, request["ap"], ""), [run]),
        tmp_path / "pair.pdf",
    )
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    assert "ap: Image with AP peak" in text and "lateral: Image with Lateral mask" in text
    assert "lateral: AP brightness" not in text
