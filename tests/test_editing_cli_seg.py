"""``osteoview analyze ... --seg``: the task's label maps as DICOM SEG over the input series."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom

from app.cli import main
from app.editing.export import import_seg
from app.findings.io import read_result
from app.study.dicom_writer import write_series
from app.study.loader import load
from tests import fake_tasks
from tests.fake_tasks import ct_phantom


def test_analyze_seg_writes_a_seg_that_rebuilds_the_label_map(monkeypatch, tmp_path, capsys):
    fake_tasks.register(monkeypatch)
    write_series(ct_phantom(fracture_in=2), tmp_path / "ct", series_description="neck CT")
    out = tmp_path / "out"
    rc = main(["analyze", str(tmp_path / "ct"), "--task", "fake-ct", "--out", str(out), "--seg"])
    assert rc == 0, capsys.readouterr()
    segs = sorted(out.glob("seg-*.dcm"))
    assert segs, list(out.iterdir())
    seg = hd.seg.segread(segs[0])
    assert {str(d.SegmentAlgorithmType) for d in seg.SegmentSequence} == {"AUTOMATIC"}
    result = read_result(out / "findings.json")
    (labels,) = [o for o in result.overlays if o.__class__.__name__ == "LabelMapOverlay"]
    (series,) = load(tmp_path / "ct").all_series()
    back = import_seg(pydicom.dcmread(segs[0]), series)
    np.testing.assert_array_equal(back.image.array, labels.image.array)


def test_seg_with_anonymise_is_refused(monkeypatch, tmp_path, capsys):
    fake_tasks.register(monkeypatch)
    write_series(ct_phantom(fracture_in=2), tmp_path / "ct")
    argv = ["analyze", str(tmp_path / "ct"), "--task", "fake-ct", "--out", str(tmp_path / "o"),
            "--seg", "--anonymise"]  # fmt: skip
    assert main(argv) == 2
    assert "--seg cannot be combined with --anonymise" in capsys.readouterr().err
