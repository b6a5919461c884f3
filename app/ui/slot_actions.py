"""Which series fills each input slot of a task: resolved from the open study with the shown
series first; the user may assign a series ("Use as" on the series browser) or load a mask into a
mask slot (File > Load mask into slot...). A mixin of ``MainWindow``."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets
from PySide6.QtCore import Qt

from app.study.model import LoadResult, Series, Study
from app.ui.workers import LoadWorker

SERIES_ROLE = Qt.ItemDataRole.UserRole + 1


def task_spec(task_id: str):
    from app.analysis.tasks import get_spec

    return get_spec(task_id)


class SlotActions:
    """Mixin: the slots of a task and what fills them."""

    # ---- which series fills each slot ------------------------------------------------------
    def analysis_request(self, task_id: str, adapter=None, use_overrides: bool = True):
        """The inputs of ``task_id`` from the open study, the shown series first; the series the
        user assigned to a slot (``slot_overrides``) win. InputRejected says what is missing."""
        from app.analysis.request import resolve_inputs

        spec = adapter.spec if adapter is not None else task_spec(task_id)
        loaded = self.load_result or LoadResult()
        if not any(s is self.series for s in loaded.all_series()):
            loaded = LoadResult([Study("", series=[self.series])])
        overrides = dict(self.slot_overrides.get(task_id, {})) if use_overrides else {}
        return resolve_inputs(
            spec, loaded, self.study_path, adapter=adapter, overrides=overrides, prefer=self.series
        )

    def assign_to_slot(self, task_id: str, slot: str, series: Series | None) -> None:
        """Use ``series`` as ``task_id``'s input ``slot`` (None: choose automatically again)."""
        chosen = self.slot_overrides.setdefault(task_id, {})
        if series is None:
            chosen.pop(slot, None)
            self.statusBar().showMessage(f"{task_id}: {slot} is chosen automatically", 8000)
        else:
            for other in [s for s, v in chosen.items() if v is series and s != slot]:
                chosen.pop(other)  # one series fills one slot
            chosen[slot] = series
            name = series.description or series.modality or series.series_uid
            self.statusBar().showMessage(f"{task_id}: {name} will be used as {slot}", 8000)
        if not chosen:
            self.slot_overrides.pop(task_id, None)
        self.update_task_choice()

    def slot_menu(self, series: Series) -> QtWidgets.QMenu:
        """ "Use as" for ``series``: the current task's slots (every task's when no task can run
        yet: assigning a series may be what makes one runnable)."""
        menu = QtWidgets.QMenu("Use as", self)
        current = self.findings.current_task()
        tasks = [current] if current else self.available_task_ids()
        for task_id in tasks:
            try:
                spec = task_spec(task_id)
            except Exception:  # noqa: BLE001 - a task whose declaration went away
                continue
            target = menu if len(tasks) == 1 else menu.addMenu(task_id)
            chosen = self.slot_overrides.get(task_id, {})
            for slot in spec.slots:
                action = target.addAction(f"{slot.name}: {slot.description}")
                action.setCheckable(True)
                action.setChecked(chosen.get(slot.name) is series)
                action.triggered.connect(
                    lambda on, t=task_id, s=slot.name: self.assign_to_slot(
                        t, s, series if on else None
                    )
                )
        return menu

    def _on_browser_menu(self, pos) -> None:
        item = self.browser.itemAt(pos)
        series = item.data(SERIES_ROLE) if item is not None else None
        if series is None:
            return
        menu = QtWidgets.QMenu(self)
        menu.addMenu(self.slot_menu(series))
        menu.exec(self.browser.viewport().mapToGlobal(pos))

    # ---- loading a mask into a slot ----------------------------------------------------------
    def mask_slots(self, task_id: str) -> list[str]:
        try:
            return [s.name for s in task_spec(task_id).slots if s.is_mask]
        except Exception:  # noqa: BLE001 - unknown task: no mask slots
            return []

    def _mask_target(self) -> tuple[str, str] | None:
        """(task, slot) a loaded mask goes to: the current task's mask slot, else the only task
        that has one; asks when there are several."""
        current = self.findings.current_task()
        tasks = [current] if self.mask_slots(current) else self.available_task_ids()
        choices = [f"{t}: {s}" for t in tasks for s in self.mask_slots(t)]
        if not choices:
            self.findings.show_message("No task here takes a mask as input.")
            return None
        choice = choices[0]
        if len(choices) > 1:
            choice, ok = QtWidgets.QInputDialog.getItem(
                self, "Load mask into slot", "Input slot:", choices, 0, False
            )
            if not ok:
                return None
        task, _, slot = choice.partition(": ")
        return task, slot

    def _load_mask_dialog(self) -> None:
        target = self._mask_target()
        if target is None:
            return
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, f"Load mask into {target[1]}", "", "Masks (*.png *.nii *.nii.gz *.dcm);;All (*)"
        )
        if path:
            self.load_mask_into_slot(path, *target)

    def load_mask_into_slot(self, path: str, task_id: str, slot: str) -> None:
        """Load a mask (PNG, NIfTI, DICOM) in a worker and assign it to ``task_id``'s ``slot``."""
        if self.mask_worker is not None and self.mask_worker.isRunning():
            self.mask_worker.cancel()
            self.mask_worker.wait()
        worker = LoadWorker(str(path), self)
        worker.loaded.connect(lambda result, _t: self._on_mask_loaded(path, task_id, slot, result))
        worker.failed.connect(lambda msg: self.findings.show_message(f"Mask not loaded: {msg}"))
        self.mask_worker = worker
        worker.start()

    def _on_mask_loaded(self, path: str, task_id: str, slot: str, loaded: LoadResult) -> None:
        series = loaded.all_series()
        if not series:
            why = "; ".join(e.reason for e in loaded.errors[:2]) or "no image in it"
            self.findings.show_message(f"Mask not loaded: {path}: {why}")
            return
        mask = series[0]
        problem = self._mask_mismatch(task_id, slot, mask)
        if problem:
            self.findings.show_message(f"Mask not used: {Path(path).name}: {problem}")
            return
        self.assign_to_slot(task_id, slot, mask)
        self.findings.show_message(f"{Path(path).name} will be used as {task_id}'s {slot}.")

    def _mask_mismatch(self, task_id: str, slot: str, mask: Series) -> str:
        """Why the mask cannot lie on its image's grid, or "" (also when the image is unknown)."""
        from app.engine.adapter import InputRejected

        try:
            image_slot = task_spec(task_id).slot(slot).mask_of
            request = self.analysis_request(task_id)
        except (InputRejected, KeyError):
            return ""
        image = request.get(image_slot)
        if image is None or image is mask or mask.shape[-2:] == image.shape[-2:]:
            return ""
        rows, cols = mask.shape[-2:]
        irows, icols = image.shape[-2:]
        return (
            f"it is {cols}x{rows} pixels; the {image_slot} it lies on "
            f"({image.description or image.modality}) is {icols}x{irows}"
        )
