"""Atomic writes, in one place for every layer (study, findings, viewstate, report, commands).

A file is written under a hidden temporary name in its own folder, flushed to disk and renamed
over its final name, so an interrupted write (full disk, Ctrl+C, power loss) leaves the old file
or the new one, never half of one, and no temporary behind.

The temporary is created with ``os.open(..., 0o666)``: the kernel applies the process umask
itself, so outputs get the same permissions as any ordinary file without this module ever
reading or changing the umask (``os.umask`` is process-wide; read-and-restore races with threads
that create files in between). This module imports nothing from ``app``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def _create_temporary(path: Path) -> Path:
    """An empty new file beside ``path`` whose name ends with ``path.name`` (writers such as
    nibabel choose the format from the suffix) and starts with a dot (folder scans skip it)."""
    for _ in range(100):
        tmp = path.parent / f"{TEMP_PREFIX}{secrets.token_hex(6)}-{path.name}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:  # name the file the user asked for, not our temporary
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        os.close(fd)
        return tmp
    raise FileExistsError(f"{path.parent}: could not create a temporary file for {path.name}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path | str, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it replaces ``path``.

    ``durable`` flushes the file to disk before the rename (a crash right after the rename can
    otherwise leave an empty file under the final name on some file systems).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary(path)
    try:
        yield tmp
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write_bytes(path: Path | str, data: bytes, durable: bool = True) -> Path:
    with atomic_path(path, durable) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: Path | str, text: str, durable: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), durable)


def check_can_write(path: Path | str) -> None:
    """Raise the OSError naming ``path`` that writing it would raise, before a long computation
    whose result would then be lost. Creates and removes a hidden empty file beside it:
    ``os.access`` answers for the real user id and says yes to root on a read-only mount."""
    tmp = _create_temporary(Path(path))
    os.unlink(tmp)
