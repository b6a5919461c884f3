"""The reader's impression: free text, reader name and Sign off, autosaved per series.

The draft logic (editing, signing, atomic JSON sidecars) is ``app.viewstate.report_draft``; this
widget only shows it and saves it 1 s after typing stops, when another series is shown, and when
the window closes, so a draft is never lost.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets
from PySide6.QtCore import Signal

from app.viewstate.report_draft import (
    DraftError,
    ReportDraft,
    data_dir,
    load_draft,
    save_draft,
)

AUTOSAVE_MS = 1000


def default_data_dir() -> Path:
    qt_dir = QtCore.QStandardPaths.writableLocation(
        QtCore.QStandardPaths.StandardLocation.AppDataLocation
    )
    return data_dir(qt_dir or None)


class ImpressionPanel(QtWidgets.QWidget):
    saved = Signal(str)  # path of the saved draft
    error = Signal(str)  # a draft that could not be read or written

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.base_dir: Path | None = None  # resolved on first use (env may change in tests)
        self.draft: ReportDraft | None = None
        self.default_reader = ""
        self._dirty = False
        self._loading = False
        self.last_error = ""

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QtWidgets.QLabel("<b>Reader's impression</b>"))
        self.text = QtWidgets.QPlainTextEdit()
        self.text.setPlaceholderText("Impression (saved automatically, goes into the report)")
        layout.addWidget(self.text, 1)
        row = QtWidgets.QHBoxLayout()
        self.reader = QtWidgets.QLineEdit()
        self.reader.setPlaceholderText("Reader name")
        self.sign_button = QtWidgets.QPushButton("Sign off")
        row.addWidget(self.reader, 1)
        row.addWidget(self.sign_button)
        layout.addLayout(row)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred
        )
        layout.addWidget(self.status)

        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(AUTOSAVE_MS)
        self._timer.timeout.connect(self.flush)
        self.text.textChanged.connect(self._on_edit)
        self.reader.textChanged.connect(self._on_edit)
        self.sign_button.clicked.connect(self.sign_off)
        self.set_series("", "")
        self.setEnabled(False)

    def _base(self) -> Path:
        if self.base_dir is None:
            self.base_dir = default_data_dir()
        return self.base_dir

    # ---- series ------------------------------------------------------------------------
    def set_series(self, study_uid: str, series_uid: str) -> None:
        """Save the current draft, then show the saved draft of this series (or a new one)."""
        self.flush()
        draft = None
        if series_uid:
            try:
                draft = load_draft(self._base(), study_uid, series_uid)
            except DraftError as exc:
                self._report_error(str(exc))
        if draft is None:
            draft = ReportDraft(study_uid, series_uid, reader_name=self.default_reader)
        self.draft = draft
        self._loading = True
        try:
            self.text.setPlainText(draft.impression)
            self.reader.setText(draft.reader_name)
        finally:
            self._loading = False
        self._dirty = False
        self.setEnabled(bool(series_uid))
        self._refresh()

    # ---- editing -----------------------------------------------------------------------
    def _on_edit(self) -> None:
        if self._loading or self.draft is None:
            return
        if self.draft.edit(self.text.toPlainText(), self.reader.text()):
            self._dirty = True
            self._timer.start()  # restarts: saves 1 s after typing stops
            self._refresh()

    def sign_off(self) -> None:
        if self.draft is None:
            return
        reason = self.draft.can_sign()
        if reason:
            self.status.setText(reason)
            return
        self.draft.sign()
        self.default_reader = self.draft.reader_name
        self._dirty = True
        self.flush()
        self._refresh()

    def _refresh(self) -> None:
        d = self.draft
        signed = d is not None and d.is_signed
        self.sign_button.setText("Signed" if signed else "Sign off")
        self.sign_button.setEnabled(d is not None and not signed)
        self.sign_button.setToolTip(
            "Stamps the reader's name and the time; editing again withdraws the sign-off"
        )
        if d is None:
            self.status.setText("")
            return
        text = d.status_text()
        if self.last_error:
            text += f"\n{self.last_error}"
        self.status.setText(text)
        self.status.setStyleSheet("color: #2a8a2a;" if signed else "")

    # ---- saving ------------------------------------------------------------------------
    def flush(self) -> bool:
        """Save now if anything changed since the last save; False if the save failed."""
        self._timer.stop()
        if not self._dirty or self.draft is None or not self.draft.series_uid:
            return True
        try:
            path = save_draft(self.draft, self._base())
        except DraftError as exc:
            self._report_error(str(exc))
            return False
        self._dirty = False
        self.last_error = ""
        self.saved.emit(str(path))
        return True

    def _report_error(self, message: str) -> None:
        self.last_error = message
        self.error.emit(message)
        self._refresh()

    @property
    def dirty(self) -> bool:
        return self._dirty
