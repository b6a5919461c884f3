"""``dicomweb:URL/studies/UID`` as a study source: the CLI's way of naming a study on a PACS;
``dicomweb:URL/studies?PatientID=...&StudyDate=...&ModalitiesInStudy=CT`` names every study a
QIDO-RS search finds (a batch source).

``open_client`` builds a client from the command line's ``--user`` (password from the
environment, the keyring or a prompt); ``fetch_study`` retrieves into the cache and returns the
local folder, so everything after it (loading, analysis, output) is the same as for a path.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import urllib.parse
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


# Query keys a batch source may use -> PacsClient.search arguments.
_QUERY_KEYS = {
    "PatientID": "patient_id",
    "PatientName": "patient_name",
    "StudyDate": "study_date",
    "ModalitiesInStudy": "modality",
    "limit": "limit",
}


def is_query(value: str) -> bool:
    return is_dicomweb(value) and "/studies?" in str(value)


def parse_query(value: str) -> tuple[str, dict]:
    """``dicomweb:URL/studies?PatientID=X`` -> (server, PacsClient.search keyword arguments)."""
    rest = str(value)[len(PREFIX) :]
    server, _, query = rest.partition("/studies?")
    fields = urllib.parse.parse_qs(query, keep_blank_values=False, strict_parsing=False)
    unknown = sorted(set(fields) - set(_QUERY_KEYS))
    if not server or unknown:
        raise PacsError(
            f"{value}: expected dicomweb:URL/studies?KEY=VALUE&... with keys "
            f"{', '.join(_QUERY_KEYS)}" + (f" (not {', '.join(unknown)})" if unknown else "")
        )
    kwargs: dict = {_QUERY_KEYS[k]: v[-1] for k, v in fields.items()}
    if "limit" in kwargs:
        if not str(kwargs["limit"]).isdigit():
            raise PacsError(f"{value}: limit must be a whole number")
        kwargs["limit"] = int(kwargs["limit"])
    else:
        kwargs["limit"] = 1000
    return server, kwargs


def fetch_query(value: str, args: argparse.Namespace) -> Path:
    """Retrieve every study a query finds into the cache and return a folder holding one link
    per study, named by its StudyInstanceUID (stable names: the batch resumes across runs).
    The query's studies are kept in the cache together, even beyond its size bound, until the
    next retrieve."""
    server, kwargs = parse_query(value)
    client = open_client(server, args)
    hits = client.search(**kwargs)
    if not hits:
        raise PacsError(f"{server}: no study matches {value.partition('?')[2]}")
    uids = {h.study_uid for h in hits}
    for n, hit in enumerate(hits, start=1):
        bar = _Bar(f"retrieving study {n}/{len(hits)}")
        try:
            client.retrieve(hit.study_uid, progress=bar, keep=uids)
        finally:
            bar.clear()
    digest = hashlib.sha256(value.encode()).hexdigest()[:16]
    links = client.cache.root / ".queries" / digest
    shutil.rmtree(links, ignore_errors=True)
    links.mkdir(parents=True)
    for uid in sorted(uids):
        (links / uid).symlink_to(client.cache.study_dir(uid), target_is_directory=True)
    return links


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
