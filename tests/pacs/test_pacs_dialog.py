"""File > Open from PACS against the real Orthanc: search, retrieve in a worker thread, open;
servers remembered without their passwords; a wrong password shown as a message."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.gui

from PySide6 import QtCore  # noqa: E402

from app.study import load  # noqa: E402
from app.ui.pacs_dialog import SERVERS_KEY, PacsDialog  # noqa: E402
from tests.pacs.helpers import small_ct  # noqa: E402

WAIT_MS = 30_000


@pytest.fixture()
def dialog(qtbot, orthanc, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("OSTEOVIEW_PACS_PASSWORD", raising=False)
    orthanc.clear()
    for n, pid in enumerate(("GUI-0001", "GUI-0002")):
        _, paths = small_ct(tmp_path / pid, slices=4 + n, patient_id=pid, seed=n)
        orthanc.upload(paths)
    ini = tmp_path / "settings.ini"
    settings = QtCore.QSettings(str(ini), QtCore.QSettings.Format.IniFormat)
    d = PacsDialog(settings)
    qtbot.addWidget(d)
    d.server.setCurrentText(orthanc.dicomweb)
    d.user.setText(orthanc.user)
    return d, settings, ini


def test_search_retrieve_and_open(qtbot, dialog, orthanc) -> None:
    d, settings, ini = dialog
    d.password.setText(orthanc.password)
    d.patient_id.setText("GUI-0002")
    d.search_button.click()
    qtbot.waitUntil(
        lambda: d.table.rowCount() == 1 and d.search_button.isEnabled(), timeout=WAIT_MS
    )
    assert d.table.item(0, 1).text() == "GUI-0002" and d.table.item(0, 5).text() == "5"
    with qtbot.waitSignal(d.studyReady, timeout=WAIT_MS) as ready:
        d.retrieve_button.click()
    folder = ready.args[0]
    assert load(folder).all_series()[0].shape[0] == 5
    assert d.progress.value() == d.progress.maximum() == 5
    settings.sync()
    assert settings.value(SERVERS_KEY) == f"{orthanc.user}@{orthanc.dicomweb}" or settings.value(
        SERVERS_KEY
    ) == [f"{orthanc.user}@{orthanc.dicomweb}"]
    assert orthanc.password not in ini.read_text()  # the password is never written


def test_wrong_password_is_a_message(qtbot, dialog, orthanc) -> None:
    d, _, _ = dialog
    d.password.setText("wrong")
    d.search_button.click()
    qtbot.waitUntil(lambda: "401" in d.status.text(), timeout=WAIT_MS)
    assert d.table.rowCount() == 0 and d.search_button.isEnabled()
