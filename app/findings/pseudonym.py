"""Pseudonyms for anonymised outputs: HMAC-SHA256 of a study's identifier under a secret key.

An unkeyed hash of a StudyInstanceUID can be linked back by anyone who holds the UID (hash it
and compare); with a key, only the key's holder can. The key is either one the user gives
(``--anonymise-key FILE``: the same key gives the same pseudonyms on every machine, so several
sites can link their outputs) or a per-installation secret created on first use and stored
readable by its owner only.

Where the installation secret lives: ``$OSTEOVIEW_SECRET_FILE`` when set (tests set it to a
temporary file), else ``$XDG_CONFIG_HOME/osteoview/pseudonym.key``, else
``~/.config/osteoview/pseudonym.key``. It is created only when an output is first anonymised.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import threading
from pathlib import Path

SECRET_ENV = "OSTEOVIEW_SECRET_FILE"
KEY_BYTES = 32
MIN_KEY_BYTES = 16  # a shorter key could be guessed by trying every UID and key together
PSEUDONYM_HEX = 16  # 64 bits: no collision expected among millions of studies
PREFIX = "ANON-"

_cache: dict[str, bytes] = {}
_lock = threading.Lock()


class PseudonymKeyError(Exception):
    """The pseudonym key cannot be read or created, or is unsafe; names the file and why."""


def default_secret_path() -> Path:
    override = os.environ.get(SECRET_ENV)
    if override:
        return Path(override)
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "osteoview" / "pseudonym.key"


def pseudonym(identifier: str, key: bytes) -> str:
    """``ANON-`` and 16 hex digits of HMAC-SHA256(key, identifier)."""
    digest = hmac.new(key, identifier.encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:PSEUDONYM_HEX].upper()


def read_key_file(path: Path | str) -> bytes:
    """A key the user gives: the file's bytes, at least ``MIN_KEY_BYTES`` of them."""
    path = Path(path)
    try:
        key = path.read_bytes()
    except FileNotFoundError as exc:
        raise PseudonymKeyError(f"{path}: no such key file") from exc
    except IsADirectoryError as exc:
        raise PseudonymKeyError(f"{path}: is a folder, not a key file") from exc
    except PermissionError as exc:
        raise PseudonymKeyError(f"cannot read {path}: permission denied") from exc
    except OSError as exc:
        raise PseudonymKeyError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"{path}: the key has {len(key)} bytes; use at least {MIN_KEY_BYTES} random bytes "
            f"(e.g. `head -c {KEY_BYTES} /dev/urandom > {path.name}`)"
        )
    return key


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PseudonymKeyError(
            f"{path}: the pseudonym secret is readable by other users "
            f"(mode {stat.S_IMODE(mode):o}); run `chmod 600 {path}`"
        )


def _create_secret(path: Path) -> None:
    """Write a new random secret with mode 0600, never replacing one another process made."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{secrets.token_hex(6)}-{path.name}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if another process created it first: theirs is kept
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not path.exists():
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def installation_key(path: Path | None = None) -> bytes:
    """The per-installation secret, created on first use; cached per file for the process."""
    path = Path(path) if path is not None else default_secret_path()
    with _lock:
        cached = _cache.get(str(path))
        if cached is not None:
            return cached
        try:
            if not path.exists():
                _create_secret(path)
            _check_private(path)
            key = path.read_bytes()
        except PseudonymKeyError:
            raise
        except OSError as exc:
            raise PseudonymKeyError(
                f"cannot use the pseudonym secret {path}: {exc.strerror or exc} "
                f"(set {SECRET_ENV} or give --anonymise-key FILE)"
            ) from exc
        if len(key) < MIN_KEY_BYTES:
            raise PseudonymKeyError(
                f"{path}: the pseudonym secret has {len(key)} bytes (at least {MIN_KEY_BYTES} "
                "expected); remove it to have a new one made"
            )
        _cache[str(path)] = key
        return key
