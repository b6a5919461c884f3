"""The test Orthanc itself: authentication on, DICOMweb served, loopback only."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest


def test_dicomweb_needs_the_registered_user(orthanc) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(orthanc.dicomweb + "/studies", timeout=10)
    assert err.value.code == 401
    system = orthanc.rest("GET", "/system")
    assert system["Name"] == "osteoview-test"
    assert orthanc.url.startswith("http://127.0.0.1:")
    plugins = orthanc.rest("GET", "/plugins")
    assert "dicom-web" in plugins
