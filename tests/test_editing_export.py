"""Saving edited label maps: NIfTI in RAS, DICOM SEG (highdicom, dciodvfy), foreign SEG import."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from app.editing.editor import LabelEditor
from app.editing.export import import_seg, save_nifti, save_seg
from app.findings.types import LabelMapOverlay
from app.study.dicom_writer import write_series
from app.study.geometry import ImageVolume
from app.study.loader import load
from app.study.model import Series

LIVER = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "pydicom_data"


@pytest.fixture()
def ct_series(tmp_path) -> Series:
    a = np.deg2rad(15)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    rng = np.random.default_rng(5)
    vol = ImageVolume(rng.integers(-300, 900, (7, 32, 28)).astype(np.float32), (2.5, 0.8, 0.7),
                      np.array([30.0, -12.0, 80.0]), rot)  # fmt: skip
    write_series(vol, tmp_path / "ct", "CT")
    (series,) = load(tmp_path / "ct").all_series()
    return series


def _model_output(series: Series) -> LabelMapOverlay:
    labels = np.zeros(series.image.shape, np.uint8)
    labels[1:4, 5:15, 4:12] = 1
    labels[3:6, 18:28, 10:20] = 2
    table = {1: ("C2", (255, 0, 0)), 2: ("C3", (0, 200, 0))}
    return LabelMapOverlay("Vertebrae", image=series.image.with_array(labels), labels=table)


def test_seg_of_an_edited_model_output_round_trips(ct_series, tmp_path):
    overlay = _model_output(ct_series)
    ed = LabelEditor(overlay)
    ed.set_label(2)
    ed.begin_stroke(ct_series.image.index_to_world(np.array([3.0, 28.0, 5.0])), (0, 0, 1))
    ed.end_stroke()
    path = save_seg(overlay, ct_series, tmp_path / "seg.dcm", edited=ed.history.edited)
    seg = hd.seg.segread(path)
    assert seg.SegmentationType == "BINARY"
    assert {str(d.SegmentAlgorithmType) for d in seg.SegmentSequence} == {"SEMIAUTOMATIC"}
    # every frame sits on the world position of the source image it references
    sources = {ds.SOPInstanceUID: ds for ds in map(pydicom.dcmread, ct_series.source_paths)}
    for group in seg.PerFrameFunctionalGroupsSequence:
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        got = np.array(group.PlanePositionSequence[0].ImagePositionPatient, float)
        np.testing.assert_allclose(got, np.array(sources[uid].ImagePositionPatient, float),
                                   atol=1e-3)  # fmt: skip
    back = import_seg(path, ct_series)
    np.testing.assert_array_equal(back.image.array, overlay.image.array)
    assert back.labels[1][0] == "C2" and back.labels[2][1] == (0, 200, 0)
    untouched = save_seg(_model_output(ct_series), ct_series, tmp_path / "auto.dcm", edited=False)
    kinds = {str(d.SegmentAlgorithmType) for d in hd.seg.segread(untouched).SegmentSequence}
    assert kinds == {"AUTOMATIC"}


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
def test_our_seg_passes_dciodvfy(ct_series, tmp_path):
    path = save_seg(_model_output(ct_series), ct_series, tmp_path / "seg.dcm", edited=True)
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    errors = [ln for ln in (run.stdout + run.stderr).splitlines() if ln.startswith("Error")]
    assert not errors, "\n".join(errors)


def test_nifti_is_ras_and_exact(ct_series, tmp_path):
    overlay = _model_output(ct_series)
    path = save_nifti(overlay, tmp_path / "mask.nii.gz")
    img = nib.load(path)
    np.testing.assert_allclose(img.affine, overlay.image.affine_ras(), atol=1e-4)
    np.testing.assert_array_equal(np.asarray(img.dataobj).transpose(2, 1, 0),
                                  overlay.image.array)  # fmt: skip
    assert nib.aff2axcodes(img.affine)[2] == "S"


def _liver_sources(seg: pydicom.Dataset) -> tuple[Series, list[pydicom.Dataset]]:
    """The liver SEGs' CT is not shipped: stand-in source headers at the frames' references and
    positions, so the SEG can be placed through world coordinates."""
    shared = seg.SharedFunctionalGroupsSequence[0]
    iop = [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
    spacing = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
    sources = []
    for group in seg.PerFrameFunctionalGroupsSequence:
        ref = group.DerivationImageSequence[0].SourceImageSequence[0]
        ds = pydicom.Dataset()
        ds.SOPInstanceUID = ref.ReferencedSOPInstanceUID
        ds.ImagePositionPatient = list(group.PlanePositionSequence[0].ImagePositionPatient)
        ds.ImageOrientationPatient = iop
        ds.PixelSpacing = spacing
        ds.Rows, ds.Columns = seg.Rows, seg.Columns
        sources.append(ds)
    pos = np.array([[float(v) for v in d.ImagePositionPatient] for d in sources])
    order = np.argsort(pos[:, 2])
    direction = np.array([iop[:3], iop[3:], [0, 0, 1.0]]).T
    dz = float(np.diff(pos[order, 2]).mean()) if len(pos) > 1 else 1.0
    image = ImageVolume(np.zeros((len(pos), int(seg.Rows), int(seg.Columns)), np.int16),
                        (dz, spacing[0], spacing[1]), pos[order[0]], direction)  # fmt: skip
    return Series("liver-ct", "CT", "stand-in", image), sources


@pytest.mark.skipif(not (LIVER / "liver.dcm").exists(), reason="shared pydicom data absent")
@pytest.mark.parametrize(
    "name",
    ["liver.dcm", "liver_expb.dcm", "liver_j2k.dcm", "liver_rle.dcm", "liver_deflate.dcm",
     "liver_nonbyte_aligned.dcm", "liver_nonbyte_aligned_j2k.dcm",
     "liver_nonbyte_aligned_rle.dcm", "liver_nonbyte_aligned_deflate.dcm"],
)  # fmt: skip
def test_foreign_liver_segs_import(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = pydicom.dcmread(LIVER / name)
        reference = pydicom.dcmread(LIVER / ("liver_nonbyte_aligned.dcm" if "nonbyte" in name
                                             else "liver.dcm")).pixel_array  # fmt: skip
        series, sources = _liver_sources(seg)
        overlay = import_seg(seg, series, sources)
    got = overlay.image.array
    assert got.shape == (3, int(seg.Rows), int(seg.Columns))
    assert int((got > 0).sum()) == int(reference.sum()) == 107098
    assert set(np.unique(got)) == {0, 1}
