"""File > Open from PACS: a server list, a study search (patient ID, name, date, modality), and a
retrieve with progress and Cancel into the local cache; the study then opens as if from disk.

Servers (URL and user) are remembered in the viewer's settings; a password never is: it is
typed each time, or kept in the system keyring when the reader ticks the box and a real keyring
exists (``app.pacs.credentials``). Searches and retrieves run in worker threads, so a slow or
dead server never freezes the window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtWidgets

from app.pacs import PacsError
from app.pacs.credentials import keyring_available, password_for, remember_password

if TYPE_CHECKING:  # the DICOMweb client loads when the dialog is used, not with the viewer
    from app.pacs.client import PacsClient, StudyHit

SERVERS_KEY = "pacs/servers"  # list of "user@url" (no passwords)
_COLUMNS = ("Patient", "Patient ID", "Date", "Modalities", "Description", "Instances")


class _Job(QtCore.QThread):
    """Runs ``fn(progress, cancelled)`` off the UI thread; reports through signals only."""

    progress = QtCore.Signal(int, int)
    succeeded = QtCore.Signal(object)
    failed = QtCore.Signal(str)

    def __init__(self, fn: Callable, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._fn, self._cancel = fn, False

    def cancel(self) -> None:
        self._cancel = True

    def run(self) -> None:
        try:
            value = self._fn(lambda d, t: self.progress.emit(d, t), lambda: self._cancel)
        except PacsError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug must reach the reader as a message, not kill the thread
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.succeeded.emit(value)


class PacsDialog(QtWidgets.QDialog):
    studyReady = QtCore.Signal(str)  # noqa: N815 (Qt signal naming)

    def __init__(self, settings: QtCore.QSettings, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Open from PACS")
        self.settings = settings
        self.job: _Job | None = None
        self.hits: list[StudyHit] = []
        self.server = QtWidgets.QComboBox(editable=True)
        self.server.setToolTip("DICOMweb root, e.g. http://pacs:8042/dicom-web")
        self.user = QtWidgets.QLineEdit()
        self.password = QtWidgets.QLineEdit(echoMode=QtWidgets.QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("asked each time unless kept in the keyring")
        self.keep = QtWidgets.QCheckBox("Keep the password in the system keyring")
        self.keep.setEnabled(keyring_available())
        if not self.keep.isEnabled():
            self.keep.setToolTip("no system keyring here: the password is asked each time")
        self.patient_id, self.patient_name = QtWidgets.QLineEdit(), QtWidgets.QLineEdit()
        self.study_date, self.modality = QtWidgets.QLineEdit(), QtWidgets.QLineEdit()
        self.patient_name.setPlaceholderText("DOE* (wildcards)")
        self.study_date.setPlaceholderText("YYYYMMDD or YYYYMMDD-YYYYMMDD")
        self.modality.setPlaceholderText("CT, MR, DX ...")
        self.table = QtWidgets.QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.doubleClicked.connect(self.retrieve)
        self.progress = QtWidgets.QProgressBar()
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        self.search_button = QtWidgets.QPushButton("Search")
        self.retrieve_button = QtWidgets.QPushButton("Retrieve and open")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.search_button.clicked.connect(self.search)
        self.retrieve_button.clicked.connect(self.retrieve)
        self.cancel_button.clicked.connect(self.cancel)
        self._layout()
        self._load_servers()
        self._set_busy(False)

    def _layout(self) -> None:
        form = QtWidgets.QFormLayout()
        form.addRow("Server", self.server)
        form.addRow("User", self.user)
        form.addRow("Password", self.password)
        form.addRow("", self.keep)
        query = QtWidgets.QFormLayout()
        query.addRow("Patient ID", self.patient_id)
        query.addRow("Patient name", self.patient_name)
        query.addRow("Study date", self.study_date)
        query.addRow("Modality", self.modality)
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.search_button, self.retrieve_button, self.cancel_button):
            buttons.addWidget(b)
        top = QtWidgets.QHBoxLayout()
        top.addLayout(form)
        top.addLayout(query)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.resize(820, 520)

    # ---- servers (URL and user only) ----------------------------------------------------------
    def _servers(self) -> list[str]:
        value = self.settings.value(SERVERS_KEY, [])
        return [str(v) for v in ([value] if isinstance(value, str) else value or [])]

    def _load_servers(self) -> None:
        for entry in self._servers():
            user, at, url = entry.partition("@")
            if not at or "://" in user:  # "http://host/..." without a user
                user, url = "", entry
            self.server.addItem(url, user)
        self.server.currentIndexChanged.connect(
            lambda i: self.user.setText(self.server.itemData(i) or "")
        )
        if self.server.count():
            self.user.setText(self.server.itemData(0) or "")

    def _remember_server(self, url: str, user: str) -> None:
        entry = f"{user}@{url}" if user else url
        self.settings.setValue(
            SERVERS_KEY, [entry, *[e for e in self._servers() if e != entry]][:10]
        )

    # ---- work ---------------------------------------------------------------------------------
    def _client(self) -> PacsClient:
        url, user = self.server.currentText().strip().rstrip("/"), self.user.text().strip()
        if not url:
            raise PacsError("enter the server's DICOMweb URL")
        password = self.password.text() or None
        if user and password is None:
            password = password_for(url, user, ask=False)  # environment or keyring, no prompt
        if user and password and self.keep.isChecked():
            remember_password(url, user, password)
        self._remember_server(url, user)
        from app.pacs.client import PacsClient

        return PacsClient(url, user or None, password)

    def _start(self, fn: Callable, done: Callable[[object], None]) -> None:
        try:
            client = self._client()
        except PacsError as exc:
            self.status.setText(str(exc))
            return
        self.job = _Job(lambda progress, cancelled: fn(client, progress, cancelled), self)
        self.job.progress.connect(self._on_progress)
        self.job.succeeded.connect(done)
        self.job.failed.connect(self.status.setText)
        self.job.finished.connect(lambda: self._set_busy(False))
        self._set_busy(True)
        self.job.start()

    def search(self) -> None:
        fields = dict(
            patient_id=self.patient_id.text().strip(),
            patient_name=self.patient_name.text().strip(),
            study_date=self.study_date.text().strip(),
            modality=self.modality.text().strip(),
        )
        self.status.setText("searching...")
        self._start(lambda c, p, x: c.search(**fields), self._show_hits)

    def _show_hits(self, hits: list[StudyHit]) -> None:
        self.hits = list(hits)
        self.table.setRowCount(len(self.hits))
        for row, h in enumerate(self.hits):
            values = (h.patient_name, h.patient_id, h.study_date, " ".join(h.modalities),
                      h.description, "" if h.instances is None else str(h.instances))  # fmt: skip
            for col, value in enumerate(values):
                self.table.setItem(row, col, QtWidgets.QTableWidgetItem(value))
        if self.hits:
            self.table.selectRow(0)
        self.status.setText(f"{len(self.hits)} stud{'y' if len(self.hits) == 1 else 'ies'} found")

    def retrieve(self) -> None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or not self.hits:
            self.status.setText("search, then choose a study")
            return
        uid = self.hits[rows[0].row()].study_uid
        self.status.setText(f"retrieving {uid}...")
        self._start(
            lambda c, progress, cancelled: str(c.retrieve(uid, progress, cancelled)), self._opened
        )

    def _opened(self, folder: str) -> None:
        self.status.setText(f"retrieved into {folder}")
        self.studyReady.emit(folder)
        self.accept()

    def cancel(self) -> None:
        if self.job is not None and self.job.isRunning():
            self.job.cancel()
            self.status.setText("cancelling... (what arrived stays in the cache)")

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _set_busy(self, busy: bool) -> None:
        self.search_button.setEnabled(not busy)
        self.retrieve_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    def done(self, result: int) -> None:  # closing waits for the worker, never leaves it running
        if self.job is not None and self.job.isRunning():
            self.job.cancel()
            self.job.wait(30_000)
        super().done(result)


def open_pacs_dialog(window) -> None:
    """File > Open from PACS on ``window`` (the main window: its settings and ``open_path``)."""
    dialog = PacsDialog(window.settings, window)
    dialog.studyReady.connect(window.open_path)
    dialog.exec()
