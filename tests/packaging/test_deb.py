"""The .deb that `make package` builds, unpacked into a temporary root (``dpkg-deb -x``) and run
from a clean environment (``PATH=/usr/bin:/bin``, no venv, no PYTHON* variables): a real file
through ``osteoview info`` (JPEG 2000, decoded in the bundle's own child processes), every task
discovered, a demo study through ``osteoview screenshot`` with a model run (checked on its
pixels), and the time from start to the first shown window.

Run by ``make test-package``, which builds the package first (``OSTEOVIEW_TEST_PACKAGE=1``);
skipped otherwise.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
REAL = REPO.parent / "shared" / "data" / "real"
DEMO = REPO / "resources" / "demo"
START_TARGET_S = 2.0


def _deb() -> Path | None:
    version = re.search(r'__version__ = "(.+)"', (REPO / "app" / "__init__.py").read_text())[1]
    deb = REPO / "build" / "package" / "out" / f"osteoview_{version}_amd64.deb"
    return deb if deb.is_file() else None


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    # Only when asked: a .deb left by an earlier `make package` may be older than the code.
    if os.environ.get("OSTEOVIEW_TEST_PACKAGE") != "1":
        pytest.skip("the package tests run by `make test-package` (OSTEOVIEW_TEST_PACKAGE=1)")
    deb = _deb()
    if deb is None:
        pytest.skip("no .deb: run `make package` (or `make test-package`)")
    root = tmp_path_factory.mktemp("debroot")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


@pytest.fixture(scope="module")
def clean_env(tmp_path_factory) -> dict[str, str]:
    """What a desktop session gives a program, less any Python: no venv, no PYTHONPATH."""
    home = tmp_path_factory.mktemp("home")
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}


def osteoview(root: Path, env: dict, *args: str, timeout: float = 300, **extra_env: str):
    return subprocess.run(
        [str(root / "usr" / "bin" / "osteoview"), *args],
        env={**env, **extra_env}, cwd=env["HOME"], capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def test_the_package_installs_what_a_desktop_needs(root):
    desktop = (root / "usr/share/applications/osteoview.desktop").read_text()
    assert "Exec=osteoview %F" in desktop
    mime = re.search(r"^MimeType=(.*)$", desktop, re.M)[1].split(";")
    assert "application/dicom" in mime and "image/x-nifti" in mime
    icon = root / "usr/share/icons/hicolor/256x256/apps/osteoview.png"
    assert Image.open(icon).size == (256, 256)
    assert (root / "usr/share/icons/hicolor/scalable/apps/osteoview.svg").is_file()
    assert b"image/x-nifti" in (root / "usr/share/mime/packages/osteoview.xml").read_bytes()
    man = subprocess.run(
        ["gzip", "-dc", str(root / "usr/share/man/man1/osteoview.1.gz")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert man.startswith(".TH OSTEOVIEW 1") and ".SS screenshot" in man
    link = root / "usr/bin/osteoview"
    assert link.is_symlink() and link.resolve() == (root / "opt/osteoview/osteoview").resolve()
    # No Python from the system: the interpreter is inside the bundle.
    internal = root / "opt/osteoview/_internal"
    assert list(internal.glob("libpython3.11.so*")), "the bundle carries its own libpython"
    ldd = subprocess.run(["ldd", str(root / "opt/osteoview/osteoview")], capture_output=True,
                         text=True).stdout  # fmt: skip
    assert "python" not in ldd


def test_help_and_tasks_from_a_clean_environment(root, clean_env):
    r = osteoview(root, clean_env, "--help")
    assert r.returncode == 0 and "screenshot" in r.stdout, r.stderr
    r = osteoview(root, clean_env, "tasks")
    assert r.returncode == 0, r.stderr
    for task in ("spine-xray", "cervical-fracture", "femur-ao", "lumbar-mri", "calcaneus-fracture"):
        assert task in r.stdout, r.stdout
    assert "error" not in r.stdout.lower(), r.stdout


def test_info_on_real_files(root, clean_env):
    """A JPEG 2000 radiograph and a 20-file JPEG 2000 CT: pydicom's decoder plug-ins and the
    loader's decode children (the bundle starting itself as ``-m app.study.decode_child``)."""
    xray = REAL / "xray_nema_wg04" / "RG2_J2KR.dcm"
    ct = REAL / "totalsegmentator" / "example_ct_dicom"
    if not xray.is_file() or not ct.is_dir():
        pytest.skip(f"real data not found under {REAL}")
    r = osteoview(root, clean_env, "info", "--json", str(xray))
    assert r.returncode == 0, r.stderr
    series = json.loads(r.stdout)["studies"][0]["series"][0]
    assert series["shape"][-2:] == [2140, 1760] and series["modality"] in ("CR", "DX")
    r = osteoview(root, clean_env, "info", "--json", str(ct))
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert not info["errors"], info["errors"]
    assert info["studies"][0]["series"][0]["shape"] == [20, 512, 512]


