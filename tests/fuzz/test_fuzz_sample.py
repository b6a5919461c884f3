"""A seeded 300-mutant sample of ``make fuzz`` on every test run (the full 10,000 is
``make fuzz``): no signal, no hang, no uncaught error, no silent impossible geometry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE, SEED = 300, 17
pytestmark = pytest.mark.timeout(600)


def test_fuzz_sample(real_data: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.harness",
            "--count",
            str(SAMPLE),
            "--seed",
            str(SEED),
            "--json",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=580,
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    print(proc.stdout)
    assert summary["total"] == SAMPLE
    # Both outcomes occur, so the mutants are neither all harmless nor all rejected up front.
    assert summary["loaded"] > SAMPLE // 10 and summary["error"] > SAMPLE // 10
    bad = {k: summary[k] for k in ("signal", "hang", "uncaught", "silent_impossible_geometry")}
    assert bad == dict.fromkeys(bad, 0), summary["findings"]
    assert proc.returncode == 0
