"""``dicomweb:URL/studies/UID`` as a study source: the CLI's way of naming a study on a PACS.

``open_client`` builds a client from the command line's ``--user`` (password from the
environment, the keyring or a prompt); ``fetch_study`` retrieves into the cache and returns the
local folder, so everything after it (loading, analysis, output) is the same as for a path.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from app.pacs.cache import StudyCache, check_uid
from app.pacs.client import PacsClient
from app.pacs.credentials import password_for
from app.pacs.errors import PacsError
from app.pacs.options import PREFIX, is_dicomweb


@dataclass(frozen=True)
class DicomwebSource:
    server: str  # the DICOMweb root
    study_uid: str


def parse_source(value: str) -> DicomwebSource:
    """``dicomweb:http://host:8042/dicom-web/studies/1.2.3`` -> (server, study UID)."""
    rest = str(value)[len(PREFIX) :] if is_dicomweb(value) else str(value)
    server, sep, uid = rest.rstrip("/").rpartition("/studies/")
    if not sep or not server or not uid:
        raise PacsError(f"{value}: expected dicomweb:URL/studies/STUDY_UID")
    return DicomwebSource(server, check_uid(uid, "StudyInstanceUID"))


def open_client(server: str, args: argparse.Namespace) -> PacsClient:
    user = getattr(args, "user", None)
    password = password_for(server, user) if user else None
    size = getattr(args, "cache_size", None)
    cache = StudyCache(max_bytes=int(size * 1024**2) if size else None)
    return PacsClient(server, user, password, cache=cache)


class _Bar:
    """Instance count on a terminal only, so piped stderr holds nothing but real messages."""

    def __init__(self, label: str) -> None:
        self.label, self.tty = label, sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if self.tty:
            sys.stderr.write(f"\r\033[K{self.label}: {done}/{total} instances")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def fetch_study(source: DicomwebSource, args: argparse.Namespace) -> tuple[Path, PacsClient]:
    """The study's complete folder in the local cache (retrieved if needed) and the client."""
    client = open_client(source.server, args)
    bar = _Bar(f"retrieving {source.study_uid}")
    try:
        folder = client.retrieve(source.study_uid, progress=bar)
    finally:
        bar.clear()
    return folder, client


def publish_copy(folder: Path, out: Path) -> Path:
    """Copy a cached study to ``out`` through a hidden staging folder renamed into place, so an
    interrupted copy leaves no half study in ``out``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise PacsError(f"{out}: exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".staging-{out.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(folder, staging, ignore=shutil.ignore_patterns(".*"))
        if out.exists():
            out.rmdir()
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
