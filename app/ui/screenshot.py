"""Render the viewer with a study loaded (and optionally truth or a task's result) to a PNG."""

from __future__ import annotations

import sys

from PySide6 import QtCore, QtWidgets


def take_screenshot(
    path: str,
    out: str,
    overlay_truth: bool = False,
    task: str | None = None,
    size: tuple[int, int] = (1500, 900),
) -> dict:
    """Load ``path``, show it as the viewer would, write ``out``; returns what was shown."""
    from app.study import load
    from app.ui.capture import capture_window, save_png
    from app.ui.main import MainWindow, primary_series
    from app.ui.workers import prepare_result, thumbnail
    from app.viewstate.regions import find_target

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    result = load(path)
    series = primary_series(result)
    if series is None:
        from app.errors import CliError

        reasons = "; ".join(f"{e.path}: {e.reason}" for e in result.errors[:3])
        raise CliError(f"{path}: nothing to show" + (f" ({reasons})" if reasons else ""))
    window = _fresh_window(MainWindow)
    window.resize(*size)
    window.show()
    thumbs = {s.series_uid: thumbnail(s) for s in result.all_series()}
    window.study_path = str(path)
    window.show_load_result(result, thumbs, str(path))
    if not overlay_truth:
        window.layers.clear("truth")
    elif not any(la.source == "truth" for la in window.layers):
        window.add_truth_layers()
    shown: dict = {"series": series.description, "layers": []}
    if task:
        from app.analysis.request import resolve_inputs
        from app.analysis.runner import run_analysis
        from app.analysis.tasks import get_adapter

        adapter = get_adapter(task)
        request = resolve_inputs(adapter.spec, result, path, adapter=adapter, prefer=series)
        analysis = run_analysis(adapter, request)
        window.request_of_result[id(analysis)] = request
        window.findings.task_combo.setCurrentText(task)
        window.apply_result(analysis, prepare_result(analysis))
        # centre on the first positive region when there is one, as a reader would click it
        for f in sorted(analysis.findings, key=lambda f: -f.probability):
            if find_target(window.layers, f.region_id) is not None:
                window.on_finding_clicked(f)
                break
        shown["summary"] = analysis.summary
    _settle(app)
    for area in window.visible_view_areas():
        area.update_now()
    _settle(app)
    rgb = capture_window(window)
    save_png(rgb, out)
    shown["layers"] = [la.name for la in window.layers]
    shown["size"] = (rgb.shape[1], rgb.shape[0])
    window.close()
    window.deleteLater()
    _settle(app)
    return shown


def _fresh_window(window_class):
    """A main window with default settings: a screenshot neither takes the user's saved
    layout, docks and presets (it would differ from one user to the next) nor saves its own."""
    import os
    import tempfile

    folder = tempfile.TemporaryDirectory()  # removed with the window (what it saves on close)
    before = os.environ.get("OSTEOVIEW_SETTINGS")
    os.environ["OSTEOVIEW_SETTINGS"] = os.path.join(folder.name, "screenshot.ini")
    try:
        window = window_class()
    finally:
        if before is None:
            os.environ.pop("OSTEOVIEW_SETTINGS", None)
        else:
            os.environ["OSTEOVIEW_SETTINGS"] = before
    window._settings_folder = folder
    return window


def _settle(app: QtWidgets.QApplication, ms: int = 200) -> None:
    """Let pending layout and paint events run (no fixed sleep beyond ``ms`` of processing)."""
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(ms, loop.quit)
    loop.exec()
    app.processEvents()
