"""Loopback helpers for the PACS tests: a small study to upload, a TCP proxy that cuts
connections (a network dropping mid-retrieve) and an HTTP server answering malformed JSON."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from app.study.dicom_writer import PatientTags, write_series
from app.study.geometry import ImageVolume


def small_ct(folder: Path, slices: int = 6, patient_id: str = "PACS-0001", seed: int = 0):
    """A small CT series (uncompressed) of a made-up patient; returns (study UID, paths)."""
    rng = np.random.default_rng(seed)
    array = rng.integers(-1000, 1500, size=(slices, 32, 40)).astype(np.float32)
    volume = ImageVolume(array, (2.5, 0.8, 0.7), np.array([-10.0, -20.0, 30.0]), np.eye(3))
    patient = PatientTags(
        name=f"PHANTOM^{patient_id}", patient_id=patient_id, study_date="20260315"
    )
    from pydicom.uid import generate_uid

    study_uid = generate_uid()
    paths = write_series(volume, folder, "CT", patient, study_uid=study_uid)
    return study_uid, paths


class CuttingProxy:
    """Forwards loopback TCP to ``target_port``; the first ``cuts`` connections that carry more
    than ``after_bytes`` of answer are closed there, as a dropped network would."""

    def __init__(self, target_port: int, after_bytes: int, cuts: int) -> None:
        self.target_port, self.after_bytes, self.cuts_left = target_port, after_bytes, cuts
        self.cut = 0
        self._lock = threading.Lock()
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self._stop = False
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._loop, daemon=True)
        self._accept.start()

    def _loop(self) -> None:
        self._srv.settimeout(0.2)
        while not self._stop:
            try:
                client, _ = self._srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(client,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
        with self._lock:
            limit = self.after_bytes if self.cuts_left > 0 else None
            if limit is not None:
                self.cuts_left -= 1

        def up() -> None:
            try:
                while data := client.recv(65536):
                    upstream.sendall(data)
            except OSError:
                pass

        threading.Thread(target=up, daemon=True).start()
        sent = 0
        try:
            while data := upstream.recv(65536):
                if limit is not None and sent + len(data) > limit:
                    client.sendall(data[: max(0, limit - sent)])
                    with self._lock:
                        self.cut += 1
                    break
                client.sendall(data)
                sent += len(data)
            else:
                if limit is not None:  # answered in full before the limit: cut not used
                    with self._lock:
                        self.cuts_left += 1
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self._stop = True
        self._srv.close()
        self._accept.join(timeout=5)


@contextmanager
def cutting_proxy(target_port: int, after_bytes: int, cuts: int) -> Iterator[CuttingProxy]:
    proxy = CuttingProxy(target_port, after_bytes, cuts)
    try:
        yield proxy
    finally:
        proxy.close()


@contextmanager
def malformed_json_server() -> Iterator[str]:
    """A loopback server answering every GET with a broken dicom+json body; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = b'[{"0020000D": {"vr": "UI", "Value": ["1.2.3"'
            self.send_response(200)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
