"""View > Layout (1x1, 1x2, 1+2, 2x2) with its toolbar button, the hanging protocol per task,
and linked scrolling and window/level; the choices persist in the window's QSettings.

The decisions are ``app.viewstate.layout``'s (which layout a task hangs in, what each cell
shows); this module turns them into menu entries and calls on the view areas. Installed by
``install_layouts(window)``; the window calls ``show_series`` where it used to hand the series to
its view area, and asks ``layout_for_result`` before showing a result's inputs side by side.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets
from PySide6.QtGui import QAction, QActionGroup, QKeySequence

from app.study.model import Series
from app.ui.user_presets import add_user_presets
from app.viewstate.layout import (
    DEFAULT_LAYOUT,
    LAYOUTS,
    displayable,
    hanging_layout,
    layout_named,
)

# Ctrl+digit: the bare digits are the window presets, in the views
LAYOUT_KEYS = {"1x1": "Ctrl+1", "1x2": "Ctrl+2", "1+2": "Ctrl+3", "2x2": "Ctrl+4"}
LINK_KEY = "Ctrl+L"
_NO_OVERRIDE = object()


def menu_named(window: QtWidgets.QMainWindow, title: str) -> QtWidgets.QMenu:
    """The menu bar's menu called ``title`` (made if missing), "&" ignored."""
    for act in window.menuBar().actions():
        if act.menu() is not None and act.text().replace("&", "") == title:
            return act.menu()
    return window.menuBar().addMenu(f"&{title}")


def _setting_bool(settings: QtCore.QSettings, key: str, default: bool) -> bool:
    value = settings.value(key, default)
    return value if isinstance(value, bool) else str(value).lower() in ("true", "1")


