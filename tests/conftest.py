"""Shared test set-up: a real X server for GUI tests, and where the real scans live."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OSTEOVIEW_SHARED", REPO.parent / "shared"))
REAL_DATA = SHARED / "data" / "real"

_xvfb: subprocess.Popen | None = None


def _start_xvfb() -> None:
    """Start Xvfb on a free display when there is none, before Qt or VTK is imported."""
    global _xvfb
    if os.environ.get("DISPLAY") or not shutil.which("Xvfb"):
        return
    for num in range(90, 140):
        if Path(f"/tmp/.X{num}-lock").exists():
            continue
        proc = subprocess.Popen(
            ["Xvfb", f":{num}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(50):
            if Path(f"/tmp/.X11-unix/X{num}").exists():
                break
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        if proc.poll() is None:
            _xvfb = proc
            _stop_after_exit(proc)
            os.environ["DISPLAY"] = f":{num}"
            return


def _stop_after_exit(proc: subprocess.Popen) -> None:
    """Stop Xvfb when this process ends, however it ends (a crashed run leaves no server)."""
    subprocess.Popen(
        [
            "sh",
            "-c",
            f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 0.5; done; kill {proc.pid}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def pytest_configure(config: pytest.Config) -> None:
    _start_xvfb()
    if os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    else:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # Mesa software OpenGL for VTK under Xvfb.
    os.environ.setdefault("LIBGL_ALWAYS_SOFTWARE", "1")


def pytest_unconfigure(config: pytest.Config) -> None:
    # Xvfb is stopped by the watcher started with it (see _stop_after_exit), once this process
    # has exited: Qt and VTK still hold display connections here, and losing the server under
    # them makes Xlib exit(1) the run.
    pass


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real scans not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(autouse=True)
def _private_state(tmp_path_factory, monkeypatch):
    """Tests never touch the user's real config: the pseudonym secret and settings live in a
    temporary folder (a test that needs its own sets the variable itself)."""
    home = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("OSTEOVIEW_SECRET_FILE", str(home / "pseudonym.key"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
