"""The fast header walker agrees with pydicom wherever it accepts a file."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_files

from app.study.dicom_headers import NotDicom, NotNative, parse_native, read_with_pydicom
from app.study.dicom_writer import write_series
from app.study.geometry import ImageVolume

pytestmark = pytest.mark.timeout(60)


def _normalise(value: object) -> object:
    if isinstance(value, list):
        return [str(v).strip() for v in value]
    return str(value).strip()


def test_walker_matches_pydicom_on_the_corpus() -> None:
    accepted = 0
    for path in sorted(p for p in set(get_testdata_files()) if p.endswith(".dcm")):
        try:
            fast = parse_native(path)
        except (NotNative, NotDicom):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            slow = read_with_pydicom(path)
            ds = pydicom.dcmread(path)
        accepted += 1
        assert set(fast.values) == set(slow.values), path
        for key, value in fast.values.items():
            assert _normalise(value) == _normalise(slow.values[key]), (path, key)
        if fast.has_pixels:
            with open(path, "rb") as f:
                f.seek(fast.pixel_offset)
                head = f.read(64)
            assert bytes(ds.PixelData[:64]) == head, path
    assert accepted >= 20  # the walker is the common path, not an exception


def test_walker_skips_nested_undefined_length_sequences(tmp_path: Path) -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    (path,) = write_series(ImageVolume(np.full((1, 4, 4), 7, np.int16)), tmp_path)
    ds = pydicom.dcmread(path)
    inner = Dataset()
    inner.CodeValue = "X"
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    item.PurposeOfReferenceCodeSequence = Sequence([inner])
    ds.ReferencedImageSequence = Sequence([item, item])
    ds.ReferencedImageSequence.is_undefined_length = True
    for it in ds.ReferencedImageSequence:
        it.is_undefined_length_sequence_item = True
    ds.save_as(path)
    header = parse_native(str(path))
    assert header.values["Rows"] == 4 and header.has_pixels
    with open(path, "rb") as f:
        f.seek(header.pixel_offset)
        assert np.frombuffer(f.read(32), "<u2").tolist() == [1031] * 16  # 7 HU + 1024


def test_truncated_and_empty_files(tmp_path: Path) -> None:
    (path,) = write_series(ImageVolume(np.zeros((1, 32, 32), np.int16)), tmp_path)
    data = path.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:-100])
    with pytest.raises(NotDicom, match="truncated"):
        parse_native(str(cut))
    cut.write_bytes(data[:300])
    with pytest.raises(NotDicom, match="truncated"):
        parse_native(str(cut))
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    with pytest.raises(NotDicom, match="empty"):
        parse_native(str(empty))


def test_corrupted_headers_never_crash(tmp_path: Path) -> None:
    """Seeded byte corruption in the header: each file loads or fails with a reason."""
    from app.study import LoadResult, StudyLoadError, load

    (path,) = write_series(ImageVolume(np.zeros((1, 16, 16), np.int16)), tmp_path / "src")
    data = bytearray(path.read_bytes())
    header_end = len(data) - 16 * 16 * 2
    rng = np.random.default_rng(7)
    outcomes = {"loaded": 0, "error": 0}
    for n in range(60):
        bad = bytearray(data)
        for pos in rng.integers(132, header_end, size=rng.integers(1, 6)):
            bad[pos] = int(rng.integers(0, 256))
        target = tmp_path / f"bad{n}.dcm"
        target.write_bytes(bytes(bad))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                assert isinstance(load(target), LoadResult)
                outcomes["loaded"] += 1
            except StudyLoadError as exc:
                assert exc.path == str(target) and exc.reason
                outcomes["error"] += 1
    assert sum(outcomes.values()) == 60
