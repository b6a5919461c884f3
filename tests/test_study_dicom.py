"""DICOM series loading: ordering, geometry, rescale, splitting, gaps, bad files, progress."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from app.study import LoadCancelled, StudyLoadError, load
from app.study.dicom_writer import write_radiograph, write_series
from app.study.geometry import ImageVolume

pytestmark = pytest.mark.timeout(60)


def _volume(n: int = 12, rows: int = 20, cols: int = 24, direction=None) -> ImageVolume:
    """Each slice holds its own index in HU so the order is visible in the data."""
    k = np.arange(n, dtype=np.int16)[:, None, None] * 10
    jj, ii = np.mgrid[:rows, :cols].astype(np.int16)
    arr = (k + jj + 3 * ii - 500).astype(np.int16)
    direction = np.eye(3) if direction is None else direction
    return ImageVolume(arr, (2.5, 0.8, 0.6), np.array([-30.0, 12.0, 100.0]), direction)


def _write(vol: ImageVolume, folder: Path, shuffle: bool = True, **kw) -> list[Path]:
    names = [f"f{i:03d}.dcm" for i in range(vol.shape[0])]
    if shuffle:
        random.Random(3).shuffle(names)
    return write_series(vol, folder, file_names=names, **kw)


def _edit(path: Path, **tags) -> None:
    ds = pydicom.dcmread(path)
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.save_as(path)


def _only_volume(result):
    vols = [s for s in result.all_series() if s.kind == "volume"]
    assert len(vols) == 1, [(s.kind, s.shape) for s in result.all_series()]
    return vols[0]


def test_shuffled_names_and_instance_numbers_sort_by_position(tmp_path: Path) -> None:
    vol = _volume()
    paths = _write(vol, tmp_path)
    # InstanceNumber scrambled too: only ImagePositionPatient may decide the order.
    numbers = list(range(1, len(paths) + 1))
    random.Random(5).shuffle(numbers)
    for p, n in zip(paths, numbers, strict=True):
        _edit(p, InstanceNumber=n)
    s = _only_volume(load(tmp_path))
    assert s.image.array.dtype == np.int16
    np.testing.assert_array_equal(s.image.array, vol.array)
    np.testing.assert_allclose(s.spacing_mm, vol.spacing, atol=1e-4)
    np.testing.assert_allclose(s.image.origin, vol.origin, atol=1e-3)
    np.testing.assert_allclose(s.image.direction, vol.direction, atol=1e-6)
    assert s.warnings == []
    assert len(s.source_paths) == len(paths)


def test_oblique_orientation_keeps_world_positions(tmp_path: Path) -> None:
    a = np.radians(25)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    vol = _volume(direction=rot)
    _write(vol, tmp_path)
    s = _only_volume(load(tmp_path))
    np.testing.assert_array_equal(s.image.array, vol.array)
    probe = np.array([[0, 0, 0], [23, 19, 11], [5, 7, 3]], float)
    np.testing.assert_allclose(s.image.index_to_world(probe), vol.index_to_world(probe), atol=2e-3)


def test_rescale_int16_and_float32(tmp_path: Path) -> None:
    vol = _volume()
    _write(vol, tmp_path / "a", rescale=(2.0, -1024.0))
    s = _only_volume(load(tmp_path / "a"))
    assert s.image.array.dtype == np.int16
    # stored = round((v + 1024) / 2): odd values lose one HU, as the file says.
    expected = np.round((vol.array.astype(float) + 1024) / 2) * 2 - 1024
    np.testing.assert_array_equal(s.image.array, expected)

    _write(vol, tmp_path / "b", rescale=(0.25, -1000.3))
    s = _only_volume(load(tmp_path / "b"))
    assert s.image.array.dtype == np.float32
    expected = np.round((vol.array.astype(float) + 1000.3) / 0.25) * 0.25 - 1000.3
    np.testing.assert_allclose(s.image.array, expected, atol=1e-3)
    assert not np.all(np.mod(s.image.array, 1) == 0)


def test_values_beyond_int16_become_float32(tmp_path: Path) -> None:
    base = _volume()
    vol = ImageVolume(base.array + 1000, base.spacing, base.origin)  # stored values >= 0
    paths = _write(vol, tmp_path, shuffle=False, rescale=(1.0, 0.0))
    _edit(paths[-1], RescaleIntercept="40000")  # last slice only: the switch happens mid-stack
    s = _only_volume(load(tmp_path))
    assert s.image.array.dtype == np.float32
    np.testing.assert_array_equal(s.image.array[:-1], vol.array[:-1])
    np.testing.assert_array_equal(s.image.array[-1], vol.array[-1].astype(np.float32) + 40000)


def test_gap_is_resampled_with_a_warning(tmp_path: Path) -> None:
    vol = _volume(n=10)
    paths = _write(vol, tmp_path, shuffle=False)
    paths[4].unlink()
    s = _only_volume(load(tmp_path))
    assert s.shape[0] == 10, "the missing slice is interpolated, not squeezed out"
    assert any("resampled" in w and "2.500 mm" in w for w in s.warnings), s.warnings
    assert s.spacing_mm[0] == pytest.approx(2.5)
    np.testing.assert_array_equal(s.image.array[3], vol.array[3])
    np.testing.assert_array_equal(s.image.array[5], vol.array[5])
    # Linear interpolation between slices 3 and 5 recovers the (linear) phantom exactly.
    np.testing.assert_allclose(s.image.array[4], vol.array[4], atol=1)


def test_duplicate_positions_keep_one_and_warn(tmp_path: Path) -> None:
    vol = _volume(n=6)
    paths = _write(vol, tmp_path, shuffle=False)
    copy = tmp_path / "dup.dcm"
    shutil.copy(paths[2], copy)
    _edit(copy, SOPInstanceUID=generate_uid())
    s = _only_volume(load(tmp_path))
    assert s.shape == vol.shape
    assert any("repeat the position" in w for w in s.warnings)


def test_multiphase_series_splits_by_temporal_position(tmp_path: Path) -> None:
    vol = _volume(n=5)
    study = generate_uid()
    a = _write(vol, tmp_path / "p1", study_uid=study)
    b = _write(
        ImageVolume(vol.array + 100, vol.spacing, vol.origin), tmp_path / "p2", study_uid=study
    )
    series_uid = pydicom.dcmread(a[0]).SeriesInstanceUID
    for p in a:
        _edit(p, TemporalPositionIdentifier=1)
    for p in b:
        _edit(p, TemporalPositionIdentifier=2, SeriesInstanceUID=series_uid)
    result = load(tmp_path)
    vols = [s for s in result.all_series() if s.kind == "volume"]
    assert len(vols) == 2
    assert {s.series_uid for s in vols} == {series_uid, f"{series_uid}#2"}
    assert all(any("phases" in w for w in s.warnings) for s in vols)
    arrays = sorted((s.image.array for s in vols), key=lambda a: int(a.min()))
    np.testing.assert_array_equal(arrays[0], vol.array)
    np.testing.assert_array_equal(arrays[1], vol.array + 100)


def test_localizer_is_kept_out_of_the_volume(tmp_path: Path) -> None:
    vol = _volume(n=8)
    paths = _write(vol, tmp_path, shuffle=False)
    scout = tmp_path / "scout.dcm"
    shutil.copy(paths[0], scout)
    _edit(
        scout,
        SOPInstanceUID=generate_uid(),
        ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"],
        ImageOrientationPatient=["1", "0", "0", "0", "0", "-1"],
        ImagePositionPatient=["-30", "50", "120"],
    )
    result = load(tmp_path)
    s = _only_volume(result)
    np.testing.assert_array_equal(s.image.array, vol.array)
    scouts = [x for x in result.all_series() if x.kind == "projection"]
    assert len(scouts) == 1 and any("localizer" in w for w in scouts[0].warnings)


def test_different_image_sizes_split_the_series(tmp_path: Path) -> None:
    vol = _volume(n=4)
    paths = _write(vol, tmp_path / "a")
    other = _write(_volume(n=4, rows=16, cols=16), tmp_path / "b")
    uid = pydicom.dcmread(paths[0]).SeriesInstanceUID
    for p in other:
        _edit(p, SeriesInstanceUID=uid)
    shapes = sorted(s.shape for s in load(tmp_path).all_series())
    assert shapes == [(4, 16, 16), (4, 20, 24)]


def test_bad_files_are_listed_and_good_slices_load(tmp_path: Path) -> None:
    vol = _volume(n=6)
    paths = _write(vol, tmp_path / "good")
    truncated = tmp_path / "good" / "truncated.dcm"
    data = paths[0].read_bytes()
    truncated.write_bytes(data[: len(data) - 300])
    (tmp_path / "good" / "empty.dcm").write_bytes(b"")
    (tmp_path / "good" / "notes.txt").write_text("not an image\n")
    result = load(tmp_path / "good")
    s = _only_volume(result)
    np.testing.assert_array_equal(s.image.array, vol.array)
    reasons = {Path(e.path).name: e.reason for e in result.errors}
    assert set(reasons) == {"truncated.dcm", "empty.dcm", "notes.txt"}
    assert "truncated" in reasons["truncated.dcm"]
    assert "empty" in reasons["empty.dcm"]
    assert "not a DICOM" in reasons["notes.txt"]


def test_nothing_loadable_raises_study_load_error(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.dcm").write_bytes(b"\0" * 10)
    with pytest.raises(StudyLoadError) as info:
        load(tmp_path)
    assert str(tmp_path) in str(info.value)
    with pytest.raises(StudyLoadError) as info:
        load(tmp_path / "a.txt")
    assert info.value.path.endswith("a.txt") and "not a DICOM" in info.value.reason
    with pytest.raises(StudyLoadError, match="no such file"):
        load(tmp_path / "missing")


def test_progress_is_throttled_and_cancel_stops(tmp_path: Path) -> None:
    _write(_volume(n=120, rows=8, cols=8), tmp_path)
    calls = []
    load(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert 10 <= len(calls) <= 52
    assert calls[-1][0] == calls[-1][1]
    assert all(b[0] >= a[0] for a, b in zip(calls, calls[1:], strict=False))
    seen = []

    def cancel() -> bool:
        seen.append(1)
        return len(seen) > 30

    with pytest.raises(LoadCancelled):
        load(tmp_path, cancel=cancel)


def test_dicomdir_is_honoured(tmp_path: Path) -> None:
    from pydicom.fileset import FileSet

    vol = _volume(n=5)
    paths = _write(vol, tmp_path / "src")
    fs = FileSet()
    for p in paths:
        _edit(p, StudyTime="120000", StudyID="1")  # required by DICOMDIR study records
        fs.add(p)
    fs.write(tmp_path / "media")
    result = load(tmp_path / "media" / "DICOMDIR")
    s = _only_volume(result)
    np.testing.assert_array_equal(s.image.array, vol.array)
    assert result.errors == []
    assert _only_volume(load(tmp_path / "media")).shape == vol.shape


def test_radiograph_spacing_window_and_monochrome1(tmp_path: Path) -> None:
    pixels = (np.arange(30 * 40, dtype=np.uint16).reshape(30, 40) % 1000).astype(np.uint16)
    path = write_radiograph(
        pixels,
        tmp_path / "dx.dcm",
        pixel_spacing_mm=(0.14, 0.15),
        photometric="MONOCHROME1",
        window=(500, 800),
        view_position="PA",
    )
    s = load(path).all_series()[0]
    assert s.kind == "projection" and s.modality == "DX"
    assert s.shape == (1, 30, 40)
    assert s.spacing_mm == pytest.approx((1.0, 0.14, 0.15))
    np.testing.assert_array_equal(s.image.array[0], pixels)
    np.testing.assert_allclose(s.image.direction, np.eye(3))
    assert s.invert and s.window == (500.0, 800.0) and s.view_position == "PA"
    assert s.meta["manufacturer"] == "OsteoView phantom generator"

    _edit(path, PixelSpacing=["0.2", "0.3"])  # PixelSpacing wins over ImagerPixelSpacing
    assert load(path).all_series()[0].spacing_mm == pytest.approx((1.0, 0.2, 0.3))
    ds = pydicom.dcmread(path)
    del ds.PixelSpacing
    del ds.ImagerPixelSpacing
    ds.save_as(path)
    s = load(path).all_series()[0]
    assert s.spacing_mm == (1.0, 1.0, 1.0)
    assert any("1 mm" in w for w in s.warnings)


def test_undecodable_slice_is_listed_and_becomes_an_interpolated_gap(tmp_path: Path) -> None:
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless

    vol = _volume(n=7)
    paths = _write(vol, tmp_path, shuffle=False)
    for p in paths:  # compressed, so pixels go through pydicom's decoders
        ds = pydicom.dcmread(p)
        ds.compress(RLELossless)
        ds.save_as(p)
    broken = pydicom.dcmread(paths[3])
    broken.PixelData = encapsulate([b"\x01\x00\x00\x00" + b"\xff" * 60])
    broken.save_as(paths[3])
    result = load(tmp_path)
    s = _only_volume(result)
    assert [Path(e.path).name for e in result.errors] == [paths[3].name]
    assert "could not be decoded" in result.errors[0].reason
    assert s.shape == vol.shape and any("resampled" in w for w in s.warnings)
    np.testing.assert_array_equal(s.image.array[2], vol.array[2])
    np.testing.assert_allclose(s.image.array[3], vol.array[3], atol=1)