class LayoutActions(QtCore.QObject):
    """The layout menu, protocol and link state of one main window."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        settings = window.settings
        self.chosen = layout_named(settings.value("view/layout", DEFAULT_LAYOUT)).name
        # the study (uid) in which a layout was chosen (by the user or a restored reading) and
        # that layout: it wins there over protocols; ``chosen`` is the default elsewhere
        self._override_study: object = _NO_OVERRIDE
        self._study_layout = self.chosen
        view = menu_named(window, "View")
        view.addSeparator()
        self.menu = view.addMenu("&Layout")
        group = QActionGroup(self)
        self.layout_actions: dict[str, QAction] = {}
        for name in ("1x1", "1x2", "1+2", "2x2"):
            act = QAction(LAYOUTS[name].title, window)
            act.setCheckable(True)
            act.setShortcut(QKeySequence(LAYOUT_KEYS[name]))
            act.triggered.connect(lambda _=False, n=name: self.choose(n))
            group.addAction(act)
            self.menu.addAction(act)
            self.layout_actions[name] = act
        self.menu.addSeparator()
        self.hanging_action = QAction("&Hanging protocol per task", window)
        self.hanging_action.setCheckable(True)
        self.hanging_action.setChecked(_setting_bool(settings, "view/hanging", True))
        self.hanging_action.setToolTip(
            "Open each study in its task's layout (spine: AP beside lateral; CT: MPR)"
        )
        self.hanging_action.toggled.connect(lambda on: settings.setValue("view/hanging", on))
        self.menu.addAction(self.hanging_action)
        self.link_action = QAction("Lin&k scrolling and window/level", window)
        self.link_action.setCheckable(True)
        self.link_action.setShortcut(QKeySequence(LINK_KEY))
        self.link_action.setToolTip("Views of one study scroll and window together (Ctrl+L)")
        self.link_action.setIconText("Link")
        self.link_action.toggled.connect(self.set_link)
        view.addAction(self.link_action)
        self.link_action.setChecked(_setting_bool(settings, "view/link", True))
        self.set_link(self.link_action.isChecked())

        self.toolbar = window.addToolBar("View")
        self.toolbar.setObjectName("view_toolbar")
        button = QtWidgets.QToolButton()
        button.setText("Layout")
        button.setToolTip("Layout of the views (Ctrl+1 .. Ctrl+4)")
        button.setMenu(self.menu)
        button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        self.layout_button = button
        self.toolbar.addWidget(button)
        self.toolbar.addAction(self.link_action)
        self._check(self.chosen)

    # ---- what is shown -----------------------------------------------------------------
    def _study(self, series: Series | None):
        return self.window.study_of(series)

    def _study_key(self, series: Series | None) -> str:
        study = self._study(series)
        return study.study_uid if study is not None else ""

    def show_series(self, series: Series) -> None:
        """Show ``series`` in the view area, in the layout its study hangs in."""
        name, order = self.plan_for(series)
        area = self.window.view_area
        area.layout_name = name
        area.set_series(series, order)
        add_user_presets(self.window)
        self._check(name)

    def plan_for(self, series: Series) -> tuple[str, list[Series]]:
        """(layout, the study's series in the order cells take them) for ``series``: the
        user's choice within the study he made it in, else the task's protocol, else the
        user's last layout (one radiograph alone: 1x1, there is nothing else to show)."""
        study = self._study(series)
        order = list(study.series) if study is not None else [series]
        if self._override_study is not _NO_OVERRIDE:
            if self._override_study == self._study_key(series):
                return self._study_layout, order
            self._override_study = _NO_OVERRIDE
        task = self.window.findings.current_task() if self.hanging_action.isChecked() else ""
        if task:
            try:
                from app.analysis.tasks import get_spec

                return hanging_layout(get_spec(task)), self._slot_order(task, order)
            except Exception:  # noqa: BLE001 - a task that cannot say keeps the user's layout
                pass
        alone = not any(s is not series and displayable(s) for s in order)
        return ("1x1" if series.image.is_2d and alone else self.chosen), order

    def _slot_order(self, task: str, order: list[Series]) -> list[Series]:
        """The task's image inputs first, in its slot order (AP before lateral)."""
        try:
            request = self.window.analysis_request(task)
        except Exception:  # noqa: BLE001 - the study does not feed the task: study order
            return order
        masks = set(self.window.mask_slots(task))
        images = [s for slot, s in request.inputs.items() if slot not in masks]
        return images + [s for s in order if not any(s is i for i in images)]

    def layout_for_result(self, task_id: str) -> str:
        """The layout a result's inputs are shown in side by side."""
        if self._override_study is not _NO_OVERRIDE:
            return self._study_layout
        if not self.hanging_action.isChecked():
            return self.chosen
        try:
            from app.analysis.tasks import get_spec

            return hanging_layout(get_spec(task_id))
        except Exception:  # noqa: BLE001 - unknown task: the user's layout
            return self.chosen

    # ---- the user's choices ----------------------------------------------------------------
    def choose(self, name: str, remember: bool = True) -> None:
        """The user's layout: kept for this study (protocols give way) and, when picked from
        the menu, remembered as the default. A saved reading's layout is not remembered: it
        belongs to that reading, not to the reader's next study."""
        name = layout_named(name).name
        self._study_layout = name
        if remember:
            self.chosen = name
            self.window.settings.setValue("view/layout", name)
        win = self.window
        if win.series is not None:
            self._override_study = self._study_key(win.series)
        if win.side_by_side:
            win.input_views.set_layout(name)
        elif win.series is not None:
            win.view_area.set_layout(name)
        self._check(name)

    def current(self) -> str:
        """The layout on screen."""
        win = self.window
        if win.side_by_side:
            return win.input_views.layout_shown.name
        return win.view_area.layout_name

    def sync(self) -> None:
        self._check(self.current())

    def _check(self, name: str) -> None:
        act = self.layout_actions.get(name)
        if act is not None:
            act.setChecked(True)  # a QActionGroup: checking one is no trigger
        self.layout_button.setText(f"Layout {name}")

    def set_link(self, on: bool) -> None:
        self.window.view_area.linker.enabled = bool(on)
        self.window.input_views.linker.enabled = bool(on)
        self.window.settings.setValue("view/link", bool(on))


def install_layouts(window) -> LayoutActions:
    window.layout_actions = LayoutActions(window)
    return window.layout_actions
