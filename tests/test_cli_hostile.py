"""Hostile and broken input at the command line (issue 17 items 4 and 9): one readable line and
exit code 2, never a traceback; and a study's outputs appear all together or not at all."""

from __future__ import annotations

import errno
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from app.cli import main
from app.errors import describe_os_error
from app.study.dicom_writer import PatientTags, write_series
from tests import fake_tasks
from tests.fake_tasks import ct_phantom

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    fake_tasks.register(monkeypatch)
    monkeypatch.setenv("OSTEOVIEW_SECRET_FILE", str(tmp_path / "secret" / "pseudonym.key"))


def _one_line_error(capsys, rc: int, *must_contain: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert rc == 2, captured
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    for text in must_contain:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def _zero_affine_nifti(path: Path) -> Path:
    """A NIfTI whose sform is all zero (code 1) and which has no qform: nothing places it."""
    img = nib.Nifti1Image(np.arange(120, dtype=np.int16).reshape(4, 5, 6), np.eye(4))
    img.to_filename(path)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<h", raw, 252, 0)  # qform_code
    struct.pack_into("<h", raw, 254, 1)  # sform_code
    struct.pack_into("<12f", raw, 280, *([0.0] * 12))  # srow_x, srow_y, srow_z
    path.write_bytes(bytes(raw))
    return path


def test_export_of_a_nifti_with_an_all_zero_affine_is_one_line_in_a_real_process(tmp_path):
    src = _zero_affine_nifti(tmp_path / "zero.nii")
    out = tmp_path / "out.nii.gz"
    for args in (["export", str(src), "--out", str(out)], ["info", str(src)]):
        proc = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "zero.nii" in lines[0] and "affine is all zero" in lines[0]
    assert not out.exists()


def test_writing_a_volume_with_broken_geometry_names_the_file(tmp_path, capsys, monkeypatch):
    """A volume whose geometry no affine can express (from any loader) is refused by the writer
    with the output's name, not nibabel's HeaderDataError."""
    from app.study import nifti
    from app.study.geometry import ImageVolume

    broken = ImageVolume(
        np.zeros((2, 3, 4), np.int16), (1.0, 1.0, 1.0), np.zeros(3), np.zeros((3, 3))
    )
    with pytest.raises(ValueError, match=r"out\.nii\.gz: cannot write NIfTI.*affine is all zero"):
        nifti.write_nifti(broken, tmp_path / "out.nii.gz")
    assert list(tmp_path.iterdir()) == []  # no temporary left


def _deny(path_part: str):
    """An os.open that refuses to create files under ``path_part`` as a read-only folder would
    (tests run as root, for whom chmod changes nothing)."""
    real_open = os.open

    def fake_open(path, flags, *args, **kwargs):
        if path_part in str(path) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    return fake_open


def test_screenshot_into_a_read_only_folder_is_one_line(tmp_path, capsys, monkeypatch):
    study = tmp_path / "study"
    write_series(ct_phantom(), study)
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    monkeypatch.setattr("app.atomic.os.open", _deny(str(read_only)))
    rc = main(["screenshot", str(study), "--out", str(read_only / "shot.png")])
    shot = read_only / "shot.png"
    line = _one_line_error(capsys, rc, f"cannot write {shot}: permission denied")
    assert "Errno" not in line


def test_save_png_names_the_file_and_the_reason(tmp_path, monkeypatch):
    pytest.importorskip("PySide6")
    from app.ui.capture import save_png

    monkeypatch.setattr("app.atomic.os.open", _deny(str(tmp_path)))
    with pytest.raises(PermissionError) as info:
        save_png(np.zeros((4, 5, 3), np.uint8), str(tmp_path / "shot.png"))
    message = describe_os_error(info.value, (str(tmp_path / "shot.png"),))
    assert message == f"cannot write {tmp_path / 'shot.png'}: permission denied"


def test_permission_denied_is_said_in_words(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked.dcm"

    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(locked))

    monkeypatch.setattr("app.commands.export.load_quietly", refuse)
    rc = main(["export", str(locked), "--out", str(tmp_path / "o.nii.gz")])
    line = _one_line_error(capsys, rc, f"cannot read {locked}: permission denied")
    assert "Errno" not in line and "[" not in line


def test_os_errors_say_read_or_write_and_why(tmp_path):
    out = tmp_path / "out"
    cases = [
        (PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "in.dcm")), "read"),
        (PermissionError(errno.EACCES, "Permission denied", str(out / "a.nii.gz")), "write"),
        (PermissionError(errno.EACCES, "x", str(tmp_path / ".out.staging-12")), "write"),
        (OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x")), "write"),
    ]
    for exc, verb in cases:
        assert describe_os_error(exc, (str(out),)).startswith(f"cannot {verb} ")
    assert describe_os_error(OSError(errno.EROFS, "Read-only file system")) == (
        "the file system is read-only"
    )


