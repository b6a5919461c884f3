"""Re-running the cervical task on a corrected vertebra label map: stage 2 only, on the map the
annotator gave (slot ``vertebrae``, never filled automatically)."""

from __future__ import annotations

import numpy as np
import pytest

from app.analysis.request import resolve_inputs
from app.analysis.runner import run_analysis
from app.engine.adapter import InputRejected
from app.findings.types import LabelMapOverlay
from app.study import load
from app.study.geometry import ImageVolume
from app.study.model import Series
from models.cervical_fracture.adapter import CervicalFractureAdapter
from models.cervical_fracture.phantom import generate, write_study


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    adapter = CervicalFractureAdapter()
    folder = write_study(generate(900_011), tmp_path_factory.mktemp("cs") / "study")
    loaded = load(folder)
    request = resolve_inputs(adapter.spec, loaded, folder, adapter=adapter)
    assert "vertebrae" not in request.inputs  # never taken from the study by itself
    return adapter, request, run_analysis(adapter, request)


def _corrected(result, ct: Series, edit=None) -> Series:
    lm = next(o for o in result.overlays if isinstance(o, LabelMapOverlay))
    labels = np.array(lm.image.array)
    if edit is not None:
        edit(labels)
    return Series("edited", "SEG", "corrected vertebrae", ct.image.with_array(labels),
                  kind="labelmap")  # fmt: skip


def test_stage2_reruns_on_the_corrected_map_without_stage1(first_run):
    adapter, request, before = first_run
    ct = request["ct"]
    corrected = _corrected(before, ct)
    again = run_analysis(
        adapter,
        type(request)(request.task_id, {"ct": ct, "vertebrae": corrected}, request.study,
                      request.source, {"ct": "auto", "vertebrae": "edited"}),
    )  # fmt: skip
    assert "stage1_segmentation" in before.provenance.timings_s
    assert "stage1_segmentation" not in again.provenance.timings_s
    assert "corrected vertebrae" in again.provenance.timings_s
    assert again.provenance.inputs["vertebrae"]["origin"] == "edited"
    p0 = {f.label: f.probability for f in before.findings}
    p1 = {f.label: f.probability for f in again.findings}
    for name in ("C1", "C2", "C3", "C4", "C5", "C6", "C7"):
        assert abs(p0[name] - p1[name]) < 1e-4, name


def test_a_corrected_map_changes_what_stage2_reads(first_run):
    adapter, request, before = first_run
    ct = request["ct"]

    def move_c3_into_c4(labels):
        labels[labels == 3] = 4

    corrected = _corrected(before, ct, move_c3_into_c4)
    req = type(request)(request.task_id, {"ct": ct, "vertebrae": corrected}, request.study)
    with pytest.raises(InputRejected, match="C3"):  # C3 is gone: not given probabilities
        run_analysis(adapter, req)


def test_a_map_on_another_grid_is_refused(first_run):
    adapter, request, before = first_run
    ct = request["ct"]
    grid = ImageVolume(np.zeros((2, 4, 4), np.uint8), (1.0, 1.0, 1.0), np.zeros(3), np.eye(3))
    small = Series("x", "SEG", "wrong grid", grid, kind="labelmap")
    req = type(request)(request.task_id, {"ct": ct, "vertebrae": small}, request.study)
    with pytest.raises(InputRejected, match="CT's own grid"):
        run_analysis(adapter, req)
