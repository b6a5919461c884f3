"""Cine: a volume's slices played in the focused view (else the large one) on a QTimer, at a
chosen rate, stopping at the last slice or looping; linked views follow as they do a scroll (it
is one).

View > Cine has Play/pause (P), the rate and Loop; the rate and Loop persist in QSettings.
"""

from __future__ import annotations

from PySide6 import QtCore
from PySide6.QtGui import QAction, QActionGroup, QKeySequence

FPS_CHOICES = (2, 5, 10, 15, 20, 30)
DEFAULT_FPS = 10
PLAY_KEY = "P"


class Cine(QtCore.QObject):
    """Plays the first volume on screen (its first view: the large cell of 1+2)."""

    state_changed = QtCore.Signal(bool)  # playing

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        settings = window.settings
        try:
            fps = int(settings.value("cine/fps", DEFAULT_FPS))
        except (TypeError, ValueError):  # a hand-edited settings file
            fps = DEFAULT_FPS
        self.fps = fps if fps in FPS_CHOICES else DEFAULT_FPS
        loop = settings.value("cine/loop", True)
        self.loop = loop if isinstance(loop, bool) else str(loop).lower() in ("true", "1")
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.step)
        self.timer.setInterval(round(1000 / self.fps))
        self._build_menu()

    def _build_menu(self) -> None:
        from app.ui.layout_actions import menu_named

        win = self.window
        m = menu_named(win, "View").addMenu("&Cine")
        self.play_action = QAction("&Play / pause", win)
        self.play_action.setCheckable(True)
        self.play_action.setShortcut(QKeySequence(PLAY_KEY))
        self.play_action.setToolTip(f"Play the volume's slices (cine, {PLAY_KEY})")
        self.play_action.setIconText("Cine")
        self.play_action.triggered.connect(lambda on: self.play() if on else self.stop())
        m.addAction(self.play_action)
        rate = m.addMenu("&Frames per second")
        group = QActionGroup(self)
        self.fps_actions: dict[int, QAction] = {}
        for fps in FPS_CHOICES:
            act = QAction(f"{fps} fps", win)
            act.setCheckable(True)
            act.setChecked(fps == self.fps)
            act.triggered.connect(lambda _=False, f=fps: self.set_fps(f))
            group.addAction(act)
            rate.addAction(act)
            self.fps_actions[fps] = act
        self.loop_action = QAction("&Loop", win)
        self.loop_action.setCheckable(True)
        self.loop_action.setChecked(self.loop)
        self.loop_action.toggled.connect(self.set_loop)
        m.addAction(self.loop_action)
        toolbar = getattr(getattr(win, "layout_actions", None), "toolbar", None)
        if toolbar is not None:
            toolbar.addAction(self.play_action)

    # ---- settings --------------------------------------------------------------------------
    def set_fps(self, fps: int) -> None:
        self.fps = int(fps)
        self.timer.setInterval(round(1000 / self.fps))
        self.window.settings.setValue("cine/fps", self.fps)
        if self.fps in self.fps_actions:
            self.fps_actions[self.fps].setChecked(True)

    def set_loop(self, on: bool) -> None:
        self.loop = bool(on)
        self.window.settings.setValue("cine/loop", self.loop)

    # ---- playing ---------------------------------------------------------------------------
    def target(self) -> tuple[object, str] | None:
        """(view area, view name) to play: the view with the focus if it shows a volume, else
        the first shown volume's first view (the large cell)."""
        from app.ui.view_keys import focused_view

        found = focused_view(self.window)
        if found is not None and found[0].volume_mode and found[0].views[found[1]].hasFocus():
            return found
        for area in self.window.visible_view_areas():
            if area.series is not None and area.volume_mode and area.views:
                return area, next(iter(area.views))
        return None

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def play(self) -> None:
        if self.target() is None:
            self.window.statusBar().showMessage("Cine: no volume on screen", 5000)
            self._sync(False)
            return
        self.timer.start()
        self._sync(True)

    def stop(self) -> None:
        self.timer.stop()
        self._sync(False)

    def step(self) -> None:
        """One slice on; at the last one, back to the first (loop) or stop."""
        found = self.target()
        if found is None:
            self.stop()
            return
        area, view = found
        if area.scroll(view, 1):
            return
        if self.loop:
            area.go_to_end(view, last=False)
        else:
            self.stop()

    def _sync(self, playing: bool) -> None:
        self.play_action.blockSignals(True)
        self.play_action.setChecked(playing)
        self.play_action.blockSignals(False)
        self.state_changed.emit(playing)


def install_cine(window) -> Cine:
    window.cine = Cine(window)
    return window.cine
