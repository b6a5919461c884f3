"""Batch benchmark (``make bench``): studies per minute for the cervical task on 20 demo CT studies,
and the overhead of the batch machinery against calling the adapter directly in a loop.

Both paths load every study from DICOM and run the same adapter instance (ONNX sessions warmed
up before timing); the batch adds choosing the series, findings.json, the label map as NIfTI,
staging + rename, summary.csv and the progress bar. The two are timed in the order
direct, batch, batch, direct and summed, so a drift in machine load (the CPU is shared) falls on
both alike. Target (issue 6): overhead under 5 %.
"""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import pytest

from app.engine.registry import UnknownTask, get_adapter
from app.engine.runtime import WeightsError
from app.findings.batch import AnalyzeOptions, choose_series, load_study, run_batch

N_STUDIES = 20
OVERHEAD_TARGET = 0.05
TASK = "cervical-fracture"


def _adapter_or_skip():
    try:
        adapter = get_adapter(TASK)
        adapter.manifest  # noqa: B018 - loads and checks the weights manifest now
    except (UnknownTask, WeightsError, ImportError) as exc:
        print(f"\nbatch benchmark cannot run yet: {exc}")
        pytest.skip(f"{TASK} adapter or weights not available: {exc}")
    return adapter


def _write_studies(root: Path) -> list[Path]:
    from models.cervical_fracture.phantom import generate, write_study

    return [
        write_study(generate(seed, shape=128), root / f"study_{seed:02d}")
        for seed in range(N_STUDIES)
    ]


def _direct(adapter, studies: list[Path]) -> float:
    t0 = time.perf_counter()
    for path in studies:
        study, series = choose_series(load_study(path), adapter, path)
        adapter.run(series)
    return time.perf_counter() - t0


def _batch(adapter, root: Path, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    result = run_batch(root, adapter, out, AnalyzeOptions(), stream=io.StringIO())
    elapsed = time.perf_counter() - t0
    failed = [(r.study, r.reason) for r in result.rows if r.status != "ok"]
    assert not failed, failed
    return elapsed


def test_batch_throughput_and_overhead(tmp_path):
    adapter = _adapter_or_skip()
    root = tmp_path / "train_images"
    studies = _write_studies(root)
    _direct(adapter, studies[:1])  # sessions created and warmed outside the timings

    d1 = _direct(adapter, studies)
    b1 = _batch(adapter, root, tmp_path / "out")
    b2 = _batch(adapter, root, tmp_path / "out")
    d2 = _direct(adapter, studies)
    direct, batch = d1 + d2, b1 + b2
    overhead = (batch - direct) / direct
    per_minute = 2 * N_STUDIES / batch * 60
    print(
        f"\n{TASK} batch on {N_STUDIES} demo CT studies (128x128, DICOM):"
        f"\n  direct adapter loop: {d1:.2f} s, {d2:.2f} s"
        f"\n  batch (osteoview analyze DIR): {b1:.2f} s, {b2:.2f} s"
        f"\n  throughput: {per_minute:.1f} studies/min"
        f"\n  batch overhead: {overhead * 100:+.1f} % (target < {OVERHEAD_TARGET * 100:.0f} %: "
        f"{'met' if overhead < OVERHEAD_TARGET else 'MISSED'})"
    )
    assert overhead < 0.5  # sanity only: the figure above is what the issue asks for
