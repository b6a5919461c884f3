"""The bundle's entry script (``packaging/osteoview_main.py``) runs every module the program starts
as a child of itself: a frozen program has no ``python -m``, so a child module missing from
``CHILD_MODULES`` would start the CLI instead and the feature would fail only in the package."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _entry():
    spec = importlib.util.spec_from_file_location(
        "osteoview_main", REPO / "packaging" / "osteoview_main.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_child_module_is_run_by_the_entry_script():
    started = set()
    for path in (REPO / "app").rglob("*.py"):
        text = path.read_text()
        started |= set(re.findall(r'sys\.executable,\s*"-m",\s*"([\w.]+)"', text))
        started |= set(re.findall(r'spawn_python_child\(\s*"([\w.]+)"', text))
    # the scan finds both children, so a new spelling of the spawn cannot hide one
    assert {"app.study.decode_child", "app.analysis.explain_child"} <= started, started
    assert started <= set(_entry().CHILD_MODULES), started - set(_entry().CHILD_MODULES)


def test_a_child_module_runs_its_main(monkeypatch):
    entry = _entry()
    calls = []
    fake = type(sys)("fake_child")
    fake.main = lambda: calls.append(list(sys.argv))
    monkeypatch.setitem(sys.modules, "fake_child", fake)
    monkeypatch.setattr(entry, "CHILD_MODULES", ("fake_child",))
    monkeypatch.setattr(sys, "argv", ["/opt/osteoview/osteoview", "-m", "fake_child", "--x"])
    assert entry.main() == 0
    assert calls == [["/opt/osteoview/osteoview", "--x"]]
