"""Window presets the user saves (View > Save window as preset...), per modality, in the
window's QSettings; they join the built-in presets (``app.viewstate.windowing.presets_for``)
of every series of that modality, after them, so the digit keys keep their meaning."""

from __future__ import annotations

import json

from PySide6 import QtCore, QtWidgets


def user_presets(settings: QtCore.QSettings, modality: str) -> dict[str, tuple[float, float]]:
    """Presets the user saved for ``modality`` (an unreadable entry is skipped, not fatal)."""
    try:
        data = json.loads(str(settings.value(f"presets/{modality.upper() or 'OT'}", "{}")))
        return {str(k): (float(v[0]), float(v[1])) for k, v in dict(data).items()}
    except (ValueError, TypeError, IndexError):
        return {}


def save_user_preset(window, name: str) -> None:
    """The shown window as a preset of the shown modality, kept in the settings."""
    area = window.visible_view_areas()[0]
    if area.window is None or area.series is None or not name.strip():
        return
    modality = (area.series.modality or "OT").upper()
    presets = user_presets(window.settings, modality)
    presets[name.strip()] = (area.window.center, area.window.width)
    window.settings.setValue(f"presets/{modality}", json.dumps(presets))
    for a in window.visible_view_areas():
        if a.series is not None and (a.series.modality or "OT").upper() == modality:
            a.presets.update(presets)
    window._rebuild_presets()


def ask_preset(window) -> None:
    name, ok = QtWidgets.QInputDialog.getText(window, "Save window preset", "Preset name:")
    if ok:
        save_user_preset(window, name)


def add_user_presets(window) -> None:
    """The user's presets of the shown modality join the view area's (after the built-in)."""
    for area in window.visible_view_areas():
        if area.series is not None:
            area.presets.update(user_presets(window.settings, area.series.modality or "OT"))
