"""SHAP warmed up at viewer start-up, off the viewer's process.

``app.analysis.explain_child`` starts a child that imports shap and compiles numba's functions
while the reader opens a study; the viewer's "Explain" then runs there (``ExplainWorker`` calls
``explain_anywhere``), so the first click pays neither, and the event loop never waits on the
GIL for them (a warm-up thread in this process stalled it 0.33-0.65 s, the child 19 ms:
``tests/benchmarks/test_bench_warmup.py``). The child ends when the application quits.
"""

from __future__ import annotations

from PySide6 import QtCore


def start_warm_up(app: QtCore.QCoreApplication, delay_ms: int = 0) -> None:
    """Start the explanation child once the event loop runs (after the window's first paint;
    returns at once); stop it when ``app`` quits."""
    QtCore.QTimer.singleShot(delay_ms, lambda: _start(app))


def _start(app: QtCore.QCoreApplication) -> None:
    from app.analysis.explain_child import start_child

    try:
        child = start_child()
    except OSError:
        return  # no child possible (no processes or pipes left): explanations run in-process
    app.aboutToQuit.connect(child.stop)
