"""``osteoview info`` and ``osteoview export`` through a real subprocess (exit codes, stderr)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image

from app.study.dicom_writer import write_series
from app.study.geometry import ImageVolume

REPO = Path(__file__).resolve().parents[1]
LPS_RAS = np.diag([-1.0, -1.0, 1.0])
pytestmark = pytest.mark.timeout(120)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        # Through main() as the console script does (``python -m app.cli`` would import the
        # module twice, as __main__ and app.cli, so CliError would be two classes).
        [
            sys.executable,
            "-c",
            "import sys; from app.cli import main; sys.exit(main())",
            *map(str, args),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=110,
    )


def _assert_clean_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def ct_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ct")
    arr = (np.arange(5 * 16 * 18).reshape(5, 16, 18) % 700 - 200).astype(np.int16)
    write_series(
        ImageVolume(arr, (2.0, 0.5, 0.6), np.array([1.0, 2.0, 3.0])),
        out / "ct",
        series_description="Test CT",
    )
    (out / "ct" / "junk.txt").write_text("hello")
    return out / "ct"


def test_info_json_contract(ct_dir: Path) -> None:
    proc = cli("info", ct_dir, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == {"studies", "errors"}
    (study,) = doc["studies"]
    (series,) = study["series"]
    for key in ("series_uid", "modality", "description", "shape", "spacing_mm", "warnings"):
        assert key in series
    assert series["shape"] == [5, 16, 18]
    assert series["spacing_mm"] == pytest.approx([2.0, 0.5, 0.6])
    assert series["modality"] == "CT" and series["description"] == "Test CT"
    assert study["study_uid"] and series["kind"] == "volume"
    assert doc["errors"] == [{"path": str(ct_dir / "junk.txt"), "reason": "not a DICOM file"}]


def test_info_table_and_warnings(real_data: Path) -> None:
    proc = cli("info", real_data / "ct_head_gantry_tilt")
    assert proc.returncode == 0, proc.stderr
    assert "gantry tilt 18.5" in proc.stdout and "37 x 512 x 512" in proc.stdout
    assert "README.md" not in proc.stdout and "LICENSE" not in proc.stdout  # docs are skipped
    assert "Traceback" not in proc.stderr and proc.stderr.strip() == ""


def test_export_round_trip_in_world_coordinates(real_data: Path, tmp_path: Path) -> None:
    folder = real_data / "ct_head_gantry_tilt"
    out = tmp_path / "tilt.nii.gz"
    proc = cli("export", folder, "--out", out)
    assert proc.returncode == 0, proc.stderr
    img = nib.load(out)
    affine = img.affine
    data = np.asanyarray(img.dataobj)
    assert data.shape == (512, 512, 37)
    checked = 0
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ipp = np.array(ds.ImagePositionPatient, float)
        row = np.array(ds.ImageOrientationPatient[:3], float)
        col = np.array(ds.ImageOrientationPatient[3:], float)
        dr, dc = (float(v) for v in ds.PixelSpacing)
        world_lps = ipp + 60 * dc * row + 300 * dr * col  # pixel (i=60, j=300) of this file
        ras = LPS_RAS @ world_lps
        i, j, k = np.linalg.solve(affine[:3, :3], ras - affine[:3, 3])
        assert (i, j) == pytest.approx((60, 300), abs=1e-3)
        assert -1e-3 <= k <= 36 + 1e-3
        if abs(k - round(k)) < 0.01:
            hu = ds.pixel_array[300, 60] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            assert abs(float(data[60, 300, int(round(k))]) - hu) <= 2
            checked += 1
    assert checked >= 14
    assert "gantry tilt" in proc.stderr  # the warnings are passed on


def test_export_synthetic_voxel_positions(ct_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ct.nii"
    assert cli("export", ct_dir, "--out", out).returncode == 0
    img = nib.load(out)
    files = sorted(ct_dir.glob("*.dcm"))
    for path in files:
        ds = pydicom.dcmread(path)
        k = int(ds.InstanceNumber) - 1
        ras = img.affine @ np.array([0, 0, k, 1.0])
        np.testing.assert_allclose(
            LPS_RAS @ ras[:3], np.array(ds.ImagePositionPatient, float), atol=1e-3
        )
        hu = ds.pixel_array.astype(int) + int(ds.RescaleIntercept)
        np.testing.assert_array_equal(np.asanyarray(img.dataobj)[:, :, k].T, hu)


def test_export_picks_largest_and_says_so(ct_dir: Path, tmp_path: Path) -> None:
    both = tmp_path / "both"
    both.mkdir()
    for p in ct_dir.glob("*.dcm"):
        (both / p.name).write_bytes(p.read_bytes())
    small = np.zeros((2, 4, 4), np.int16)
    write_series(ImageVolume(small), both / "small")
    out = tmp_path / "pick.nii.gz"
    proc = cli("export", both, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "2 series found; exporting the largest" in proc.stderr
    assert nib.load(out).shape == (18, 16, 5)
    info = json.loads(cli("info", both, "--json").stdout)
    uids = [s["series_uid"] for st in info["studies"] for s in st["series"]]
    small_uid = next(
        s["series_uid"] for st in info["studies"] for s in st["series"] if s["shape"][0] == 2
    )
    proc = cli("export", both, "--series", small_uid, "--out", out)
    assert proc.returncode == 0 and nib.load(out).shape == (4, 4, 2)
    assert len(uids) == 2


@pytest.mark.parametrize(
    "args, fragments",
    [
        (("info", "/no/such/folder"), ("/no/such/folder", "no such file")),
        (("export", "/no/such/x.dcm", "--out", "/tmp/x.nii.gz"), ("/no/such/x.dcm",)),
    ],
)
def test_errors_are_one_line(args, fragments) -> None:
    _assert_clean_error(cli(*args), *fragments)


def test_bad_inputs_are_one_line(tmp_path: Path, ct_dir: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    _assert_clean_error(cli("info", text), str(text), "not a DICOM file")
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    _assert_clean_error(cli("info", empty, "--json"), str(empty), "empty file")
    _assert_clean_error(
        cli("export", ct_dir, "--series", "1.2.3", "--out", tmp_path / "o.nii.gz"),
        "series 1.2.3 not found",
    )
    _assert_clean_error(cli("export", ct_dir, "--out", tmp_path / "o.png"), ".nii.gz")
    # OpenJPEG prints its own complaints to fd 2 for this file; the user sees one line.
    from pydicom.data import get_testdata_file

    bad_j2k = get_testdata_file("JPEG2000-embedded-sequence-delimiter.dcm")
    _assert_clean_error(cli("info", bad_j2k), bad_j2k, "could not be decoded")
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 255
    Image.fromarray(rgb).save(tmp_path / "red.png")
    _assert_clean_error(
        cli("export", tmp_path / "red.png", "--out", tmp_path / "r.nii.gz"), "colour"
    )
