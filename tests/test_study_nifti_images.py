"""NIfTI volumes and label maps in the DICOM patient frame; PNG/JPEG/TIFF as images."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from app.study import StudyLoadError, load
from app.study.dicom_writer import write_series
from app.study.geometry import ImageVolume
from app.study.nifti import write_nifti

pytestmark = pytest.mark.timeout(60)


def test_nifti_ras_affine_becomes_lps(tmp_path: Path) -> None:
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) * 7 - 300  # (i, j, k)
    affine = np.diag([0.5, 0.75, 2.0, 1.0])
    affine[:3, 3] = [10.0, 20.0, 30.0]
    path = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    (s,) = load(path).all_series()
    assert s.kind == "volume" and s.shape == (6, 5, 4)
    assert s.spacing_mm == pytest.approx((2.0, 0.75, 0.5))
    np.testing.assert_allclose(s.image.origin, [-10.0, -20.0, 30.0])
    np.testing.assert_allclose(s.image.direction, np.diag([-1.0, -1.0, 1.0]))
    assert s.image.array[5, 4, 3] == data[3, 4, 5]


def test_dicom_and_its_nifti_export_share_world_coordinates(tmp_path: Path) -> None:
    a = np.radians(20)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    arr = (np.arange(6 * 10 * 12).reshape(6, 10, 12) % 900 - 100).astype(np.int16)
    vol = ImageVolume(arr, (3.0, 0.9, 0.7), np.array([5.0, -40.0, 60.0]), rot)
    write_series(vol, tmp_path / "dcm")
    (dicom,) = load(tmp_path / "dcm").all_series()
    write_nifti(dicom.image, tmp_path / "v.nii.gz")
    (nifti,) = load(tmp_path / "v.nii.gz").all_series()
    np.testing.assert_array_equal(nifti.image.array, dicom.image.array)
    ijk = np.array([[0, 0, 0], [11, 9, 5], [3, 4, 2]], float)
    np.testing.assert_allclose(
        nifti.image.index_to_world(ijk), dicom.image.index_to_world(ijk), atol=1e-3
    )
    np.testing.assert_allclose(dicom.image.index_to_world(ijk), vol.index_to_world(ijk), atol=2e-3)


def test_labelmap_detection_and_forcing(real_data: Path, tmp_path: Path) -> None:
    seg_path = real_data / "totalsegmentator" / "example_seg.nii.gz"
    (seg,) = load(seg_path).all_series()
    assert seg.kind == "labelmap" and seg.image.array.dtype.kind == "u"
    (ct,) = load(real_data / "totalsegmentator" / "example_ct_sm.nii.gz").all_series()
    assert ct.kind == "volume" and ct.modality == "CT"
    assert seg.shape == ct.shape
    np.testing.assert_allclose(seg.image.affine_lps(), ct.image.affine_lps(), atol=1e-4)
    (forced,) = load(seg_path, nifti_kind="volume").all_series()
    assert forced.kind == "volume"
    small = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((3, 3, 3), np.float32) * 2, np.eye(4)), small)
    assert load(small).all_series()[0].kind == "labelmap"
    assert load(small, nifti_kind="volume").all_series()[0].kind == "volume"


def test_spine_mr_and_its_segmentation_overlap(real_data: Path) -> None:
    folder = real_data / "sct_testing_data" / "t2"
    (t2,) = load(folder / "t2.nii.gz").all_series()
    (cord,) = load(folder / "t2_seg-manual.nii.gz").all_series()
    assert t2.kind == "volume" and cord.kind == "labelmap"
    ks, js, is_ = np.nonzero(cord.image.array)
    world = cord.image.index_to_world(np.stack([is_, js, ks], axis=1)[:50].astype(float))
    idx = t2.image.world_to_index(world)
    assert np.all(idx > -0.5) and np.all(idx < np.array(t2.shape[::-1]) - 0.5)


def test_plain_images(tmp_path: Path) -> None:
    gray = (np.arange(20 * 30) % 256).astype(np.uint8).reshape(20, 30)
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, gray
    Image.fromarray(rgb).save(tmp_path / "c.png")
    Image.fromarray(np.stack([gray] * 3, axis=2)).save(tmp_path / "grey_rgb.jpg", quality=100)
    deep = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 60).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.tif")
    by_name = {Path(s.source_paths[0]).name: s for s in load(tmp_path).all_series()}
    g = by_name["g.png"]
    assert g.kind == "projection" and g.modality == "OT" and g.image.array.dtype == np.uint8
    assert g.shape == (1, 20, 30)
    np.testing.assert_array_equal(g.image.array[0], gray)
    assert any("1 mm" in w for w in g.warnings)
    c = by_name["c.png"]
    assert c.kind == "image" and c.image.array.shape == (1, 20, 30, 3)
    np.testing.assert_array_equal(c.image.array[0], rgb)
    j = by_name["grey_rgb.jpg"]
    assert j.kind == "projection" and j.image.array.ndim == 3
    d = by_name["d.tif"]
    assert d.image.array.dtype == np.float32
    np.testing.assert_array_equal(d.image.array[0], deep)


def test_real_jpeg_radiograph(real_data: Path) -> None:
    (s,) = load(real_data / "radoss_ddh_xray" / "331_DDH_1.jpg").all_series()
    assert s.kind == "projection" and s.shape == (1, 331, 331)


def test_broken_image_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(StudyLoadError) as info:
        load(bad)
    assert info.value.path == str(bad) and "image" in info.value.reason
