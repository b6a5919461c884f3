"""Drag and drop, settings that survive a new window (layout, link, cine, presets, recent
studies, window and dock sizes), the shortcut sheet on F1 and ?, and the menus' audit."""

from __future__ import annotations

import pytest
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Qt

from app.ui.shortcut_sheet import collect_actions
from tests.gui.conftest import WAIT_MS, open_and_wait

pytestmark = pytest.mark.gui


def _drop(widget, paths: list[str]) -> None:
    """Drag enter then drop, as the X server would deliver them to ``widget``."""
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(p) for p in paths])
    pos = QtCore.QPointF(widget.width() / 2, widget.height() / 2)
    actions = Qt.DropAction.CopyAction
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QtGui.QDragEnterEvent(pos.toPoint(), actions, mime, buttons, mods)
    QtWidgets.QApplication.sendEvent(widget, enter)
    assert enter.isAccepted(), "the window refuses the drag"
    drop = QtGui.QDropEvent(pos, actions, mime, buttons, mods)
    QtWidgets.QApplication.sendEvent(widget, drop)


def test_drop_a_folder_on_a_view_opens_it(qtbot, window, ct_dir, tmp_path):
    _drop(window, [str(ct_dir)])
    qtbot.waitUntil(lambda: window.series is not None and not window.is_busy(), timeout=WAIT_MS)
    assert window.study_path == str(ct_dir)
    assert window.series.description == "viewer test phantom"
    # several slices of one folder dropped on a view: their folder opens
    other = tmp_path / "copy"
    other.mkdir()
    for f in sorted(ct_dir.iterdir())[:12]:
        (other / f.name).write_bytes(f.read_bytes())
    view = next(iter(window.view_area.views.values()))
    _drop(view, [str(p) for p in sorted(other.iterdir())[:3]])
    qtbot.waitUntil(lambda: window.study_path == str(other) and not window.is_busy(),
                    timeout=WAIT_MS)  # fmt: skip
    assert window.series.image.shape[0] == 12


def test_settings_survive_a_new_window(qtbot, window, ct_dir, tmp_path):
    from app.ui.main import MainWindow

    open_and_wait(qtbot, window, ct_dir)
    window.layout_actions.layout_actions["2x2"].trigger()
    window.layout_actions.link_action.trigger()  # off
    window.cine.fps_actions[5].trigger()
    window.cine.loop_action.trigger()  # off
    window.layout_actions.hanging_action.trigger()  # off: the user's layout everywhere
    window.view_area.set_window(345.0, 678.0)
    from app.ui.user_presets import save_user_preset

    save_user_preset(window, "My spine")
    assert "My spine" in window.view_area.presets
    dock = window.findChild(QtWidgets.QDockWidget, "Series")
    window.resizeDocks([dock], [290], Qt.Orientation.Horizontal)
    window.resize(1300, 800)
    qtbot.waitUntil(lambda: abs(dock.width() - 290) <= 4, timeout=5000)
    window.close()

    again = MainWindow()  # the same settings file (the fixture's OSTEOVIEW_SETTINGS)
    again.confirm_close = lambda: True
    qtbot.addWidget(again)
    again.show()
    qtbot.waitExposed(again)
    assert again.layout_actions.chosen == "2x2"
    assert again.layout_actions.layout_actions["2x2"].isChecked()
    assert not again.layout_actions.link_action.isChecked()
    assert not again.view_area.linker.enabled
    assert again.cine.fps == 5 and again.cine.fps_actions[5].isChecked()
    assert not again.cine.loop
    assert not again.layout_actions.hanging_action.isChecked()
    assert (again.width(), again.height()) == (1300, 800)
    dock2 = again.findChild(QtWidgets.QDockWidget, "Series")
    assert abs(dock2.width() - 290) <= 4
    # the recent studies list: the study opened above, and it opens again from the menu
    assert again.recent_files()[0] == str(ct_dir)
    entry = again.recent_menu.actions()[0]
    assert entry.text() == str(ct_dir)
    entry.trigger()
    qtbot.waitUntil(lambda: again.series is not None and not again.is_busy(), timeout=WAIT_MS)
    assert again.view_area.presets["My spine"] == (345.0, 678.0)  # the user's CT preset
    # the user's layout of the last session, the protocols being off (the CT feeds the
    # cervical task, whose protocol would hang it 1+2)
    assert again.findings.current_task() == "cervical-fracture"
    assert again.layout_actions.current() == "2x2" and len(again.view_area.views) == 3
    again.close()


def test_shortcut_sheet_lists_the_actions_with_their_keys(qtbot, window):
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_F1)
    qtbot.waitUntil(lambda: getattr(window, "shortcut_sheet", None) is not None, timeout=5000)
    sheet = window.shortcut_sheet
    assert sheet.isVisible()
    rows = sheet.visible_rows()
    keys = {(where, title): key for where, title, key in rows}
    assert keys[("View > Layout", "1 x 2 (side by side)")] == "Ctrl+2"
    assert keys[("View > Layout", "1 + 2 (one large, two small)")] == "Ctrl+3"
    assert keys[("View", "Link scrolling and window/level")] == "Ctrl+L"
    assert keys[("View > Cine", "Play / pause")] == "P"
    assert keys[("View > Navigate", "First slice")] == "Home"
    assert keys[("View", "Invert")] == "I"
    assert keys[("File", "Export report...")] == "Ctrl+E"
    assert keys[("Help", "Keyboard shortcuts...")] == "F1, ?"
    assert keys[("Task", "Analyse with the chosen task")].startswith("Ctrl+")
    # generated from the actions: a key given now shows in the next sheet
    window.layout_actions.hanging_action.setShortcut(QtGui.QKeySequence("Ctrl+Shift+H"))
    assert ("View > Layout", "Hanging protocol per task", "Ctrl+Shift+H") in collect_actions(window)
    # the filter narrows the table
    sheet.filter.setText("ctrl+4")
    assert [r[1] for r in sheet.visible_rows()] == ["2 x 2"]
    sheet.close()
    # ? opens it too
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_Question)
    qtbot.waitUntil(lambda: window.shortcut_sheet is not sheet, timeout=5000)
    window.shortcut_sheet.close()


def test_every_toolbar_action_is_in_a_menu_and_help_is_last(window):
    rows = collect_actions(window)
    assert not [r for r in rows if r[0].startswith("Toolbar")], "toolbar-only actions"
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles[-1] == "Help" and {"File", "View", "Task"} <= set(titles)
    # the panels' buttons have menu entries that press them
    assert not window.findings.run_button.isEnabled()  # nothing open: nothing to run
    task_rows = [r[1] for r in rows if r[0] == "Task"]
    assert "Analyse with the chosen task" in task_rows
    assert "Cancel analysis or explanation" in task_rows


def test_no_key_does_two_things(window):
    """An ambiguous shortcut fires neither action; a window shortcut on a key the views handle
    themselves (shown-only entries) would take it from the views."""
    taken: dict[str, list[str]] = {}
    shown_only: set[str] = set()
    for act in window.findChildren(QtGui.QAction):
        for key in act.shortcuts():
            if act.shortcutContext() == Qt.ShortcutContext.WidgetShortcut:
                shown_only.add(key.toString())
            else:
                taken.setdefault(key.toString(), []).append(act.text())
    assert {k: v for k, v in taken.items() if len(v) > 1} == {}
    assert shown_only & set(taken) == set()
    assert {"Up", "Home", "I", "R", "Space", "Esc"} <= shown_only
