"""The viewer's mask editor: Edit mode on a label-map layer, its menu and toolbar, autosave,
the restore prompt, saving and importing, and re-running the task on the corrected mask.

Installed on the main window by ``install_mask_editor(window)``; it uses the window's
``layers``, ``visible_view_areas()``, ``series``/``study_of``, status bar, and for a re-run the
window's own result handling. The editing itself is ``app.editing`` (Qt-free, tested
headless); painting is ``editor_canvas``; the before/after table is ``editor_compare``.
"""

from __future__ import annotations

from PySide6 import QtWidgets
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence

from app.editing.editor import LabelEditor, Tool, empty_labels
from app.editing.journal import Journal
from app.editing.keys import ACTION_TITLES, KeyMap, dispatch
from app.editing.recovery import pending_recovery
from app.ui.editor_canvas import EditorCanvas
from app.viewstate.layers import Layer


class MaskEditorUI(QObject):
    """Edit mode and everything around it (see the module doc)."""

    autosave_failed = Signal(str)  # from the journal's thread; shown in the status bar

    def __init__(self, window, keys: KeyMap | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.keys = keys or KeyMap()
        self.canvas = EditorCanvas(self.keys, window.visible_view_areas, self)
        self.canvas.on_action = self._key
        self.editor: LabelEditor | None = None
        self.layer: Layer | None = None
        self.journal: Journal | None = None
        self.journals: dict[int, Journal] = {}  # layer id -> its journal (edits kept per layer)
        self.editors: dict[int, LabelEditor] = {}
        self.prompt: QtWidgets.QMessageBox | None = None
        self.autosave_failed.connect(lambda msg: window.statusBar().showMessage(msg, 30000))
        self._build_menu()
        window.layers.subscribe(self._on_layers)

    def _on_layers(self, what: str, layer) -> None:
        """The edited layer went (another series, a re-run): stop editing; its journal stays."""
        if what != "removed" or layer is None:
            return
        if layer is self.layer:
            self.stop()
        self._close_journal(layer.id)
        self.editors.pop(layer.id, None)

    def _close_journal(self, layer_id: int) -> None:
        """Stop a layer's writer. Unsaved edits keep their files (reopening the series offers
        them); a layer never edited, or saved since, leaves no workspace behind."""
        journal = self.journals.pop(layer_id, None)
        if journal is not None:
            editor = self.editors.get(layer_id)
            journal.close(discard=editor is not None and not editor.history.dirty)

    # ---- menu and toolbar -------------------------------------------------------------
    def _action(self, menu, title: str, slot, key_action: str = "", checkable=False) -> QAction:
        act = QAction(title, self.window)
        if key_action:
            keys = [k for k in self.keys.keys_for(key_action) if "Wheel" not in k]
            act.setShortcuts([QKeySequence(k) for k in keys])
            if keys:  # the menu shows the shortcut itself; the toolbar says it on hover
                act.setToolTip(f"{title} ({', '.join(keys)})")
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        menu.addAction(act)
        return act

    def _build_menu(self) -> None:
        m = self.window.menuBar().addMenu("&Mask")
        self.menu = m
        self.edit_action = self._action(m, "&Edit mask", self._toggle, checkable=True)
        self._action(m, "&New empty mask on this series", self.new_mask)
        m.addSeparator()
        group = QActionGroup(self.window)
        self.tool_actions: dict[Tool, QAction] = {}
        for tool, key in ((Tool.BRUSH, "tool_brush"), (Tool.ERASER, "tool_eraser"),
                          (Tool.FILL, "tool_fill")):  # fmt: skip
            act = self._action(m, ACTION_TITLES[key], lambda _=False, k=key: self._key(k), key,
                               checkable=True)  # fmt: skip
            group.addAction(act)
            self.tool_actions[tool] = act
        self.tool_actions[Tool.BRUSH].setChecked(True)
        editing = list(self.tool_actions.values())
        for key in ("brush_smaller", "brush_larger", "undo", "redo"):
            editing.append(self._action(m, ACTION_TITLES[key], lambda _=False, k=key: self._key(k),
                                        key))  # fmt: skip
        m.addSeparator()
        editing += [
            self._action(m, "Remove small &islands", lambda: self._op("remove_islands", 20)),
            self._action(m, "Keep &largest piece", lambda: self._op("keep_largest")),
            self._action(m, "&Interpolate between slices", lambda: self._op("interpolate")),
        ]
        m.addSeparator()
        from app.ui.editor_files import EditorFiles

        self.files = EditorFiles(self)
        editing += self.files.add_actions(m)
        self.editing_actions = editing
        self.toolbar = self.window.addToolBar("Mask")
        self.toolbar.setObjectName("mask_toolbar")
        for act in [self.edit_action, *self.tool_actions.values(), *editing[3:7]]:
            self.toolbar.addAction(act)
        # the label value painted: a new value gets a name and colour in the layer's table
        self.label_box = QtWidgets.QSpinBox()
        self.label_box.setRange(1, 65535)
        self.label_box.setPrefix("label ")
        self.label_box.setToolTip("Label value painted (a new value gets its own colour)")
        self.label_box.valueChanged.connect(self._set_label)
        self.toolbar.addWidget(self.label_box)
        self._sync()

    def _set_label(self, value: int) -> None:
        if self.editor is not None and value != self.editor.label:
            self.editor.set_label(value)
            if self.layer is not None:
                self.layer._lut = None  # the colour table grows with the new value
            names = self.editor.overlay.labels
            self.window.statusBar().showMessage(
                f"Mask: painting label {value} ({names[value][0]})", 4000
            )

    def _sync(self) -> None:
        on = self.editor is not None
        self.edit_action.setChecked(on)
        for act in self.editing_actions:
            act.setEnabled(on)
        self.label_box.setEnabled(on)
        if on:
            self.tool_actions[self.editor.tool].setChecked(True)
            self.label_box.blockSignals(True)
            self.label_box.setValue(self.editor.label)
            self.label_box.blockSignals(False)

    def _key(self, action: str) -> None:
        if self.editor is None:
            return
        dispatch(self.editor, action)
        self._sync()
        mm = self.editor.radius_mm
        self.window.statusBar().showMessage(
            f"Mask: {self.editor.tool.value}, brush radius {mm:.1f} mm, label {self.editor.label}"
            f", {self.editor.history.steps} undo steps",
            4000,
        )

    def _op(self, name: str, *args) -> None:
        if self.editor is not None:
            diff = getattr(self.editor, name)(*args)
            changed = 0 if diff is None else diff.size
            self.window.statusBar().showMessage(f"Mask: {name.replace('_', ' ')}: "
                                                f"{changed} voxels changed", 6000)  # fmt: skip

    # ---- edit mode --------------------------------------------------------------------
    def _toggle(self, on: bool) -> None:
        if on:
            self.start()
        else:
            self.stop()

    def candidate_layer(self) -> Layer | None:
        """The top label map drawn on screen."""
        for area in self.window.visible_view_areas():
            maps = [la for la in area.drawn_layers() if la.kind == "labelmap"]
            if maps:
                return maps[-1]
        return None

    def start(self, layer: Layer | None = None) -> LabelEditor | None:
        """Edit ``layer`` (default: the top label map on screen, else a new empty one)."""
        layer = layer or self.candidate_layer()
        if layer is None:
            return self.new_mask()
        series = self._series_of(layer)
        if series is None:
            self.window.statusBar().showMessage("Mask: open a study first", 5000)
            self._sync()
            return None
        editor = self.editors.get(layer.id)
        if editor is None:
            editor = LabelEditor(layer.overlay, intensity=series.image)
            self.editors[layer.id] = editor
        self.editor, self.layer = editor, layer
        if layer.id not in self.journals:
            study = self.window.study_of(series)
            self.journals[layer.id] = Journal(
                editor.history, layer.overlay, study.study_uid if study else "",
                series.series_uid, layer.source, on_error=self.autosave_failed.emit,
            )  # fmt: skip
        self.journal = self.journals[layer.id]
        self.canvas.attach(editor, layer)
        self._sync()
        self.window.statusBar().showMessage(
            f"Editing '{layer.name}': left-drag paints, Ctrl erases, [ ] size, Ctrl+Z undo", 8000
        )
        return editor

    def stop(self) -> None:
        self.canvas.detach()
        self.editor = self.layer = self.journal = None
        self._sync()

    def new_mask(self) -> LabelEditor | None:
        series = self.window.series
        if series is None:
            self.window.statusBar().showMessage("Mask: open a study first", 5000)
            self._sync()
            return None
        n = sum(la.name.startswith("Mask") for la in self.window.layers) + 1
        overlay = empty_labels(series.image, f"Mask {n}")
        layer = self.window.layers.add_overlay(overlay, "user", series.image, series.series_uid)
        return self.start(layer)

    def _series_of(self, layer: Layer):
        for area in self.window.visible_view_areas():
            if layer in area.drawn_layers() and area.series is not None:
                return area.series
        return self.window.series

    # ---- recovery ---------------------------------------------------------------------
    def offer_recovery(self, ask=None) -> int:
        """After a series is shown: offer the unsaved edits a crash left; returns the layers
        restored. ``ask(text) -> bool`` replaces the dialog (tests)."""
        if self.prompt is not None:
            self.prompt.close()  # a question about the series shown before: unanswered, kept
            self.prompt = None
        series = self.window.series
        if series is None:
            return 0
        study = self.window.study_of(series)
        rec = pending_recovery(study.study_uid if study else "", series.series_uid)
        if rec is None:
            return 0
        text = f"Unsaved mask edits were found for this series ({rec.describe()}). Restore them?"
        if ask is None:  # not modal-blocking: loading and tests carry on while it is asked
            box = QtWidgets.QMessageBox(
                QtWidgets.QMessageBox.Icon.Question, "Restore mask edits", text,
                QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
                self.window,
            )  # fmt: skip
            yes = QtWidgets.QMessageBox.StandardButton.Yes
            box.finished.connect(
                lambda _code: (
                    box.clickedButton() is box.button(yes) and self._restore(rec, series, study)
                )
            )
            box.open()
            self.prompt = box
            return 0
        if not ask(text):
            return 0  # kept on disk: offered again next time, never deleted unasked
        return self._restore(rec, series, study)

    def _restore(self, rec, series, study) -> int:
        if self.window.series is not series:
            return 0  # another series was opened while the question was up
        restored = rec.restore()
        for item in restored:
            item.overlay.name = f"{item.overlay.name} (restored)"
            layer = self.window.layers.add_overlay(item.overlay, "user", series.image,
                                                   series.series_uid)  # fmt: skip
            editor = LabelEditor(item.overlay, intensity=series.image, history=item.history)
            self.editors[layer.id] = editor
            self.journals[layer.id] = Journal(
                item.history, item.overlay, study.study_uid if study else "", series.series_uid,
                item.source, on_error=self.autosave_failed.emit, folder=item.folder,
            )  # fmt: skip
        self.window.statusBar().showMessage(f"Restored {len(restored)} edited mask(s)", 8000)
        return len(restored)

    def close(self) -> None:
        """The window closes: stop the writers (the journals stay until saved or discarded)."""
        self.stop()
        for layer_id in list(self.journals):
            self._close_journal(layer_id)

    def unsaved(self) -> list[str]:
        return [ed.overlay.name for ed in self.editors.values() if ed.history.dirty]


def install_mask_editor(window) -> MaskEditorUI:
    """Called once by ``MainWindow.__init__``."""
    ui = MaskEditorUI(window)
    window.mask_editor = ui
    return ui
