"""A 3-D heatmap on a volume (a cervical vertebra's SHAP map) as report key images: the axial and
sagittal slice through the map's peak, drawn by the one renderer, with its colour bar; the label
map pictures are drawn without it. End to end: ``osteoview analyze --explain shap --report`` on
the cervical demo puts the SHAP map's picture in the PDF."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.analysis.request import single_input
from app.analysis.runner import run_analysis
from app.findings.types import HeatmapOverlay, LabelMapOverlay
from app.report.key_images import heatmap_peak, render_slice, standard_key_images
from app.study import load
from app.study.geometry import ImageVolume

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "resources/demo/cervical-fracture/phantom_fracture_C2_C6"


@pytest.fixture(scope="module")
def cervical():
    from models.cervical_fracture.adapter import CervicalFractureAdapter

    adapter = CervicalFractureAdapter()
    series = load(STUDY).all_series()[0]
    return series, run_analysis(adapter, single_input(adapter, series))


def _blob_map(series, centre_kji, sign=1.0) -> HeatmapOverlay:
    """A signed Gaussian blob on a 20 x 40 x 40 block of the CT's grid (a coarse 3-D map)."""
    k0, j0, i0 = (c - h for c, h in zip(centre_kji, (10, 20, 20), strict=True))
    kk, jj, ii = np.mgrid[0:20, 0:40, 0:40]
    blob = np.exp(-((kk - 10) ** 2 + (jj - 20) ** 2 + (ii - 20) ** 2) / 200.0).astype(np.float32)
    ct = series.image
    origin = ct.index_to_world(np.array([i0, j0, k0], float))
    grid = ImageVolume(sign * blob, ct.spacing, origin, ct.direction.copy())
    return HeatmapOverlay(
        name="SHAP C2 (test blob)", image=grid, colormap="coolwarm", value_range=(-1.0, 1.0),
        label="C2", visible=True, opacity=0.5, slot="ct",
    )  # fmt: skip


def _reddish(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., n].astype(int) for n in range(3))
    return (r - b > 30) & (r - g > 30)


def _bluish(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., n].astype(int) for n in range(3))
    return (b - r > 30) & (b - g > 20)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_a_3d_map_is_cut_through_its_peak(cervical, sign):
    series, result = cervical
    centre = (40, 60, 64)  # (k, j, i) of the CT
    hm = _blob_map(series, centre, sign)
    point, k = heatmap_peak(hm, series)
    assert k == centre[0]
    assert np.allclose(series.image.world_to_index(point), centre[::-1], atol=1e-6)
    images = standard_key_images(replace(result, overlays=[hm, *result.overlays]), series)
    axial, sagittal = images[:2]
    assert axial.caption.startswith("SHAP C2 (test blob) explains C2")
    assert f"axial slice {centre[0] + 1} of {series.shape[0]}" in axial.caption
    assert "sagittal through the map's peak" in sagittal.caption
    plain = [o for o in result.overlays if o.visible]
    without = render_slice(series, plain, "axial", point, None, 768)
    # the picture is the slice drawn with the map, then the colour bar on its right
    w = without.shape[1]
    assert axial.rgb.shape[0] == without.shape[0] and axial.rgb.shape[1] > w + 12
    tinted = _reddish if sign > 0 else _bluish
    map_px = tinted(axial.rgb[:, :w]) & ~tinted(without)
    assert map_px.sum() > 100  # the blob, drawn where it lies
    rows, cols = np.nonzero(map_px)
    # the blob's centre column (i = 64) on a 128-column CT drawn 768 wide: near the middle
    assert abs(cols.mean() - (centre[2] + 0.5) * w / series.shape[2]) < w * 0.05
    # the label-map pictures come after, without the heatmap
    rest = images[2:]
    assert rest and not any("SHAP" in k.caption for k in rest)


def test_hidden_or_2d_heatmaps_add_no_volume_pictures(cervical):
    series, result = cervical
    hm = replace(_blob_map(series, (40, 60, 64)), visible=False)
    images = standard_key_images(replace(result, overlays=[hm, *result.overlays]), series)
    assert not any("SHAP" in k.caption for k in images)


def test_cli_report_has_the_cervical_shap_key_image(tmp_path, capsys, monkeypatch):
    """The PDF's key image is the product renderer's picture of the map (pixel for pixel), and
    it differs from the slice without the map where the map is."""
    from app.cli import main
    from app.engine.shap_maps import warm_up
    from app.findings.io import read_result

    monkeypatch.setenv("OSTEOVIEW_SECRET_FILE", str(tmp_path / "secret" / "pseudonym.key"))
    warm_up()
    out = tmp_path / "out"
    rc = main(["analyze", str(STUDY), "--task", "cervical-fracture", "--out", str(out),
               "--explain", "shap", "--report"])  # fmt: skip
    printed = capsys.readouterr().out
    assert rc == 0, printed
    pdf = out / "report.pdf"
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    assert "SHAP C2" in text and "through the map's peak" in text
    subprocess.run(["pdfimages", "-png", str(pdf), str(tmp_path / "img")], check=True)
    pictures = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(tmp_path.glob("img-*"))]

    result = read_result(out / "findings.json")
    series = load(STUDY).all_series()[0]
    maps = [o for o in result.overlays if isinstance(o, HeatmapOverlay)]
    assert maps and all(hm.image.shape[0] > 1 for hm in maps)  # 3-D maps of stage 2's input
    plain = [o for o in result.overlays if isinstance(o, LabelMapOverlay) and o.visible]
    # the report enlarges a small picture by whole pixels (nearest) for print: undone here
    shrunk = [p[:: max(1, p.shape[0] // 128), :: max(1, p.shape[0] // 128)] for p in pictures]
    for hm in maps:
        point, _ = heatmap_peak(hm, series)
        drawn = render_slice(series, [hm, *plain], "axial", point, None, 768)
        without = render_slice(series, plain, "axial", point, None, 768)
        h, w = drawn.shape[:2]
        same_size = [p for p in shrunk if p.shape[0] == h and p.shape[1] > w]
        assert same_size, [p.shape for p in pictures]
        diffs = [np.abs(p[:, :w].astype(int) - drawn).max(-1) for p in same_size]
        best = int(np.argmin([float((d > 8).mean()) for d in diffs]))
        assert (diffs[best] > 8).mean() < 0.005, hm.name  # the PDF's picture is the renderer's
        changed = np.abs(same_size[best][:, :w].astype(int) - without).max(-1) > 10
        # the map is drawn on it (68 and 96 pixels by more than 10 levels for C2 and C6)
        assert changed.sum() > 30, hm.name
    # a map explaining patient_overall through its vertebra is that vertebra's map: shown once
    shown = [c for c in text.split("\n") if "axial slice" in c]
    assert len(shown) == len({hm.label for hm in maps}), shown
