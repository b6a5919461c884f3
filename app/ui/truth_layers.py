"""Ground truth written beside demo studies (``truth.json`` in a series' own folder) as layers
of that series; the main window asks for the shown series and for the other series its layout
shows beside it (the spine's lateral next to its AP)."""

from __future__ import annotations

from pathlib import Path

from app.study.model import Series


def add_truth(window, series: Series, quiet: bool = False) -> int:
    """Replace ``series``' truth layers with its truth.json's overlays; how many were added.
    A bad truth file is said in the status bar, never fatal."""
    # truth.json lies in the series' own folder (a demo folder holds many studies)
    where = Path(series.source_paths[0]).parent if series.source_paths else None
    if where is None and not window.study_path:
        return 0
    from app.findings.truth import load_truth

    try:
        truth = load_truth(where or Path(window.study_path), reference=series.image)
    except Exception as exc:  # noqa: BLE001 - a bad truth file is reported, not fatal
        window.statusBar().showMessage(f"truth.json: {exc}", 10000)
        return 0
    if truth is None:
        if not quiet:
            window.statusBar().showMessage("No truth.json beside this study", 5000)
        return 0
    for layer in [la for la in window.layers if la.source == "truth"]:
        if layer.series_uid == series.series_uid:
            window.layers.remove(layer.id)
    for ov in truth.overlays:
        window.layers.add_overlay(ov, "truth", series.image, series.series_uid)
    return len(truth.overlays)
