"""``osteoview analyze --explain``: the positive findings' maps written beside findings.json
(NPY + PNG with geometry), recorded in extra.explanations, shown in the report; which findings
are explained; methods a task lacks refused before any work."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from app.analysis.explain import explain_positives
from app.cli import main
from app.engine.adapter import Adapter, AnalysisRequest, ExplainUnavailable, ModelOutput
from app.engine.task import InputSlot, TaskSpec
from app.findings.io import geometry_from_json
from app.findings.types import AnalysisResult, Finding, HeatmapOverlay, Provenance
from app.study import load
from app.study.geometry import ImageVolume
from app.study.model import Series

REPO = Path(__file__).resolve().parents[1]
FEMUR = REPO / "resources/demo/femur-ao/trochanteric_A2_left"
LUMBAR = REPO / "resources/demo/lumbar-mri/01_normal"


@pytest.fixture(autouse=True)
def _secret(monkeypatch, tmp_path):
    monkeypatch.setenv("OSTEOVIEW_SECRET_FILE", str(tmp_path / "secret" / "pseudonym.key"))


def test_femur_shap_maps_are_written_and_reported(tmp_path, capsys):
    from app.engine.shap_maps import warm_up

    warm_up()
    out = tmp_path / "out"
    rc = main(["analyze", str(FEMUR), "--task", "femur-ao", "--out", str(out),
               "--explain", "shap", "--report"])  # fmt: skip
    printed = capsys.readouterr().out
    assert rc == 0, printed
    doc = json.loads((out / "findings.json").read_text())
    film = load(FEMUR).all_series()[0].image
    shap_maps = {o["name"]: o for o in doc["overlays"] if o["name"].startswith("SHAP")}
    # the left femur is fractured (A2): fracture, type A and subtype A2 are positive; the right
    # femur's positive "normal" type sits under a negative fracture call and is not explained
    explained = {e["finding"]: e for e in doc["extra"]["explanations"]}
    assert set(explained) == {"left fracture", "left A", "left A2"}
    assert len(shap_maps) == 3 and all("left" in name for name in shap_maps)
    for o in shap_maps.values():
        assert o["type"] == "heatmap" and o["slot"] == "radiograph"
        assert o["colormap"] == "coolwarm" and o["value_range"][0] == -o["value_range"][1]
        values = np.load(out / o["npy"])
        assert values.shape == (1, 192, 192) and (values < 0).any() and (values > 0).any()
        assert (out / o["png"]).stat().st_size > 0
        # on the left femur's window: the image's right half (radiological convention)
        geometry = geometry_from_json(o["geometry"])
        assert geometry.shape == (1, 192, 192)
        first = film.world_to_index(geometry.index_to_world(np.array([-0.5, -0.5, 0.0])))
        last = film.world_to_index(geometry.index_to_world(np.array([191.5, 191.5, 0.0])))
        assert film.shape[2] / 2 - 1 <= first[0] < last[0] <= film.shape[2]
        assert o["value_range"][1] == pytest.approx(float(np.abs(values).max()), rel=1e-5)
    assert "explained left A2 by shap: SHAP left A2" in printed
    assert doc["timings_s"].get("explain_s", 0) > 0
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(out / "report.pdf"), "-"],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert "SHAP left fracture" in " ".join(text.split())


def test_a_method_the_task_lacks_is_refused_before_loading(tmp_path, capsys):
    # the lumbar task has no explanation method (calcaneus, the example before, now has SHAP)
    rc = main(["analyze", str(LUMBAR), "--task", "lumbar-mri", "--out",
               str(tmp_path / "o"), "--explain", "shap"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "lumbar-mri has no explanation methods" in err
    assert not (tmp_path / "o").exists()


# ---- which findings explain_positives picks (a stub adapter: no model, no shap) ---------------
SPEC = TaskSpec("stub", "Stub", (InputSlot("image", "an image"),), "tests:none")


class _Stub(Adapter):
    spec = SPEC
    paper = ""
    labels = ()
    explain_methods = ("shap", "cam")

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def infer(self, request, timer) -> ModelOutput:  # pragma: no cover - not run here
        raise NotImplementedError

    def explain(self, request, result, finding, method, timer):
        self.asked.append((f"{finding.side} {finding.label}".strip(), method))
        if method == "cam":
            raise ExplainUnavailable("no CAM for this one")
        grid = ImageVolume(np.zeros((1, 4, 4), np.float32))
        return [HeatmapOverlay(f"{method} {finding.label}", image=grid, label=finding.label)]


def _request_and_result(findings, fill: float = 0.0):
    # explanations are cached by input hash: each case gets its own image
    pixels = np.full((1, 4, 4), fill, np.float32)
    series = Series("1.2", "DX", "", ImageVolume(pixels), "projection")
    request = AnalysisRequest("stub", {"image": series})
    prov = Provenance("stub", "", "", {}, "", "")
    return request, AnalysisResult("stub", findings, [], prov)


def test_positives_under_positive_parents_else_the_top_finding():
    fx = [
        Finding("fracture", 0.9, side="left"),
        Finding("A", 0.8, parent="fracture", side="left"),
        Finding("fracture", 0.1, side="right"),
        Finding("normal", 0.9, parent="fracture", side="right"),  # detail of a negative call
    ]
    stub = _Stub()
    request, result = _request_and_result(fx)
    added = explain_positives(stub, request, result, ["all"])
    assert stub.asked == [("left fracture", "shap"), ("left fracture", "cam"),
                          ("left A", "shap"), ("left A", "cam")]  # fmt: skip
    assert [o.name for o in added] == ["shap fracture", "shap A"] and result.overlays == added
    records = result.extra["explanations"]
    assert [r.get("unavailable") for r in records] == [None, "no CAM for this one"] * 2
    # nothing positive: the most probable top-level finding, not a child
    stub = _Stub()
    request, result = _request_and_result([Finding("fracture", 0.3, side="left"),
                                           Finding("normal", 0.7, parent="fracture", side="left"),
                                           Finding("fracture", 0.2, side="right")], 1.0)  # fmt: skip
    explain_positives(stub, request, result, ["shap"])
    assert stub.asked == [("left fracture", "shap")]
