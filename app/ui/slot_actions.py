"""Which series fills each input slot of a task: resolved from the open study with the shown
series first; the user may assign a series ("Use as" on the series browser) or load a mask into a
mask slot (File > Load mask into slot...). A mixin of ``MainWindow``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtWidgets
from PySide6.QtCore import Qt

from app.findings.types import LabelMapOverlay
from app.study.model import LoadResult, Series, Study
from app.ui.workers import LoadWorker

SERIES_ROLE = Qt.ItemDataRole.UserRole + 1
MASK_COLOUR = (255, 200, 0)  # a loaded mask, before any run (amber: not a model's colour)


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
        request = resolve_inputs(
            spec, loaded, self.study_path, adapter=adapter, overrides=overrides, prefer=self.series
        )
        cross = getattr(self.view_area, "cross", None)
        if cross is not None and not self.series.image.is_2d:
            request.focus_lps = tuple(float(v) for v in cross.point)
        return request

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
        self._mark_browser()
        self.update_task_choice()

    def _mark_browser(self) -> None:
        """Each series the user assigned says where it goes, in the browser."""
        roles: dict[int, list[str]] = {}
        for task_id, slots in self.slot_overrides.items():
            for slot, series in slots.items():
                roles.setdefault(id(series), []).append(f"{slot} ({task_id})")
        self.browser.mark_assignments(roles)

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
        image = self._mask_image(task_id, slot)
        problem = self._mask_mismatch(slot, mask, image) if image is not None else ""
        if problem:
            self.findings.show_message(f"Mask not used: {Path(path).name}: {problem}")
            return
        self.assign_to_slot(task_id, slot, mask)
        if image is not None:
            self._show_mask(f"{Path(path).name} ({slot})", mask, image)
        self.findings.show_message(f"{Path(path).name} will be used as {task_id}'s {slot}.")

    def _mask_image(self, task_id: str, slot: str) -> Series | None:
        """The series a mask slot's mask lies on (its ``mask_of`` slot), or None if unknown."""
        from app.engine.adapter import InputRejected

        try:
            image_slot = task_spec(task_id).slot(slot).mask_of
            return self.analysis_request(task_id).get(image_slot)
        except (InputRejected, KeyError):
            return None

    def _show_mask(self, name: str, mask: Series, image: Series) -> None:
        """The loaded mask as a layer on its image, so the reader sees what the task will read.
        A mask file (a PNG) carries no geometry of its own: it lies on its image's pixel grid."""
        pixels = np.asarray(mask.image.array)
        if pixels.ndim == 4:  # an RGB(A) PNG
            pixels = pixels.max(axis=-1)
        labels = (pixels.reshape(image.shape) > 0).astype(np.uint8)
        self.layers.clear("mask")
        overlay = LabelMapOverlay(
            name, image=image.image.with_array(labels), labels={1: ("mask", MASK_COLOUR)},
            opacity=0.35,
        )  # fmt: skip
        self.layers.add_overlay(overlay, "mask", image.image, image.series_uid)

    def _mask_mismatch(self, slot: str, mask: Series, image: Series) -> str:
        """Why the mask cannot lie on its image's grid, or ""."""
        if image is mask or mask.shape == image.shape:
            return ""
        rows, cols = mask.shape[-2:]
        irows, icols = image.shape[-2:]
        return (
            f"it is {cols}x{rows} pixels; the {slot}'s image it lies on "
            f"({image.description or image.modality}) is {icols}x{irows}"
        )
