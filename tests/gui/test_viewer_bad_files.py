"""A folder with good series and broken files: the viewer shows the series and lists each
broken file with its reason (issue 17)."""

from __future__ import annotations

import pydicom
import pytest

from app.ui.series_browser import ERRORS_ROLE
from app.ui.slot_actions import SERIES_ROLE
from tests.gui.conftest import open_and_wait

pytestmark = pytest.mark.gui


def test_broken_files_are_listed_beside_the_series(qtbot, window, ct_dir, real_data) -> None:
    src = real_data / "pydicom_data" / "emri_small.dcm"
    hang = pydicom.dcmread(src)
    hang.NumberOfFrames = 10_000_000  # once hung the loader
    hang.save_as(ct_dir / "frames.dcm")
    (ct_dir / "empty.dcm").write_bytes(b"")
    open_and_wait(qtbot, window, ct_dir)
    items = [window.browser.item(n) for n in range(window.browser.count())]
    series = [i.data(SERIES_ROLE) for i in items if i.data(SERIES_ROLE) is not None]
    assert [s.description for s in series] == ["viewer test phantom"]
    assert window.series is series[0]
    (listed,) = [i for i in items if i.data(ERRORS_ROLE)]
    tip = listed.toolTip()
    assert "frames.dcm: the header claims 10000000 frame(s)" in tip
    assert "empty.dcm: empty file" in tip
    assert "2 file(s)" in listed.text()
    window.browser.setCurrentItem(listed)  # not a series: choosing it changes nothing
    assert window.series is series[0]
