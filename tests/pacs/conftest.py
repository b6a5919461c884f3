"""A real PACS for the tests: Debian's Orthanc with its DICOMweb plugin, on loopback.

The fixture writes a config (authentication on, one registered user with a generated password,
the DICOMweb plugin found through ``dpkg -L orthanc-dicomweb``, storage in a temp folder, the
DIMSE listener off so only one loopback HTTP port is opened), starts ``Orthanc`` on a free port,
waits for ``/system`` and stops it after the session. Without Orthanc installed every PACS test
is skipped with the reason (``packaging/install-system-deps.sh`` installs it).
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "reader"
_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class OrthancServer:
    """A running test Orthanc: its root URL, DICOMweb root and the registered user."""

    url: str  # http://127.0.0.1:PORT
    user: str
    password: str
    storage: Path

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def _auth(self) -> str:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Basic {token}"

    def rest(self, method: str, path: str, body: bytes | None = None) -> object:
        """Orthanc's own REST API (not DICOMweb), so tests seed and inspect the server without
        going through the client under test."""
        req = urllib.request.Request(self.url + path, data=body, method=method)
        req.add_header("Authorization", self._auth())
        if body is not None:
            req.add_header("Content-Type", "application/dicom")
        with urllib.request.urlopen(req, timeout=30) as resp:
            data = resp.read()
        return json.loads(data) if data else None

    def upload(self, files: list[Path]) -> None:
        for f in files:
            self.rest("POST", "/instances", Path(f).read_bytes())

    def clear(self) -> None:
        """Delete every study, so a test starts from an empty archive."""
        for study in self.rest("GET", "/studies") or []:
            self.rest("DELETE", f"/studies/{study}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or next(
        (p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if Path(p).exists()), None
    )


def _dicomweb_plugin() -> str | None:
    """The plugin file the Debian package installed (its path differs between releases)."""
    try:
        listing = subprocess.run(
            ["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    libs = [line for line in listing.splitlines() if "DicomWeb" in line and ".so" in line]
    return next((p for p in libs if Path(p).is_file()), None)


def _wait_ready(url: str, auth: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Orthanc exited with {proc.returncode}: {log.read_text()[-2000:]}")
        req = urllib.request.Request(url + "/system", headers={"Authorization": auth})
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"Orthanc did not answer /system within {_START_TIMEOUT_S:.0f} s")


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    binary, plugin = _orthanc_binary(), _dicomweb_plugin()
    if binary is None:
        pytest.skip("Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)")
    if plugin is None:
        pytest.skip(
            "the Orthanc DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)"
        )
    root = tmp_path_factory.mktemp("orthanc")
    storage = root / "db"
    storage.mkdir()
    port = free_port()
    password = secrets.token_urlsafe(16)  # generated per run; lives only in the temp config
    config = {
        "Name": "osteoview-test",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "HttpPort": port,
        "RemoteAccessAllowed": False,  # loopback only
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: password},
        "DicomServerEnabled": False,
        "Plugins": [plugin],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
        "HttpThreadsCount": 8,
        "StableAge": 1,
        "OverwriteInstances": True,
    }
    cfg = root / "orthanc.json"
    cfg.write_text(json.dumps(config, indent=1))
    log = root / "orthanc.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, str(cfg)], stdout=out, stderr=subprocess.STDOUT)
    server = OrthancServer(f"http://127.0.0.1:{port}", USER, password, storage)
    try:
        _wait_ready(server.url, server._auth(), proc, log)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
