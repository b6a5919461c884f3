"""``osteoview demo``: writes each task's synthetic studies, is seeded, refuses a bad --out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.analysis.tasks import PhantomUnavailable, phantom_module
from app.analysis.tasks import task_specs as _specs
from app.commands import demo as demo_cmd

REPO = Path(__file__).resolve().parents[1]
MINE = ("calcaneus-fracture", "spine-xray", "lumbar-mri")


def _run(*args: str) -> subprocess.CompletedProcess:
    # What the ``osteoview`` console script runs (``python -m app.cli`` would load app.cli twice,
    # as __main__ and as app.cli, and its CliError would not be the one commands raise).
    entry = "import sys; from app.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", entry, "demo", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _truths(root: Path) -> dict[str, dict]:
    return {str(p.relative_to(root)): json.loads(p.read_text()) for p in root.rglob("truth.json")}


def test_demo_writes_studies_with_truth_and_is_seeded(tmp_path: Path) -> None:
    tasks = [a for t in MINE for a in ("--task", t)]
    first = _run("--out", str(tmp_path / "a"), "--seed", "3", *tasks)
    assert first.returncode == 0, first.stderr
    lines = [ln.split("\t") for ln in first.stdout.splitlines()]
    assert {t for t, _ in lines} == set(MINE)
    for task, path in lines:
        p = Path(path)
        assert p.exists() and p.is_relative_to(tmp_path / "a" / task)
        assert list(p.rglob("truth.json")) and list(p.rglob("*.dcm"))
    assert "not patients" in first.stderr
    second = _run("--out", str(tmp_path / "b"), "--seed", "3", *tasks)
    assert second.returncode == 0
    truths_a, truths_b = _truths(tmp_path / "a"), _truths(tmp_path / "b")
    assert len(truths_a) == 9 and truths_a == truths_b  # same seed, same truth
    other = _run("--out", str(tmp_path / "c"), "--seed", "4", "--task", "lumbar-mri")
    assert other.returncode == 0
    assert _truths(tmp_path / "c") != {k: v for k, v in truths_a.items() if "lumbar" in k}


def test_demo_refuses_a_file_as_out(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    for out in (f, f / "sub"):
        r = _run("--out", str(out), "--task", "spine-xray")
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and str(f) in lines[0] and "Traceback" not in r.stderr


def test_demo_rejects_unknown_task(tmp_path: Path) -> None:
    r = _run("--out", str(tmp_path), "--task", "knee")
    assert r.returncode != 0 and "invalid choice" in r.stderr


def test_missing_phantom_module_is_skipped_with_a_note(tmp_path, monkeypatch, capsys) -> None:
    import dataclasses

    from app.analysis import tasks

    broken = dataclasses.replace(
        tasks.get_spec("spine-xray"), phantom="models.no_such_task.phantom"
    )
    monkeypatch.setattr(
        tasks, "task_specs", lambda: [broken if s.id == "spine-xray" else s for s in _specs()]
    )
    with pytest.raises(PhantomUnavailable):
        phantom_module("spine-xray")
    written = demo_cmd.write_demos(tmp_path, 0, ["spine-xray", "calcaneus-fracture"])
    assert list(written) == ["calcaneus-fracture"] and len(written["calcaneus-fracture"]) == 3
    assert "skipping spine-xray" in capsys.readouterr().err


@pytest.mark.parametrize("task", MINE)
def test_my_phantom_modules_meet_the_interface(task: str) -> None:
    module = phantom_module(task)
    assert module.TASK_ID == task
    for fn in ("generate", "write_study", "write_demo"):
        assert callable(getattr(module, fn))
