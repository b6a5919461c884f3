"""The reader's measurements are written in the report's text."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from app.findings.io import StudyRef
from app.report import ReportInput, build_report
from app.study.geometry import ImageVolume
from app.viewstate.measurements import MeasurementList, measure, measurement_lines
from app.viewstate.planes import native_plane


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler) missing")
def test_measurements_section_lists_each_measurement(tmp_path):
    vol = ImageVolume(np.arange(48, dtype=np.int16).reshape(6, 8), (1.0, 2.0, 0.5))
    plane = native_plane(vol)
    ml = MeasurementList()
    ml.add(measure("angle", [[1, 0, 0], [0, 0, 0], [0, 1, 0]], plane, vol))
    ml.add(measure("rectangle", [[0.75, 1, 0], [2.75, 7, 0]], plane, vol, modality="CT"))
    lines = measurement_lines(list(ml))
    pdf = build_report(ReportInput(StudyRef(), [], measurements=lines), tmp_path / "m.pdf")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    assert "Measurements" in text
    assert "Angle 1 (native slice 0): 90.0°" in text
    assert "Rectangle 1" in text and "HU" in text and "area 12.0 mm²" in text
    # no measurements, no section
    pdf = build_report(ReportInput(StudyRef(), []), tmp_path / "n.pdf")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    assert "Measurements" not in text
