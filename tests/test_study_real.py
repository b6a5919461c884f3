"""Real scans: gantry tilt with variable spacing, codecs, enhanced multi-frame, SEG, colour."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from app.study import load

pytestmark = pytest.mark.timeout(120)


def _load(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(path)


def _rescaled(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_gantry_tilt_ct_is_placed_in_world_coordinates(real_data: Path) -> None:
    folder = real_data / "ct_head_gantry_tilt"
    result = _load(folder)
    (s,) = result.all_series()
    assert s.kind == "volume" and s.image.array.dtype == np.int16
    assert any("gantry tilt 18.5" in w for w in s.warnings)
    assert any("non-uniform slice spacing" in w and "resampled" in w for w in s.warnings)
    normal = np.cross(s.image.direction[:, 0], s.image.direction[:, 1])
    tilt = np.degrees(np.arccos(abs(normal @ s.image.direction[:, 2])))
    assert tilt == pytest.approx(18.5, abs=0.1)
    on_grid = 0
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ipp = np.array(ds.ImagePositionPatient, float)
        row, col = (
            np.array(ds.ImageOrientationPatient[:3], float),
            np.array(ds.ImageOrientationPatient[3:], float),
        )
        dr, dc = (float(v) for v in ds.PixelSpacing)
        # The pixel (i=100, j=200) of this file, placed by the file's own tags...
        world = ipp + 100 * dc * row + 200 * dr * col
        # ...lands on column 100, row 200 of the loaded volume, inside the slice range.
        i, j, k = s.image.world_to_index(world)
        assert i == pytest.approx(100, abs=1e-3) and j == pytest.approx(200, abs=1e-3)
        assert -1e-3 <= k <= s.shape[0] - 1 + 1e-3
        if abs(k - round(k)) < 0.01:  # the file's slice is a grid slice: same pixels
            on_grid += 1
            diff = np.abs(s.image.array[int(round(k))].astype(float) - _rescaled(ds))
            assert diff.mean() < 1.0
    assert on_grid >= 14  # the 14 slices of the regular 4 mm part


def test_jpeg2000_ct_series_without_uids(real_data: Path) -> None:
    folder = real_data / "totalsegmentator" / "example_ct_dicom"
    (s,) = _load(folder).all_series()
    assert s.shape == (20, 512, 512) and s.spacing_mm[0] == pytest.approx(2.0)
    files = sorted(
        folder.iterdir(), key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2])
    )
    first = pydicom.dcmread(files[0])
    np.testing.assert_allclose(s.image.origin, np.array(first.ImagePositionPatient, float))
    np.testing.assert_array_equal(s.image.array[0], _rescaled(first))


@pytest.mark.parametrize("name", ["RG2_J2KR", "RG2_JLSL", "RG2_RLE", "RG2_JPLL"])
def test_radiograph_encodings_decode_identically(real_data: Path, name: str) -> None:
    ref = _load(real_data / "xray_nema_wg04" / "RG2_UNC.dcm").all_series()[0]
    s = _load(real_data / "xray_nema_wg04" / f"{name}.dcm").all_series()[0]
    assert s.kind == "projection" and s.modality == "CR" and s.shape == (1, 2140, 1760)
    assert s.spacing_mm[1:] == pytest.approx(ref.spacing_mm[1:])
    np.testing.assert_array_equal(s.image.array, ref.image.array)


def test_monochrome1_radiograph_is_flagged_inverted(real_data: Path) -> None:
    s = _load(real_data / "xray_nema_wg04" / "RG3_UNC.dcm").all_series()[0]
    assert s.invert and s.kind == "projection"


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "MR_small_implicit.dcm",
    ],
)
def test_mr_transfer_syntaxes_match(name: str) -> None:
    ref = _load(Path(get_testdata_file("MR_small.dcm"))).all_series()[0]
    s = _load(Path(get_testdata_file(name))).all_series()[0]
    np.testing.assert_array_equal(s.image.array, ref.image.array)
    np.testing.assert_allclose(s.image.origin, ref.image.origin)


def test_enhanced_multiframe_ct_uses_per_frame_positions(real_data: Path) -> None:
    path = real_data / "pydicom_data" / "eCT_Supplemental.dcm"
    (s,) = _load(path).all_series()
    ds = pydicom.dcmread(path)
    positions = [
        np.array(f.PlanePositionSequence[0].ImagePositionPatient, float)
        for f in ds.PerFrameFunctionalGroupsSequence
    ]
    normal = np.cross(s.image.direction[:, 0], s.image.direction[:, 1])
    first = min(positions, key=lambda p: p @ normal)
    assert s.kind == "volume" and s.shape == (2, 512, 512)
    np.testing.assert_allclose(s.image.origin, first)
    assert s.spacing_mm[0] == pytest.approx(np.linalg.norm(positions[1] - positions[0]))
    assert s.window is not None


def test_dicom_seg_becomes_a_label_map(real_data: Path) -> None:
    (s,) = _load(real_data / "pydicom_data" / "liver.dcm").all_series()
    assert s.kind == "labelmap" and s.image.array.dtype == np.uint8
    assert set(np.unique(s.image.array)) <= {0, 1} and s.image.array.max() == 1
    assert s.meta["segments"] == [1]


@pytest.mark.parametrize(
    "name",
    ["OT-PAL-8-face.dcm", "SC_ybr_full_uncompressed.dcm", "SC_rgb_16bit.dcm", "US1_J2KR.dcm"],
)
def test_colour_dicom_is_rgb_uint8(real_data: Path, name: str) -> None:
    (s,) = _load(real_data / "pydicom_data" / name).all_series()
    assert s.kind == "image" and s.image.is_rgb and s.image.array.dtype == np.uint8
    assert s.image.array.reshape(-1, 3).std(axis=0).min() > 5  # real colour, not grey


def test_ybr_matches_rgb_original(real_data: Path) -> None:
    rgb = _load(real_data / "pydicom_data" / "SC_rgb.dcm").all_series()[0].image.array
    ybr = _load(real_data / "pydicom_data" / "SC_ybr_full_uncompressed.dcm").all_series()[0]
    assert np.abs(rgb.astype(int) - ybr.image.array).max() <= 8  # YCbCr rounding


def test_grey_rgb_dicom_is_grayscale(real_data: Path) -> None:
    s = _load(real_data / "radoss_ddh_xray" / "331_DDH_1.dcm").all_series()[0]
    assert s.kind == "projection" and not s.image.is_rgb and s.shape == (1, 331, 331)
