"""Batch analysis: summary.csv, bad studies recorded, resume, and runs killed midway."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.analysis.batch import run_batch
from app.analysis.discovery import discover_studies
from app.analysis.one_study import AnalyzeOptions, default_loader
from app.analysis.tasks import get_adapter
from app.cli import main
from app.findings.io import is_complete
from app.study.dicom_writer import PatientTags, write_radiograph, write_series
from tests import fake_tasks
from tests.fake_tasks import ct_phantom, radiograph_phantom

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fake_tasks(monkeypatch):
    fake_tasks.register(monkeypatch)


def _make_batch(root: Path, n_ct: int = 3, extras: bool = True) -> Path:
    """RSNA-like layout: one subfolder per study (+ a radiograph file and a broken 'study')."""
    for n in range(n_ct):
        patient = PatientTags(name=f"PATIENT^{n}", patient_id=f"PID-{n}", accession=f"ACC-{n}")
        write_series(ct_phantom(fracture_in=n % 3 + 1), root / f"1.2.{n}", patient=patient)
    if extras:
        write_radiograph(radiograph_phantom(), root / "xr" / "hip.dcm")
        (root / "broken").mkdir()
        (root / "broken" / "slice.dcm").write_bytes(b"DICM but not really")
    return root


@pytest.fixture(scope="module")
def batch_root(tmp_path_factory) -> Path:
    return _make_batch(tmp_path_factory.mktemp("batch") / "train_images")


def _summary(out: Path) -> dict[str, dict]:
    with open(out / "summary.csv", newline="") as f:
        return {row["study"]: row for row in csv.DictReader(f)}


def _mtimes(out: Path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/findings.json")}


def test_batch_records_bad_studies_resumes_and_forces(batch_root, tmp_path, capsys):
    out = tmp_path / "out"
    calls = fake_tasks.CALLS["fake-ct"]
    rc = main(["analyze", str(batch_root), "--task", "fake-ct", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 1  # two studies failed
    assert fake_tasks.CALLS["fake-ct"] - calls == 3
    rows = _summary(out)
    assert set(rows) == {"1.2.0", "1.2.1", "1.2.2", "xr", "broken"}
    assert rows["xr"]["status"] == "failed" and "needs a CT volume" in rows["xr"]["reason"]
    assert rows["broken"]["status"] == "failed" and "broken" in rows["broken"]["reason"]
    for n in range(3):
        row = rows[f"1.2.{n}"]
        assert row["status"] == "ok" and row["patient_name"] == f"PATIENT^{n}"
        assert float(row[f"p:V{n + 1}"]) == 1.0 and float(row["p:fracture"]) == 1.0
        assert float(row["time_s"]) > 0
        assert is_complete(out / f"1.2.{n}")
    assert (
        not (out / "xr").exists()
        and not (out / "broken").exists()
        and not (out / ".staging").exists()
    )
    assert "ETA" in captured.err and "FAILED" in captured.err
    assert "3 of 5 studies analysed" in captured.out

    # Second run: the three done studies are skipped (no adapter call, files untouched).
    before = _mtimes(out)
    calls = fake_tasks.CALLS["fake-ct"]
    assert main(["analyze", str(batch_root), "--task", "fake-ct", "--out", str(out)]) == 1
    assert fake_tasks.CALLS["fake-ct"] == calls
    assert _mtimes(out) == before
    rows2 = _summary(out)
    assert rows2["1.2.1"]["status"] == "ok" and rows2["1.2.1"]["reason"] == "done in an earlier run"
    assert rows2["1.2.1"]["p:V2"] == rows["1.2.1"]["p:V2"]
    assert "done in an earlier run" in capsys.readouterr().err

    # --force analyses everything again.
    assert (
        main(["analyze", str(batch_root), "--task", "fake-ct", "--out", str(out), "--force"]) == 1
    )
    assert fake_tasks.CALLS["fake-ct"] == calls + 3
    after = _mtimes(out)
    assert all(after[k] != before[k] for k in before)


def test_batch_reports_and_anonymised_summary(batch_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OSTEOVIEW_SECRET_FILE", str(tmp_path / "secret" / "pseudonym.key"))
    out = tmp_path / "out"
    rc = main(
        [
            "analyze",
            str(batch_root),
            "--task",
            "fake-ct",
            "--out",
            str(out),
            "--report",
            "--anonymise",
        ]
    )
    assert rc == 1
    text = (out / "summary.csv").read_text()
    assert "PATIENT^" not in text and "PID-" not in text and "ACC-" not in text
    # Neither the study folder names nor the batch folder reach the outputs.
    for leak in ("1.2.0", "1.2.1", "1.2.2", "broken", "xr", str(batch_root)):
        assert leak not in text, leak
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(folders) == 3 and all(name.startswith("ANON-") for name in folders)
    rows = _summary(out)
    assert sorted(rows) == sorted([*folders, *(r for r in rows if rows[r]["status"] == "failed")])
    for name in folders:
        assert rows[name]["patient_id"] == name  # folder, summary and findings agree
        pdf = out / name / "report.pdf"
        txt = subprocess.run(
            ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert "PATIENT^" not in txt and name in txt
    # A report file name makes no sense for many studies.
    rc = main(
        ["analyze", str(batch_root), "--task", "fake-ct", "--out", str(out), "--report", "x.pdf"]
    )
    assert rc == 2 and "one per study" in capsys.readouterr().err


def test_a_crashing_study_is_recorded_and_the_batch_goes_on(batch_root, tmp_path):
    def loader(path: Path):
        if path.name == "1.2.1":
            raise RuntimeError("decoder blew up")
        return default_loader(path)

    result = run_batch(
        batch_root, get_adapter("fake-ct"), tmp_path / "out", AnalyzeOptions(), loader=loader
    )
    by_name = {r.study: r for r in result.rows}
    assert (
        by_name["1.2.1"].status == "failed"
        and "internal error: decoder blew up" in by_name["1.2.1"].reason
    )
    assert by_name["1.2.0"].status == by_name["1.2.2"].status == "ok"


def test_discovery_skips_side_files_and_output_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b.dcm").write_bytes(b"x")
    (tmp_path / "c.nii.gz").write_bytes(b"x")
    for side in ("summary.csv", "truth.json", ".hidden", "README.md"):
        (tmp_path / side).write_text("x")
    (tmp_path / "out").mkdir()
    names = [e.name for e in discover_studies(tmp_path, exclude=tmp_path / "out")]
    assert names == ["a", "b", "c"]


def _launch(root: Path, out: Path, sleep: float) -> subprocess.Popen:
    launcher = (
        "import sys; from tests.fake_tasks import register_globally; register_globally(); "
        "from app.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    env = {**os.environ, "FAKE_ADAPTER_SLEEP": str(sleep)}
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            launcher,
            "analyze",
            str(root),
            "--task",
            "fake-ct",
            "--out",
            str(out),
            "--report",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _no_partial_files(out: Path) -> None:
    for folder in out.iterdir():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        assert is_complete(folder), folder
        assert (folder / "report.pdf").stat().st_size > 0
        assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]
    assert not [p for p in out.glob(".tmp-*")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_batch_leaves_no_partial_study_and_resumes(tmp_path, sig):
    root = _make_batch(tmp_path / "studies", n_ct=5, extras=False)
    out = tmp_path / "out"
    proc = _launch(root, out, sleep=0.6)
    deadline = time.time() + 90
    while not (out / "1.2.0" / "findings.json").exists():  # first study done, second under way
        assert proc.poll() is None and time.time() < deadline, (
            proc.stderr.read() if proc.poll() else "slow"
        )
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    proc.stderr.close()
    if sig == signal.SIGTERM:
        assert proc.returncode == 130
        assert not (out / ".staging").exists()  # cleaned up on the way out
        rows = _summary(out)
        assert rows["1.2.0"]["status"] == "ok" and rows["1.2.4"]["status"] == "pending"
    _no_partial_files(out)
    done = {p.name for p in out.iterdir() if not p.name.startswith(".") and p.is_dir()}
    assert "1.2.0" in done and len(done) < 5

    calls = fake_tasks.CALLS["fake-ct"]
    rc = main(["analyze", str(root), "--task", "fake-ct", "--out", str(out), "--report"])
    assert rc == 0
    assert fake_tasks.CALLS["fake-ct"] - calls == 5 - len(done)  # only the missing ones ran
    _no_partial_files(out)
    assert {r["status"] for r in _summary(out).values()} == {"ok"}
    assert not (out / ".staging").exists()  # what a killed run left there is gone


def test_batch_of_files_needs_the_batch_flag(tmp_path, capsys):
    root = tmp_path / "xrays"
    for n in range(2):
        write_radiograph(radiograph_phantom(), root / f"hip{n}.dcm")
    out = tmp_path / "out"
    assert main(["analyze", str(root), "--task", "fake-xr", "--out", str(out), "--batch"]) == 0
    assert is_complete(out / "hip0") and is_complete(out / "hip1")
    assert set(_summary(out)) == {"hip0", "hip1"}
    shutil.rmtree(out)
