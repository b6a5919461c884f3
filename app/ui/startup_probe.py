"""Start-to-window time: open the viewer as a user would, print the seconds from process start
to its main window's first expose (the moment it is on screen), and quit.

Used by the bundle (``OSTEOVIEW_STARTUP_PROBE=1 osteoview``, see ``packaging/osteoview_main.py``)
and from a checkout (``python -m app.ui.startup_probe``), so both are measured the same way.
Process start is read from ``/proc/self/stat``, so the bundle's loader and the interpreter's own
start are counted, not only the Python imports.
"""

from __future__ import annotations

import os
import sys
import time


def seconds_since_process_start() -> float:
    """Wall seconds since the kernel started this process (Linux), else since this import."""
    try:
        with open("/proc/self/stat") as f:
            # field 22 (starttime, clock ticks after boot) follows the ')' closing the name
            start_ticks = int(f.read().rpartition(")")[2].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED_AT


_IMPORTED_AT = time.perf_counter()


def probe(paths: list[str]) -> int:
    from app.ui.xserver import ensure_display

    ensure_display()  # a headless machine gets Xvfb, as `osteoview screenshot` does
    from PySide6 import QtCore, QtGui, QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])

    class FirstExpose(QtCore.QObject):
        def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
            if (
                event.type() == QtCore.QEvent.Type.Expose
                and isinstance(obj, QtGui.QWindow)
                and obj.isExposed()
                and obj.parent() is None  # a top-level window: the viewer's main window
            ):
                # CPU seconds too: on a loaded machine the wall time is mostly waiting for a core
                print(
                    f"window shown after {seconds_since_process_start():.2f} s "
                    f"(CPU {time.process_time():.2f} s)",
                    flush=True,
                )
                app.removeEventFilter(self)
                QtCore.QTimer.singleShot(0, app.quit)
            return False

    watcher = FirstExpose()
    app.installEventFilter(watcher)
    from app.ui.main import run_viewer

    return run_viewer(paths)


if __name__ == "__main__":
    sys.exit(probe(sys.argv[1:]))
