"""Running a model needs numpy + onnxruntime only: the viewer, the CLI and every adapter import
without torch or MONAI (they belong to training and export)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import sys
import app.cli
from app.commands import analyze, demo, export, info, screenshot, tasks
import app.ui.main
from app.analysis.tasks import adapter_class, task_ids
for task_id in task_ids():
    try:
        adapter_class(task_id)
    except Exception as exc:  # a task whose model has not landed: nothing to check
        print("skip", task_id, exc)
heavy = sorted(m for m in ("torch", "monai", "onnx", "torchvision") if m in sys.modules)
print("HEAVY", ",".join(heavy))
"""


def test_viewer_cli_and_adapters_import_without_torch():
    r = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    heavy = [line for line in r.stdout.splitlines() if line.startswith("HEAVY")]
    assert heavy == ["HEAVY "], f"imported at run time: {heavy}\n{r.stdout}"
