"""The tag browser's reading of a shown file's header (no Qt): DICOM with sequences and bulk
data elided, NIfTI and plain images, bad files in words."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from app.study.dicom_writer import write_series
from app.study.geometry import ImageVolume
from app.study.header_dump import dicom_rows, file_at_slice, read_header


def test_sequences_nest_and_bulk_values_are_elided():
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    item = Dataset()
    item.CodeValue = "T-D0146"
    ds.AnatomicRegionSequence = Sequence([item, Dataset()])
    ds.add_new(0x00291010, "OB", b"\x00" * 5000)  # a private blob
    ds.add_new(0x00291011, "OB", b"\x01\x02")  # short: shown
    listed = dicom_rows(ds)
    rows = {r.name: r for r in listed}
    assert rows["PatientName"].value == "Doe^Jane"
    seq = rows["AnatomicRegionSequence"]
    assert seq.vr == "SQ" and len(seq.items) == 2
    assert seq.items[0][0].name == "CodeValue" and seq.items[0][0].value == "T-D0146"
    blob = next(r for r in listed if r.tag == "(0029,1010)")
    assert blob.value == "<5000 bytes, not shown>"
    short = next(r for r in listed if r.tag == "(0029,1011)")
    assert "bytes, not shown" not in short.value
    # the filter finds a sequence by what is inside it
    assert seq.matches("t-d0146") and not rows["PatientName"].matches("t-d0146")


def test_written_ct_series_and_the_file_at_a_slice(tmp_path):
    arr = np.zeros((6, 8, 8), np.int16)
    vol = ImageVolume(arr, (2.0, 1.0, 1.0), np.array([0.0, 0.0, 50.0]))
    paths = sorted(str(p) for p in write_series(vol, tmp_path / "ct", "CT"))
    what, rows = read_header(paths[0])
    assert what.startswith("DICOM header")
    names = {r.name: r.value for r in rows}
    assert names["Modality"] == "CT"
    assert "PixelData" not in names
    assert "TransferSyntaxUID" in names  # the file meta is shown too
    # slice k = 4 lies at z = 58 mm
    found = file_at_slice(paths, np.array([3.0, 3.0, 58.0]), np.array([0.0, 0.0, 1.0]))
    z = float(pydicom.dcmread(found, stop_before_pixels=True).ImagePositionPatient[2])
    assert z == pytest.approx(58.0)


def test_non_dicom_and_bad_files(tmp_path, real_data):
    nii = real_data / "totalsegmentator" / "example_ct_sm.nii.gz"
    if nii.is_file():
        what, rows = read_header(nii)
        assert what == "NIfTI header"
        assert any(r.name == "pixdim" for r in rows)
    from PIL import Image

    png = tmp_path / "x.png"
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(png)
    what, rows = read_header(png)
    assert what == "PNG image"
    assert {r.name: r.value for r in rows}["size"] == "7 x 5"
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a dicom file at all")
    with pytest.raises(ValueError, match="junk.dcm"):
        read_header(junk)
    with pytest.raises(ValueError, match="missing.dcm"):
        read_header(tmp_path / "missing.dcm")
