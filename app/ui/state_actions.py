"""Saving and restoring the viewer state (File > Save viewer state / Restore viewer state) and
the screenshot dialog: a mixin of the main window.

The state itself (what it holds, its JSON) is ``app.viewstate.state.ViewerState``; this module
reads it off the window's widgets and puts it back on them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtWidgets

from app.ui.slot_actions import SERIES_ROLE
from app.viewstate.state import ViewerState


class StateActions:
    """Mixin: the viewer state from and onto the window, and the save dialogs."""

    def viewer_state(self) -> ViewerState:
        va = self.view_area
        return ViewerState(
            study_path=self.study_path,
            series_uid=self.series.series_uid if self.series else "",
            window=va.window,
            crosshair_lps=list(va.cross.point) if va.cross is not None else None,
            zoom={name: v.zoom_factor() for name, v in va.views.items()},
            layers=self.layers.to_json(),
            task=self.result.task_id if self.result else "",
            measurements=self.measurements.to_json(),  # the open study's only
            layout=self.layout_actions.current(),
        )

    def restore_state(self, state: ViewerState) -> None:
        """Open the state's study; window, crosshair, zoom and layer settings follow the load."""
        self._pending_state = state
        self.open_path(state.study_path)

    def apply_state(self, state: ViewerState) -> None:
        if self.load_result is not None and state.series_uid:
            for n in range(self.browser.count()):
                series = self.browser.item(n).data(SERIES_ROLE)
                if series is None:  # the "not loaded" item
                    continue
                if series.series_uid == state.series_uid and series is not self.series:
                    self.browser.setCurrentRow(n)
        # the layout before window, crosshair and zoom: laying out anew makes fresh views. Only
        # a layout other than the one the study hung in is chosen (as the reader would, so it
        # holds for this study); a state without one (an older file) keeps the hanging.
        if state.layout and state.layout != self.layout_actions.current():
            self.layout_actions.choose(state.layout, remember=False)
        va = self.view_area
        if state.window is not None and va.window is not None:
            va.window.center, va.window.width = state.window.center, state.window.width
            va.window.invert = state.window.invert
        if state.crosshair_lps is not None and va.cross is not None:
            va.cross.set_point(np.array(state.crosshair_lps, dtype=float))
        for name, factor in state.zoom.items():
            if name in va.views and factor > 0:
                va.views[name].zoom(float(factor))
        self.layers.apply_json(state.layers)
        self.measurements.apply_json(state.measurements)
        va.request_update()

    def _open_state_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Restore viewer state", "", "*.json")
        if path:
            try:
                self.restore_state(ViewerState.load(Path(path)))
            except (OSError, ValueError, KeyError) as exc:
                QtWidgets.QMessageBox.warning(self, "Cannot restore", f"{path}: {exc}")

    def _save_state_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save viewer state", "", "*.json")
        if path:
            self.viewer_state().save(Path(path))

    def _save_screenshot_dialog(self) -> None:
        from app.ui.capture import capture_window, save_png

        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save screenshot", "", "*.png")
        if path:
            from app.errors import describe_os_error

            try:
                save_png(capture_window(self), path)
            except OSError as exc:
                QtWidgets.QMessageBox.warning(
                    self, "Save screenshot", describe_os_error(exc, (path,))
                )
