"""The wheel `make package` builds: it carries every task's weights, manifest and domain file,
and installed (into build/package/venv, the runtime-only venv the bundle is frozen from) it runs
``osteoview info`` on a real file from a clean environment. Run by ``make test-package``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "build" / "package"
REAL = REPO.parent / "shared" / "data" / "real"


@pytest.fixture(scope="module")
def wheel() -> Path:
    if os.environ.get("OSTEOVIEW_TEST_PACKAGE") != "1":
        pytest.skip("the package tests run by `make test-package` (OSTEOVIEW_TEST_PACKAGE=1)")
    version = re.search(r'__version__ = "(.+)"', (REPO / "app" / "__init__.py").read_text())[1]
    found = list((PKG / "out").glob(f"osteoview-{version}-*.whl"))
    if not found:
        pytest.skip("no wheel: run `make package`")
    return found[0]


def test_the_wheel_carries_each_task_s_weights(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    manifests = sorted(REPO.glob("models/*/weights/manifest.json"))
    assert len(manifests) >= 5
    for manifest in manifests:
        folder = manifest.parent.relative_to(REPO).as_posix()
        assert f"{folder}/manifest.json" in names
        assert f"{folder}/domain.json" in names
        for file in json.loads(manifest.read_text())["files"]:
            assert f"{folder}/{file}" in names, f"{folder}/{file} is not in {wheel.name}"
        assert f"{folder.rsplit('/', 1)[0]}/task.py" in names


def test_the_installed_wheel_runs_info_on_a_real_file(wheel, tmp_path):
    exe = PKG / "venv" / "bin" / "osteoview"
    dicom = REAL / "xray_nema_wg04" / "RG2_JLSL.dcm"
    if not dicom.is_file():
        pytest.skip(f"real data not found under {REAL}")
    r = subprocess.run(
        [str(exe), "info", "--json", str(dicom)],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, cwd=tmp_path,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    series = json.loads(r.stdout)["studies"][0]["series"][0]
    assert series["shape"] == [1, 2140, 1760]
    site = subprocess.run(
        [str(PKG / "venv" / "bin" / "python"), "-c", "import app; print(app.__file__)"],
        env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "site-packages" in site  # the installed wheel, not the source tree