# ---- analyze: outputs all together or not at all --------------------------------------------
def _study(root: Path, name: str = "ROE^RICHARD") -> Path:
    write_series(ct_phantom(fracture_in=2), root, patient=PatientTags(name=name, patient_id="P1"))
    return root


def test_a_ten_thousand_character_patient_name_gives_a_complete_report(tmp_path, capsys):
    study = _study(tmp_path / "study", name="LONG" * 2500)
    out = tmp_path / "out"
    rc = main(["analyze", str(study), "--task", "fake-ct", "--out", str(out), "--report"])
    assert rc == 0, capsys.readouterr().err
    text = subprocess.run(
        ["pdftotext", str(out / "report.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "more characters not shown" in " ".join(text.split())
    assert (out / "findings.json").is_file()


def test_a_report_that_fails_leaves_no_findings_to_block_the_next_run(
    tmp_path, capsys, monkeypatch
):
    import app.report

    study = _study(tmp_path / "study")
    out = tmp_path / "out"
    real_build = app.report.build_report

    def full_disk(inp, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(app.report, "build_report", full_disk)
    rc = main(["analyze", str(study), "--task", "fake-ct", "--out", str(out), "--report"])
    _one_line_error(capsys, rc, "no space left on the device")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging
    monkeypatch.setattr(app.report, "build_report", real_build)
    rc = main(["analyze", str(study), "--task", "fake-ct", "--out", str(out), "--report"])
    assert rc == 0, capsys.readouterr().err  # not "already exists"
    assert {"findings.json", "report.pdf"} <= {p.name for p in out.iterdir()}


def test_a_report_elsewhere_appears_only_with_its_findings(tmp_path, capsys, monkeypatch):
    import app.findings.io

    study = _study(tmp_path / "study")
    out, report = tmp_path / "out", tmp_path / "reports" / "r.pdf"
    real_write = app.findings.io.atomic_write_text

    def fail_findings(path, text, durable=True):
        if Path(path).name == "findings.json":
            raise OSError(errno.EIO, "Input/output error", str(path))
        return real_write(path, text, durable)

    monkeypatch.setattr(app.findings.io, "atomic_write_text", fail_findings)
    rc = main(
        ["analyze", str(study), "--task", "fake-ct", "--out", str(out), "--report", str(report)]
    )
    _one_line_error(capsys, rc, "input/output error")
    assert not out.exists() and not report.exists()
    monkeypatch.setattr(app.findings.io, "atomic_write_text", real_write)
    rc = main(
        ["analyze", str(study), "--task", "fake-ct", "--out", str(out), "--report", str(report)]
    )
    assert rc == 0 and report.is_file() and (out / "findings.json").is_file()


def test_force_into_a_folder_holding_other_files_replaces_only_the_old_result(tmp_path, capsys):
    study = _study(tmp_path / "study")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the reader's own file")
    assert main(["analyze", str(study), "--task", "fake-ct", "--out", str(out), "--report"]) == 0
    first = json.loads((out / "findings.json").read_text())
    stale = out / "labelmap_99_old.nii.gz"
    stale.write_bytes(b"old")  # as if the previous result had named another overlay file
    doc = dict(first, overlays=[*first["overlays"], {"type": "labelmap", "file": stale.name}])
    (out / "findings.json").write_text(json.dumps(doc))
    rc = main(["analyze", str(study), "--task", "fake-ct", "--out", str(out), "--force"])
    assert rc == 0, capsys.readouterr().err
    names = {p.name for p in out.iterdir()}
    assert "notes.txt" in names and stale.name not in names
    assert "report.pdf" not in names  # the old result's report went with it
    assert (out / "findings.json").is_file()


def test_a_staging_folder_left_by_a_killed_run_is_cleared(tmp_path, capsys):
    study = _study(tmp_path / "study")
    out = tmp_path / "out"
    dead = tmp_path / ".out.staging-999999999"  # no such pid
    dead.mkdir()
    (dead / "findings.json").write_text("{}")
    assert main(["analyze", str(study), "--task", "fake-ct", "--out", str(out)]) == 0
    assert not dead.exists()


def test_an_output_folder_whose_parent_is_read_only_is_staged_inside(tmp_path, capsys, monkeypatch):
    """An admin made OUT for the user in a folder the user cannot write: stage inside OUT."""
    study = _study(tmp_path / "study")
    out = tmp_path / "out"
    out.mkdir()
    real_mkdir = Path.mkdir

    def parent_read_only(self, *args, **kwargs):
        if self.parent == tmp_path and self.name.startswith(".out.staging-"):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", parent_read_only)
    rc = main(["analyze", str(study), "--task", "fake-ct", "--out", str(out), "--report"])
    assert rc == 0, capsys.readouterr().err
    assert {"findings.json", "report.pdf"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
