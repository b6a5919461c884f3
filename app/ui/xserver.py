"""A real X server for the viewer when there is no display (headless screenshots and tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path


def ensure_display(size: str = "1600x1000x24") -> str | None:
    """Start Xvfb on a free display number if DISPLAY is unset; returns the display used.

    Must run before Qt or VTK opens a window. Software OpenGL (Mesa) is selected, since Xvfb
    has no GPU.
    """
    if os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
        return os.environ["DISPLAY"]
    if not shutil.which("Xvfb"):
        return None
    for num in range(150, 200):
        if Path(f"/tmp/.X{num}-lock").exists():
            continue
        proc = subprocess.Popen(
            ["Xvfb", f":{num}", "-screen", "0", size, "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            if Path(f"/tmp/.X11-unix/X{num}").exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        if proc.poll() is None:
            _stop_after_exit(proc)
            os.environ["DISPLAY"] = f":{num}"
            os.environ["QT_QPA_PLATFORM"] = "xcb"
            os.environ.setdefault("LIBGL_ALWAYS_SOFTWARE", "1")
            return os.environ["DISPLAY"]
    return None


def _stop_after_exit(proc: subprocess.Popen) -> None:
    """Stop Xvfb once this process has exited: stopping it earlier (atexit) breaks Qt's and
    VTK's display connections while they are still being torn down."""
    subprocess.Popen(
        [
            "sh",
            "-c",
            f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 0.2; done; kill {proc.pid}",
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
