"""The local study cache's bound (least recently used out) and where passwords come from."""

from __future__ import annotations

import io
import json
import time

import pytest

from app.pacs import credentials
from app.pacs.cache import MARKER, StudyCache
from app.pacs.errors import PacsError


def _fake_study(cache: StudyCache, uid: str, size: int) -> None:
    path = cache.instance_path(uid, "1.2.3", "1.2.3.4")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\0" * size)
    cache.mark_complete(uid, 1)


def test_cache_lives_in_xdg_cache_home_and_evicts_least_recently_used(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("OSTEOVIEW_PACS_CACHE_MB", "0.25")  # 262144 bytes
    cache = StudyCache()
    assert cache.root == tmp_path / "c" / "osteoview" / "pacs" and cache.max_bytes == 262144
    for uid in ("1.1", "1.2", "1.3"):
        _fake_study(cache, uid, 100_000)
        time.sleep(0.01)
    cache.touch("1.1")  # used again: now 1.2 is the least recently used
    assert cache.evict(keep={"1.3"}) == ["1.2"]
    assert [u for u, _ in cache.studies()] == ["1.3", "1.1"]
    assert cache.usage() == 200_000
    # incomplete studies (no marker) are neither counted nor loaded as whole
    (cache.study_dir("1.1") / MARKER).write_text(json.dumps({"complete": False}))
    assert not cache.is_complete("1.1") and cache.usage() == 100_000


def test_uids_from_a_server_cannot_name_paths_outside_the_cache(tmp_path):
    cache = StudyCache(tmp_path, 10)
    for bad in ("../../etc", "1.2/../3", "", "1.2.x"):
        with pytest.raises(PacsError, match="not a valid DICOM"):
            cache.instance_path("1.2", "1.3", bad)


def test_password_from_environment_then_prompt_never_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OSTEOVIEW_PACS_PASSWORD", "s3cret")
    assert credentials.password_for("http://h/dicom-web", "reader") == "s3cret"
    monkeypatch.delenv("OSTEOVIEW_PACS_PASSWORD")
    monkeypatch.setattr(credentials, "_secure_keyring", lambda: None)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: no prompt possible
    with pytest.raises(PacsError, match="no password for reader.*OSTEOVIEW_PACS_PASSWORD"):
        credentials.password_for("http://h/dicom-web", "reader")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Tty(""))
    monkeypatch.setattr(credentials.getpass, "getpass", lambda prompt: "typed")
    assert credentials.password_for("http://h/dicom-web", "reader") == "typed"
    assert credentials.remember_password("http://h/dicom-web", "reader", "typed") is False
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing written anywhere


def test_plaintext_keyrings_are_refused(monkeypatch):
    keyring = pytest.importorskip("keyring")

    class PlaintextKeyring(keyring.backend.KeyringBackend):
        priority = 1

        def get_password(self, service, username):
            return "from-file"

        def set_password(self, service, username, password):
            raise AssertionError("must not store in plain text")

        def delete_password(self, service, username):
            pass

    monkeypatch.setattr(keyring, "get_keyring", lambda: PlaintextKeyring())
    assert not credentials.keyring_available()
    assert credentials.remember_password("http://h", "u", "p") is False
