"""A DICOMweb client for one PACS: QIDO-RS search, WADO-RS retrieve into the study cache (progress,
cancel, resume after a dropped connection), STOW-RS store. Built on ``dicomweb-client``; every
failure becomes a ``PacsError`` naming the server and the reason.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pydicom
import requests
import requests.adapters
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass
from pydicom.dataset import Dataset

from app.atomic import atomic_write_bytes
from app.pacs.cache import StudyCache, check_uid
from app.pacs.errors import PacsCancelled, PacsError, describe

Progress = Callable[[int, int], None]  # (instances done, instances in the study)
Cancel = Callable[[], bool]

# Original transfer syntax: no transcoding on the server, and the cache holds what the PACS holds.
_ANY_SYNTAX = (("application/dicom", "*"),)
_RETRIEVE_ATTEMPTS = 3  # a dropped connection is retried from what already arrived


class _ShortAnswer(requests.ConnectionError):
    """A multipart answer that ended before all the instances asked for had arrived."""


_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


@dataclass(frozen=True)
class StudyHit:
    """One QIDO-RS study match."""

    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    modalities: tuple[str, ...] = ()
    description: str = ""
    accession: str = ""
    instances: int | None = None


def _value(item: dict, tag: str) -> str:
    """The first value of a DICOM JSON attribute ("" when absent); a PN's Alphabetic form."""
    values = (item.get(tag) or {}).get("Value") or []
    if not values:
        return ""
    v = values[0]
    if isinstance(v, dict):
        v = v.get("Alphabetic", "")
    return str(v)


def _values(item: dict, tag: str) -> tuple[str, ...]:
    return tuple(str(v) for v in (item.get(tag) or {}).get("Value") or [])


def _json_list(result: object, server: str, what: str) -> list[dict]:
    """A QIDO answer must be a list of DICOM JSON objects; anything else is a malformed answer."""
    if not isinstance(result, list) or not all(isinstance(i, dict) for i in result):
        raise PacsError(f"{server}: {what}: the server answered with malformed JSON")
    return result


class _QueryCharsAdapter(requests.adapters.HTTPAdapter):
    """Sends the DICOM wildcards ``*`` and ``?`` literally in query strings.

    dicomweb-client percent-encodes query values, and Orthanc 1.10's DICOMweb plugin compares
    them undecoded: ``PatientName=DOE%2A`` matches nothing there. Both characters are legal in
    a query as they are (RFC 3986), so any server reads the same value. (A ``^`` in a name does
    not match on Orthanc 1.10 either way; search ``DOE*`` rather than ``DOE^JOHN``.)
    """

    _LITERAL = {"%2A": "*", "%3F": "?"}

    def send(self, request, **kwargs):
        if request.url and "?" in request.url:
            head, _, query = request.url.partition("?")
            for escaped, char in self._LITERAL.items():
                query = query.replace(escaped, char)
            request.url = f"{head}?{query}"
        return super().send(request, **kwargs)


