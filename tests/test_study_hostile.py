"""Issue 17 (loader side): files that used to abort, hang or mislead, as regression tests.

Anything that once ended the process runs in a subprocess (``osteoview info`` as a user runs
it), so a regression fails this test instead of killing the test run.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.study import LoadError, StudyLoadError, load
from app.study.dicom_values import os_reason

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _mutated(src: Path, out: Path, **tags: object) -> Path:
    ds = pydicom.dcmread(src)
    for keyword, value in tags.items():
        setattr(ds, keyword, value(ds) if callable(value) else value)
    ds.save_as(out)
    return out


@pytest.fixture()
def ct_dir(real_data: Path) -> Path:
    return real_data / "totalsegmentator" / "example_ct_dicom"


def _ybr422_slice(ct_dir: Path, out: Path) -> Path:
    first = sorted(ct_dir.iterdir())[0]
    return _mutated(first, out / first.name, PhotometricInterpretation="YBR_FULL_422")


def _jpeg_ls_wide(real_data: Path, out: Path) -> Path:
    src = real_data / "pydicom_data" / "emri_small_jpeg_ls_lossless.dcm"
    return _mutated(src, out / "jls_cols.dcm", Columns=lambda ds: ds.Columns + 1)


# ---------------------------------------------------------------- item 1: native decoders abort
@pytest.mark.parametrize("make", [_ybr422_slice, _jpeg_ls_wide], ids=["ybr422-j2k", "jls-cols+1"])
@pytest.mark.parametrize("checks", ["on", "off"])
def test_decoder_abort_reproducers_end_in_one_clear_line(
    make, checks: str, real_data: Path, ct_dir: Path, tmp_path: Path
) -> None:
    """With the header checks the reason names the mismatch; with them off (the child process
    alone between GDCM and the viewer) the crash is still a clean, attributed error."""
    source = ct_dir if make is _ybr422_slice else real_data
    path = make(source, tmp_path)
    env = {"OSTEOVIEW_DECODE_NO_CHECKS": "1"} if checks == "off" else {}
    proc = cli("info", str(path), env=env)
    assert proc.returncode == 2, proc.stderr  # not -6 (SIGABRT)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and str(path) in proc.stderr
    if checks == "off":
        expected = "the image decoder crashed on this file's pixel data (SIGABRT)"
    elif make is _ybr422_slice:
        expected = "PhotometricInterpretation YBR_FULL_422 needs 3 sample(s) per pixel"
    else:
        expected = "the compressed frame is 64x64 pixels, the header says Rows x Columns 64x65"
    assert expected in proc.stderr


@pytest.mark.parametrize("checks", ["on", "off"])
def test_folder_with_an_aborting_slice_loads_the_rest(
    checks: str, ct_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "ct"
    shutil.copytree(ct_dir, folder)
    bad = _ybr422_slice(ct_dir, folder)
    env = {"OSTEOVIEW_DECODE_NO_CHECKS": "1"} if checks == "off" else {}
    proc = cli("info", "--json", str(folder), env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    (series,) = [s for st in doc["studies"] for s in st["series"]]
    assert series["shape"][1:] == [512, 512] and series["files"] == 19
    assert [e["path"] for e in doc["errors"]] == [str(bad)]


def test_a_decoder_that_never_returns_is_given_up(real_data: Path, tmp_path: Path) -> None:
    """CharLS loops on this truncated JPEG-LS stream (found by the fuzzer); the decoder child
    is killed after its time limit, the file is reported and the next decode works."""
    import struct

    from app.study import decode_pool

    data = bytearray((real_data / "pydicom_data" / "JLSL_RGB_ILV2.dcm").read_bytes())
    pos = data.find(b"\xe0\x7f\x10\x00OB\x00\x00")  # PixelData, undefined length
    struct.pack_into("<L", data, pos + 8, 0x7FFFFFFF)
    path = tmp_path / "loops.dcm"
    path.write_bytes(bytes(data[:707]))
    t0 = time.perf_counter()
    with pytest.raises(StudyLoadError, match="did not finish within"):
        load(path)
    assert time.perf_counter() - t0 < decode_pool.BASE_TIMEOUT_S + 30
    (series,) = load(real_data / "pydicom_data" / "JLSL_RGB_ILV2.dcm").all_series()
    assert series.image.is_rgb


def test_codestream_checks_name_both_sides() -> None:
    from app.study.codestream import StreamMismatch, check_frame, check_photometric

    j2k = (b"\xff\x4f\xff\x51\x00\x29\x00\x00" + np.array([64, 64, 0, 0], ">u4").tobytes()
           + b"\x00" * 16 + b"\x00\x01" + b"\x0f\x01\x01")  # fmt: skip
    check_frame(j2k, "1.2.840.10008.1.2.4.90", 64, 64, 1, 16)
    with pytest.raises(StreamMismatch, match="64x64 pixels, the header says .* 64x65"):
        check_frame(j2k, "1.2.840.10008.1.2.4.90", 64, 65, 1, 16)
    with pytest.raises(StreamMismatch, match="1 component"):
        check_frame(j2k, "1.2.840.10008.1.2.4.90", 64, 64, 3, 8)
    sof55 = b"\xff\xd8\xff\xf7\x00\x0b\x10\x00\x40\x00\x41\x01\x01\x11\x00"
    with pytest.raises(StreamMismatch, match="64x65 pixels"):
        check_frame(sof55, "1.2.840.10008.1.2.4.80", 64, 64, 1, 16)
    with pytest.raises(StreamMismatch, match="YBR_FULL_422 needs 3"):
        check_photometric("YBR_FULL_422", 1, "1.2.840.10008.1.2.4.90")
    rle = np.array([2, 64, 100] + [0] * 13, "<u4").tobytes() + b"\x00" * 64
    with pytest.raises(StreamMismatch, match="2 segment"):
        check_frame(rle, "1.2.840.10008.1.2.5", 4, 4, 1, 8)


# ---------------------------------------------------------------- item 2: absurd frame counts
@pytest.mark.parametrize("frames", [10_000_000, -1, 0])
def test_impossible_frame_count_is_a_clear_error(
    frames: int, real_data: Path, tmp_path: Path
) -> None:
    src = real_data / "pydicom_data" / "emri_small.dcm"
    path = _mutated(src, tmp_path / "frames.dcm", NumberOfFrames=frames)
    t0 = time.perf_counter()
    proc = cli("info", str(path))
    assert time.perf_counter() - t0 < 60
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert str(path) in proc.stderr
    assert (f"{frames} frame(s)" in proc.stderr) or (f"NumberOfFrames '{frames}'" in proc.stderr)


def test_many_claimed_frames_are_counted_against_the_fragments(
    real_data: Path, tmp_path: Path
) -> None:
    """65,535 frames fit the file's size (8 bytes each) but not its 9 fragments: refused at
    once, before a record per claimed frame is built."""
    src = real_data / "pydicom_data" / "MR2_J2KR.dcm"
    path = _mutated(src, tmp_path / "many.dcm", NumberOfFrames=65535)
    t0 = time.perf_counter()
    with pytest.raises(StudyLoadError, match="claims 65535 frames, the pixel data holds"):
        load(path)
    assert time.perf_counter() - t0 < 2.0


def test_compressed_frame_count_beyond_the_fragments_is_refused(
    real_data: Path, tmp_path: Path
) -> None:
    src = real_data / "pydicom_data" / "emri_small_jpeg_2k_lossless.dcm"
    path = _mutated(src, tmp_path / "j2k_frames.dcm", NumberOfFrames=10_000_000)
    with pytest.raises(StudyLoadError, match="claims 10000000 frame"):
        load(path)


# ---------------------------------------------------------------- item 3: impossible geometry
def _per_frame_spacing(value: list[float]):
    def apply(ds) -> None:
        for group in (*ds.PerFrameFunctionalGroupsSequence, *ds.SharedFunctionalGroupsSequence):
            if "PixelMeasuresSequence" in group:
                group.PixelMeasuresSequence[0].PixelSpacing = value

    return apply


@pytest.mark.parametrize("value", [[0, 0], [-1, -1]])
def test_per_frame_pixel_spacing_is_checked(value, real_data: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(real_data / "pydicom_data" / "eCT_Supplemental.dcm")
    _per_frame_spacing(value)(ds)
    ds.save_as(tmp_path / "ect.dcm")
    (series,) = load(tmp_path / "ect.dcm").all_series()
    assert series.spacing_mm[1:] == (1.0, 1.0)
    assert any("PixelSpacing" in w and "not a possible" in w for w in series.warnings)


def _gantry_slice(real_data: Path) -> Path:
    return real_data / "ct_head_gantry_tilt" / "01.dcm"


def test_negative_slice_thickness_is_not_the_slice_step(real_data: Path, tmp_path: Path) -> None:
    path = _mutated(_gantry_slice(real_data), tmp_path / "t.dcm", SliceThickness=-5)
    (series,) = load(path).all_series()
    assert all(s > 0 for s in series.spacing_mm)
    assert any("SliceThickness -5" in w for w in series.warnings)


def test_non_finite_orientation_is_refused_or_warned(real_data: Path, tmp_path: Path) -> None:
    iop = [1e308, 0, 0, 0, 1, 0]
    path = _mutated(_gantry_slice(real_data), tmp_path / "o.dcm", ImageOrientationPatient=iop)
    (series,) = load(path).all_series()
    d = series.image.direction
    assert np.all(np.isfinite(d)) and np.allclose(np.linalg.norm(d, axis=0), 1)
    assert any("ImageOrientationPatient" in w for w in series.warnings)


def test_swamping_rescale_intercept_is_refused(real_data: Path, tmp_path: Path) -> None:
    path = _mutated(_gantry_slice(real_data), tmp_path / "r.dcm", RescaleIntercept=1e38)
    with pytest.raises(StudyLoadError, match="RescaleIntercept 1e\\+38"):
        load(path)


def test_huge_window_centre_falls_back_to_the_pixels(real_data: Path, tmp_path: Path) -> None:
    path = _mutated(_gantry_slice(real_data), tmp_path / "w.dcm", WindowCenter=1e38)
    (series,) = load(path).all_series()
    center, width = series.default_window()
    assert abs(center) < 1e5 and 0 < width < 1e5


# ---------------------------------------------------------------- item 9: permission denied
def test_unreadable_file_says_what_and_why(
    real_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root reads anything, so the refusal is simulated where the loader opens the file."""
    import builtins

    from app.commands.info import result_dict
    from app.study import dicom_headers

    for name in ("a.dcm", "b.dcm"):
        shutil.copy(real_data / "pydicom_data" / "emri_small.dcm", tmp_path / name)
    real_open = builtins.open

    def guarded(path, *args, **kwargs):
        if str(path).endswith("a.dcm"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(dicom_headers, "open", guarded, raising=False)
    result = load(tmp_path)
    assert len(result.all_series()) == 1
    (error,) = result.errors
    assert error == LoadError(str(tmp_path / "a.dcm"), error.reason)
    assert error.reason.startswith("cannot read the file: permission denied")
    assert "Errno" not in json.dumps(result_dict(result))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_unreadable_file_for_real(real_data: Path, tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root can read a file without permissions")
    path = tmp_path / "locked.dcm"
    shutil.copy(real_data / "pydicom_data" / "emri_small.dcm", path)
    path.chmod(0)
    proc = cli("info", str(path))
    assert proc.returncode == 2 and "Errno" not in proc.stderr
    assert "permission denied" in proc.stderr


def test_os_reason_words() -> None:
    exc = PermissionError(errno.EACCES, "Permission denied", "/x")
    assert os_reason(exc) == "cannot read the file: permission denied (check the file's " \
        "permissions and owner)"  # fmt: skip
    assert os_reason(OSError(errno.EIO, "I/O error"), "the folder").startswith(
        "cannot read the folder: input/output error"
    )


def test_geometry_guard_refuses_what_header_checks_cannot_see() -> None:
    from app.study import ImageVolume
    from app.study.sanity import geometry_problem

    arr = np.zeros((2, 4, 4), np.int16)
    assert geometry_problem(ImageVolume(arr, (1.0, 0.5, 0.5))) is None
    assert "voxel size" in geometry_problem(ImageVolume(arr, (np.inf, 0.5, 0.5)))
    assert "origin" in geometry_problem(ImageVolume(arr, origin=np.array([1e300, 0, 0])))
    flat = np.column_stack([[1, 0, 0], [0, 1, 0], [1, 0, 0]]).astype(float)
    assert "three dimensions" in geometry_problem(ImageVolume(arr, direction=flat))


def test_orientation_tolerates_scanner_rounding_only() -> None:
    from app.study.dicom_values import orientation

    notes: list[str] = []
    rounded = orientation("0.99999\\0.00447\\0\\-0.00447\\0.99999\\0", notes)
    assert rounded is not None and not notes
    assert np.allclose([np.linalg.norm(rounded[:3]), np.linalg.norm(rounded[3:])], 1)
    for bad in (
        "1\\0\\0\\1\\0\\0",
        "0\\0\\0\\0\\1\\0",
        "1e308\\0\\0\\0\\1\\0",
        "nan\\0\\0\\0\\1\\0",
    ):
        assert orientation(bad, notes) is None
    assert len(notes) == 4 and all("ImageOrientationPatient" in n for n in notes)
