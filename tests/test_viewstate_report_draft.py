"""The reader's report draft without Qt: save/restore, atomic writes, sign-off and un-signing."""

from __future__ import annotations

import json
import os

import pytest

from app.viewstate import report_draft as rd
from app.viewstate.report_draft import (
    DraftError,
    ReportDraft,
    data_dir,
    draft_path,
    load_draft,
    save_draft,
    view_caption,
)

STUDY, SERIES = "1.2.826.0.1.1", "1.2.826.0.1.1.2"


def test_round_trip_keyed_by_study_and_series(tmp_path):
    d = ReportDraft(STUDY, SERIES)
    d.edit("No fracture.\nDegenerative change C5-C6 \u2013 mild.", "Dr Ada Reader")
    d.sign("2026-11-25 15:00:00 UTC")
    path = save_draft(d, tmp_path)
    assert path.parent == tmp_path / "report-drafts"
    back = load_draft(tmp_path, STUDY, SERIES)
    assert back == d and back.is_signed and "\u2013" in back.impression
    assert load_draft(tmp_path, STUDY, "another-series") is None
    assert load_draft(tmp_path, "another-study", SERIES) is None


def test_data_dir_env_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv(rd.DATA_DIR_ENV, str(tmp_path / "x"))
    assert data_dir("/somewhere/else") == tmp_path / "x"
    monkeypatch.delenv(rd.DATA_DIR_ENV)
    assert data_dir("/somewhere/else") == rd.Path("/somewhere/else")


def test_sign_off_stamps_and_editing_unsigns():
    d = ReportDraft(STUDY, SERIES)
    assert "name" in d.can_sign()
    d.edit(reader_name="Dr B")
    assert "impression" in d.can_sign()
    with pytest.raises(ValueError):
        d.sign()
    d.edit("Fracture of C2.")
    d.sign()
    assert d.is_signed and d.signed_by == "Dr B" and d.signed_off.endswith("UTC")
    assert "Signed off by Dr B" in d.status_text()
    assert not d.edit("Fracture of C2.")  # no change: still signed
    assert d.is_signed
    assert d.edit("Fracture of C2 and C3.")  # a real edit withdraws the signature
    assert not d.is_signed and d.status_text() == "Not signed off"
    d.sign()
    d.edit(reader_name="Dr C")  # another reader: the old signature does not cover it
    assert not d.is_signed


def test_signature_for_another_name_is_not_trusted(tmp_path):
    d = ReportDraft(STUDY, SERIES, impression="x", reader_name="Dr A")
    d.sign()
    data = d.to_json()
    data["reader_name"] = "Dr Z"  # edited by hand after signing
    path = draft_path(tmp_path, STUDY, SERIES)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    assert not load_draft(tmp_path, STUDY, SERIES).is_signed


def test_failed_write_keeps_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    d = ReportDraft(STUDY, SERIES, impression="first version")
    path = save_draft(d, tmp_path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rd.os, "replace", broken_replace)
    d.edit("second version")
    with pytest.raises(DraftError) as err:
        save_draft(d, tmp_path)
    assert str(path) in str(err.value) and "No space left" in str(err.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_write_failing_midway_leaves_no_partial_file(tmp_path, monkeypatch):
    d = ReportDraft(STUDY, SERIES, impression="never half written " * 100)
    real_fsync = os.fsync

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(rd.os, "fsync", failing_fsync)
    with pytest.raises(DraftError):
        save_draft(d, tmp_path)
    folder = tmp_path / "report-drafts"
    assert list(folder.iterdir()) == []  # neither the draft nor a temporary
    monkeypatch.setattr(rd.os, "fsync", real_fsync)
    save_draft(d, tmp_path)
    assert load_draft(tmp_path, STUDY, SERIES).impression == d.impression


def test_corrupt_draft_is_an_error_naming_the_file(tmp_path):
    path = draft_path(tmp_path, STUDY, SERIES)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(DraftError) as err:
        load_draft(tmp_path, STUDY, SERIES)
    assert str(path) in str(err.value)


def test_view_caption():
    cap = view_caption("Axial", 62, 124, (400, 1800), 1.0, ["Vertebrae C1-C7"])
    assert cap == "Axial 63/124, W 1800 L 400, layers: Vertebrae C1-C7"
    cap = view_caption("DX", None, 1, (2000, 4000), 2.0, [], inverted=True)
    assert cap == "DX, W 4000 L 2000 inverted, zoom 2.0x, layers: none"