def _part10(ds: Dataset) -> Dataset:
    """``ds`` as a DICOM Part 10 file (preamble, DICM, file meta): dicomweb-client writes a
    dataset as it finds it, and a dataset built in memory has no preamble, which servers store
    as a file nothing can open again."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    buf.seek(0)
    return pydicom.dcmread(buf)


class PacsClient:
    """One DICOMweb server (``url`` is the DICOMweb root, e.g. http://host:8042/dicom-web)."""

    def __init__(
        self,
        url: str,
        user: str | None = None,
        password: str | None = None,
        cache: StudyCache | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise PacsError(f"{url}: a DICOMweb URL starts with http:// or https://")
        self.cache = cache or StudyCache()
        session = (
            create_session_from_user_pass(user, password or "") if user else requests.Session()
        )
        for scheme in ("http://", "https://"):
            session.mount(scheme, _QueryCharsAdapter())
        self._web = DICOMwebClient(self.url, session=session, timeout=timeout_s)
        # Retries of our own (resume from the cache); the library's exponential back-off would
        # only make a dead server slower to report.
        self._web.set_http_retry_params(retry=False)

    # ---- QIDO-RS ------------------------------------------------------------------------------
    def search(
        self,
        patient_id: str = "",
        patient_name: str = "",
        study_date: str = "",
        modality: str = "",
        limit: int = 100,
    ) -> list[StudyHit]:
        """Studies matching every given field (name: DICOM wildcards, e.g. ``DOE*``; date:
        ``YYYYMMDD`` or a ``YYYYMMDD-YYYYMMDD`` range)."""
        filters = {
            k: v
            for k, v in {
                "PatientID": patient_id,
                "PatientName": patient_name,
                "StudyDate": study_date,
                "ModalitiesInStudy": modality,
            }.items()
            if v
        }
        fields = ["PatientName", "PatientID", "StudyDate", "ModalitiesInStudy", "StudyDescription",
                  "AccessionNumber", "NumberOfStudyRelatedInstances"]  # fmt: skip
        what = "study search"
        try:
            found = self._web.search_for_studies(search_filters=filters, fields=fields, limit=limit)
        except Exception as exc:
            raise describe(exc, self.url, what) from exc
        hits = []
        for item in _json_list(found, self.url, what):
            count = _value(item, "00201208")
            hits.append(
                StudyHit(
                    study_uid=check_uid(_value(item, "0020000D"), "StudyInstanceUID"),
                    patient_id=_value(item, "00100020"),
                    patient_name=_value(item, "00100010"),
                    study_date=_value(item, "00080020"),
                    modalities=_values(item, "00080061"),
                    description=_value(item, "00081030"),
                    accession=_value(item, "00080050"),
                    instances=int(count) if count.isdigit() else None,
                )
            )
        return hits

    def instances(self, study_uid: str) -> list[tuple[str, str]]:
        """(SeriesInstanceUID, SOPInstanceUID) of every instance of the study; PacsError when
        the server has no such study."""
        study_uid = check_uid(study_uid, "StudyInstanceUID")
        what = f"listing study {study_uid}"
        try:
            found = self._web.search_for_instances(study_instance_uid=study_uid, get_remaining=True)
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                raise PacsError(f"{self.url}: no study {study_uid} on the server") from exc
            raise describe(exc, self.url, what) from exc
        except Exception as exc:
            raise describe(exc, self.url, what) from exc
        out = [
            (
                check_uid(_value(i, "0020000E"), "SeriesInstanceUID"),
                check_uid(_value(i, "00080018"), "SOPInstanceUID"),
            )
            for i in _json_list(found, self.url, what)
        ]
        if not out:
            raise PacsError(f"{self.url}: no study {study_uid} on the server")
        return sorted(set(out))

    # ---- WADO-RS ------------------------------------------------------------------------------
    def retrieve(
        self,
        study_uid: str,
        progress: Progress | None = None,
        cancel: Cancel | None = None,
        keep: set[str] | frozenset[str] = frozenset(),
    ) -> Path:
        """The study's folder in the cache, retrieving what is not there yet. A dropped
        connection is retried from the instances already written (each one atomically); when
        the retries run out, or on cancel, the study stays incomplete in the cache (never
        loaded as if whole) and the next call resumes it. ``keep``: studies the eviction that
        follows must not remove (the others of a batch)."""
        study_uid = check_uid(study_uid, "StudyInstanceUID")
        cache = self.cache
        if cache.is_complete(study_uid):
            cache.touch(study_uid)
            return cache.study_dir(study_uid)
        wanted = self.instances(study_uid)
        total = len(wanted)
        last: BaseException | None = None
        for attempt in range(_RETRIEVE_ATTEMPTS):
            try:
                self._fetch_missing(study_uid, wanted, progress, cancel)
                last = None
                break
            except _TRANSIENT as exc:
                last = exc
                time.sleep(0.2 * (attempt + 1))
            except PacsError:
                raise
            except Exception as exc:
                raise describe(exc, self.url, f"retrieving study {study_uid}") from exc
        have = cache.present(study_uid)
        if last is not None:
            got = sum(sop in have for _, sop in wanted)
            raise PacsError(
                f"{self.url}: retrieving study {study_uid}: the connection dropped (or the "
                f"answer ended early) {_RETRIEVE_ATTEMPTS} times; {got} of {total} instances are "
                "in the cache "
                f"({cache.study_dir(study_uid)}) and the next retrieve resumes from them"
            ) from last
        missing = [sop for _, sop in wanted if sop not in have]
        if missing:
            raise PacsError(
                f"{self.url}: retrieving study {study_uid}: the server sent {total - len(missing)}"
                f" of {total} instances (first missing: {missing[0]})"
            )
        cache.mark_complete(study_uid, total)
        cache.evict(keep={study_uid, *keep})
        return cache.study_dir(study_uid)

    def _fetch_missing(
        self,
        study_uid: str,
        wanted: list[tuple[str, str]],
        progress: Progress | None,
        cancel: Cancel | None,
    ) -> None:
        have = self.cache.present(study_uid)
        by_series: dict[str, list[str]] = {}
        for series, sop in wanted:
            by_series.setdefault(series, []).append(sop)
        done, total = sum(sop in have for _, sop in wanted), len(wanted)
        if progress:
            progress(done, total)
        for series, sops in by_series.items():
            todo = [s for s in sops if s not in have]
            if not todo:
                continue
            if len(todo) == len(sops):  # a whole series: one streamed multipart request
                stream: Iterable[Dataset] = self._web.iter_series(
                    study_uid, series, media_types=_ANY_SYNTAX
                )
            else:  # resuming a series cut half-way: only what is missing
                stream = (
                    self._web.retrieve_instance(study_uid, series, sop, media_types=_ANY_SYNTAX)
                    for sop in todo
                )
            got = 0
            for ds in stream:
                if cancel is not None and cancel():
                    raise PacsCancelled(
                        f"{self.url}: retrieving study {study_uid} cancelled after {done} of "
                        f"{total} instances (kept in the cache for the next retrieve)"
                    )
                self._write(study_uid, series, ds)
                done, got = done + 1, got + 1
                if progress:
                    progress(done, total)
            if got < len(todo):
                # An answer without Content-Length or chunking ends at EOF, so a cut connection
                # looks like a short multipart message: treat it as the drop it is.
                raise _ShortAnswer(f"series {series}: {got} of {len(todo)} instances arrived")

    def _write(self, study_uid: str, series_uid: str, ds: Dataset) -> None:
        sop = check_uid(getattr(ds, "SOPInstanceUID", ""), "SOPInstanceUID")
        if str(getattr(ds, "StudyInstanceUID", study_uid)) != study_uid:
            raise PacsError(f"{self.url}: asked for study {study_uid}, got an instance of another")
        path = self.cache.instance_path(study_uid, series_uid, sop)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        # Not fsynced one by one (300 fsyncs would dominate a CT pull); the study is only
        # marked complete after all of them, and an unreadable file is retrieved again.
        atomic_write_bytes(path, buf.getvalue(), durable=False)

    # ---- STOW-RS ------------------------------------------------------------------------------
    def store(self, datasets: list[Dataset]) -> list[str]:
        """Store instances (STOW-RS); the SOPInstanceUIDs the server accepted. PacsError names
        the ones it refused."""
        if not datasets:
            return []
        study_uids = {str(ds.StudyInstanceUID) for ds in datasets}
        what = f"storing {len(datasets)} instance(s) of study {', '.join(sorted(study_uids))}"
        try:
            answer = self._web.store_instances([_part10(ds) for ds in datasets])
        except Exception as exc:
            raise describe(exc, self.url, what) from exc
        failed = [str(i.ReferencedSOPInstanceUID) for i in getattr(answer, "FailedSOPSequence", [])]
        if failed:
            raise PacsError(f"{self.url}: {what}: the server refused {', '.join(failed)}")
        return [
            str(i.ReferencedSOPInstanceUID) for i in getattr(answer, "ReferencedSOPSequence", [])
        ]
