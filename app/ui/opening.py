"""Opening studies in the main window: file and folder dialogs, recent files, drag and drop, and
the load in a worker thread with progress and Cancel. A mixin of ``MainWindow``."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets
from PySide6.QtCore import Qt

from app.study.model import LoadResult
from app.ui.workers import LoadWorker

MAX_RECENT = 10


class OpeningActions:
    """Mixin: everything from a path to ``show_load_result``."""

    def _open_file_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open image or DICOM file")
        if path:
            self.open_path(path)

    def _open_folder_dialog(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open DICOM folder")
        if path:
            self.open_path(path)

    def recent_files(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _remember(self, path: str) -> None:
        recent = [p for p in self.recent_files() if p != path]
        self.settings.setValue("recent", [path, *recent][:MAX_RECENT])
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_files():
            self.recent_menu.addAction(path, lambda p=path: self.open_path(p))

    def dragEnterEvent(self, ev) -> None:  # noqa: N802
        if any(u.isLocalFile() for u in ev.mimeData().urls()):
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:  # noqa: N802
        """A file or folder dropped on the window (a view included) opens as File > Open
        would; several files of one folder (a series' slices) open that folder."""
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        ev.acceptProposedAction()
        parents = {str(Path(p).parent) for p in paths}
        if len(paths) > 1 and len(parents) == 1 and all(Path(p).is_file() for p in paths):
            self.open_path(parents.pop())
            return
        self.open_path(paths[0])  # one study at a time: the first of several

    def open_path(self, path: str) -> None:
        """Load in a worker thread; the window keeps responding, Cancel stops it."""
        if self.load_worker is not None and self.load_worker.isRunning():
            self.load_worker.cancel()
            self.load_worker.wait()
        self.study_path = str(path)
        worker = LoadWorker(str(path), self)
        worker.progress.connect(self._on_load_progress)
        worker.loaded.connect(self._on_loaded)
        worker.failed.connect(self._on_load_failed)
        worker.cancelled.connect(lambda: self._end_load(f"Loading cancelled: {path}"))
        self.load_worker = worker
        self._loading = True
        self.load_progress.setRange(0, 0)
        self.load_progress.setVisible(True)
        self.load_cancel.setVisible(True)
        self.statusBar().showMessage(f"Loading {path} ...")
        worker.start()

    def cancel_load(self) -> None:
        if self.load_worker is not None:
            self.load_worker.cancel()

    def _on_load_progress(self, done: int, total: int) -> None:
        self.load_progress.setRange(0, max(total, 1))
        self.load_progress.setValue(done)

    def _end_load(self, message: str) -> None:
        self._loading = False
        self.load_progress.setVisible(False)
        self.load_cancel.setVisible(False)
        self.statusBar().showMessage(message, 10000)

    def _on_load_failed(self, message: str) -> None:
        self._end_load(message)
        # non-modal: the message names the file and the reason; the window stays usable
        box = QtWidgets.QMessageBox(
            QtWidgets.QMessageBox.Icon.Warning, "Cannot open", message, parent=self
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setModal(False)
        box.show()
        self.last_error = message

    def _on_loaded(self, result: LoadResult, thumbs: dict) -> None:
        errors = f"; {len(result.errors)} file(s) skipped" if result.errors else ""
        self._end_load(f"Loaded {self.study_path}{errors}")
        self.show_load_result(result, thumbs, self.study_path)
        self._remember(self.study_path)