def test_screenshot_of_a_demo_study_with_a_model_run(root, clean_env, tmp_path):
    study = DEMO / "femur-ao" / "neck_fracture_B2_right"
    out = tmp_path / "shot.png"
    r = osteoview(root, clean_env, "screenshot", str(study), "--task", "femur-ao",
                  "--out", str(out), "--size", "1200x800")  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "femur-ao:" in r.stdout, r.stdout  # the model ran inside the bundle
    img = np.asarray(Image.open(out).convert("RGB")).astype(np.int16)
    assert img.shape[:2] == (800, 1200)
    # The radiograph: a large region of many grey levels (not a blank or single-colour view).
    grey = (abs(img[..., 0] - img[..., 1]) < 4) & (abs(img[..., 1] - img[..., 2]) < 4)
    levels = np.unique(img[..., 0][grey & (img[..., 0] > 20)])
    assert len(levels) > 100, f"only {len(levels)} grey levels: no image drawn"
    assert img.std() > 20
    # An overlay in colour: the femur task draws its heat map or region in colour.
    colour = (img.max(axis=2) - img.min(axis=2)) > 60
    assert colour.sum() > 500, "no coloured overlay pixels"


@pytest.fixture
def display():
    """An X server of the test's own, started before the clock runs (a desktop has one)."""
    for num in range(260, 300):
        if not Path(f"/tmp/.X{num}-lock").exists():
            break
    proc = subprocess.Popen(["Xvfb", f":{num}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    for _ in range(200):
        if Path(f"/tmp/.X11-unix/X{num}").exists() or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "Xvfb did not start"
    yield f":{num}"
    proc.terminate()
    proc.wait(timeout=10)


def test_start_to_window_time(root, clean_env, display):
    """Seconds from process start to the main window's first expose (printed with the CPU
    seconds, which a loaded machine does not inflate; the target is 2 s, the assertion a loose
    ceiling for a shared machine). The first run is the cold one."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = osteoview(root, clean_env, timeout=120, OSTEOVIEW_STARTUP_PROBE="1",
                      DISPLAY=display, LIBGL_ALWAYS_SOFTWARE="1")  # fmt: skip
        wall = time.perf_counter() - t0
        assert r.returncode == 0, r.stdout + r.stderr
        found = re.search(r"window shown after ([\d.]+) s \(CPU ([\d.]+) s\)", r.stdout)
        shown, cpu = float(found[1]), float(found[2])
        times.append(shown)
        print(f"\n[package] start to window {shown:.2f} s, CPU {cpu:.2f} s (wall {wall:.2f} s)")
    best = min(times)
    verdict = "met" if best <= START_TARGET_S else "missed"
    print(f"[package] best start to window {best:.2f} s (target {START_TARGET_S} s) -> {verdict}")
    assert best < 30


def test_shap_explanation_inside_the_bundle(root, clean_env, tmp_path):
    """shap with numba's JIT (LLVM) frozen: the viewer's Explain and `analyze --explain`."""
    study = DEMO / "spine-xray" / "02_damaged_L1_wedge"
    out = tmp_path / "spine"
    r = osteoview(root, clean_env, "analyze", str(study), "--task", "spine-xray",
                  "--explain", "shap", "--out", str(out), timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "by shap: SHAP" in r.stdout, r.stdout
    maps = sorted(out.glob("heatmap_*_shap_*.npy"))
    assert maps, sorted(p.name for p in out.iterdir())
    values = np.load(maps[0])
    assert np.isfinite(values).all() and values.std() > 0
