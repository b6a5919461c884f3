"""The local study cache: retrieved studies on disk, bounded in size, least-recently-used out.

Layout: ``ROOT/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` and
``ROOT/<StudyInstanceUID>/.study.json`` ({"complete", "instances", "bytes", "last_used"}). Each
instance is written atomically, so a study interrupted mid-retrieve holds only whole files and
the next retrieve resumes from them; a study is usable only once its marker says complete.

ROOT is ``$XDG_CACHE_HOME/osteoview/pacs`` (``~/.cache/osteoview/pacs``); the bound is
``OSTEOVIEW_PACS_CACHE_MB`` (default 20 GB) or the caller's ``max_bytes``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from app.atomic import atomic_write_bytes
from app.pacs.errors import PacsError

CACHE_SIZE_ENV = "OSTEOVIEW_PACS_CACHE_MB"
DEFAULT_MAX_BYTES = 20 * 1024**3
MARKER = ".study.json"
# A UID becomes a file name: only digits and dots (PS3.5 9.1), so a hostile server cannot name
# a path outside the cache.
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def check_uid(uid: str, what: str = "UID") -> str:
    uid = str(uid).strip()
    if not _UID.match(uid) or len(uid) > 64:
        raise PacsError(f"{uid!r} is not a valid DICOM {what}")
    return uid


def default_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "osteoview" / "pacs"


def default_max_bytes() -> int:
    value = os.environ.get(CACHE_SIZE_ENV)
    if not value:
        return DEFAULT_MAX_BYTES
    try:
        mb = float(value)
    except ValueError as exc:
        raise PacsError(f"{CACHE_SIZE_ENV}={value!r}: expected a size in megabytes") from exc
    return int(mb * 1024**2)


class StudyCache:
    """Retrieved studies under ``root``, at most ``max_bytes`` of complete studies kept."""

    def __init__(self, root: Path | None = None, max_bytes: int | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.max_bytes = default_max_bytes() if max_bytes is None else int(max_bytes)

    def study_dir(self, study_uid: str) -> Path:
        return self.root / check_uid(study_uid, "StudyInstanceUID")

    def instance_path(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        return (
            self.study_dir(study_uid)
            / check_uid(series_uid, "SeriesInstanceUID")
            / f"{check_uid(sop_uid, 'SOPInstanceUID')}.dcm"
        )

    def present(self, study_uid: str) -> set[str]:
        """SOPInstanceUIDs already on disk for the study (whole files only: see module doc)."""
        folder = self.study_dir(study_uid)
        if not folder.is_dir():
            return set()
        return {p.stem for p in folder.glob("*/*.dcm") if not p.name.startswith(".")}

    def _marker(self, study_uid: str) -> dict:
        try:
            return json.loads((self.study_dir(study_uid) / MARKER).read_text())
        except (OSError, ValueError):
            return {}

    def is_complete(self, study_uid: str) -> bool:
        return bool(self._marker(study_uid).get("complete"))

    def mark_complete(self, study_uid: str, instances: int) -> None:
        folder = self.study_dir(study_uid)
        size = sum(p.stat().st_size for p in folder.glob("*/*.dcm") if not p.name.startswith("."))
        info = {"complete": True, "instances": instances, "bytes": size, "last_used": time.time()}
        atomic_write_bytes(folder / MARKER, json.dumps(info).encode())

    def touch(self, study_uid: str) -> None:
        """Record a use (the LRU order)."""
        info = self._marker(study_uid)
        if info:
            info["last_used"] = time.time()
            atomic_write_bytes(self.study_dir(study_uid) / MARKER, json.dumps(info).encode())

    def studies(self) -> list[tuple[str, dict]]:
        """(study UID, marker) of every complete study, least recently used first."""
        if not self.root.is_dir():
            return []
        out = []
        for d in self.root.iterdir():
            if d.is_dir() and _UID.match(d.name):
                info = self._marker(d.name)
                if info.get("complete"):
                    out.append((d.name, info))
        return sorted(out, key=lambda t: float(t[1].get("last_used", 0)))

    def usage(self) -> int:
        return sum(int(info.get("bytes", 0)) for _, info in self.studies())

    def evict(self, keep: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Remove least-recently-used complete studies until the cache fits; ``keep`` (the study
        just retrieved or open) is never removed. Returns the UIDs removed."""
        removed = []
        entries = self.studies()
        total = sum(int(info.get("bytes", 0)) for _, info in entries)
        for uid, info in entries:
            if total <= self.max_bytes:
                break
            if uid in keep:
                continue
            shutil.rmtree(self.root / uid, ignore_errors=True)
            total -= int(info.get("bytes", 0))
            removed.append(uid)
        return removed
