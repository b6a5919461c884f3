"""The batch on a Dask LocalCluster of two workers, one killed mid-batch: the batch finishes with
every study once in summary.csv, none lost, none done twice, and ONNX-style adapters built once
per worker process."""

from __future__ import annotations

import csv
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from app.analysis.batch import run_batch
from app.analysis.one_study import AnalyzeOptions
from app.analysis.tasks import get_adapter
from app.findings.io import is_complete
from app.study.dicom_writer import PatientTags, write_series
from tests import fake_tasks
from tests.fake_tasks import ct_phantom

distributed = pytest.importorskip("distributed")
from app.analysis.cluster import run_batch_on_cluster  # noqa: E402

STUDIES = 8


@pytest.fixture()
def batch_root(tmp_path, monkeypatch):
    fake_tasks.register(monkeypatch)
    root = tmp_path / "studies"
    for n in range(STUDIES):
        patient = PatientTags(name=f"PATIENT^{n}", patient_id=f"PID-{n}")
        write_series(ct_phantom(fracture_in=n % 3 + 1), root / f"study{n:02d}", patient=patient)
    return root


def _summary(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def _local_cluster():
    return distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        host="127.0.0.1", silence_logs=50,
    )  # fmt: skip


def test_killed_worker_loses_no_study_and_repeats_none(batch_root, tmp_path, monkeypatch):
    # each study sleeps in the adapter, so a worker is surely mid-study when it is killed
    monkeypatch.setenv("FAKE_ADAPTER_SLEEP", "1.0")
    out = tmp_path / "out"
    adapter = get_adapter("fake-ct")
    killed: list[int] = []
    with _local_cluster() as cluster, distributed.Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        assert len(pids) == 2

        def kill_one_when_busy() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # after the first study is published
                if any(is_complete(p) for p in out.glob("study*")):
                    break
                time.sleep(0.05)
            time.sleep(0.3)  # the next studies are in flight on both workers
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

        killer = threading.Thread(target=kill_one_when_busy)
        killer.start()
        result = run_batch_on_cluster(
            batch_root, adapter, out, AnalyzeOptions(), "local:2", client=client
        )
        killer.join()
    assert killed, "the worker was not killed"
    rows = _summary(out)
    assert sorted(r["study"] for r in rows) == [f"study{n:02d}" for n in range(STUDIES)]
    assert all(r["status"] == "ok" for r in rows), rows
    assert all(is_complete(out / f"study{n:02d}") for n in range(STUDIES))
    assert not (out / ".staging").exists()  # the killed worker's half study is gone
    # each study published exactly once: one findings.json each, and the surviving workers
    # together ran each study once (the killed one never reported)
    ran = sum(w["studies"] for w in result.workers.values())
    assert ran == STUDIES
    assert killed[0] not in result.workers or result.workers[killed[0]]["studies"] < STUDIES
    # the adapter was built once per worker process, however many studies it ran
    assert all(w["adapter_loads"] == 1 for w in result.workers.values()), result.workers
    assert max(w["studies"] for w in result.workers.values()) > 1


def test_cluster_batch_matches_the_serial_batch_and_resumes(batch_root, tmp_path, monkeypatch):
    adapter = get_adapter("fake-ct")
    serial, dask_out = tmp_path / "serial", tmp_path / "dask"
    run_batch(batch_root, adapter, serial, AnalyzeOptions())
    with _local_cluster() as cluster, distributed.Client(cluster) as client:
        # through the scheduler's address, as for a cluster started elsewhere
        address = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        run_batch_on_cluster(batch_root, adapter, dask_out, AnalyzeOptions(), address)
        by_study = {r["study"]: r for r in _summary(serial)}
        for row in _summary(dask_out):
            want = by_study[row["study"]]
            probs = {k: v for k, v in row.items() if k.startswith("p:")}
            assert probs == {k: v for k, v in want.items() if k.startswith("p:")}
            assert row["status"] == want["status"] == "ok"
        # a second run finds everything done and runs nothing
        again = run_batch_on_cluster(
            batch_root, adapter, dask_out, AnalyzeOptions(), "", client=client
        )
    assert all(r.reason == "done in an earlier run" for r in again.rows)
    assert again.workers == {}


def test_cli_cluster_option(batch_root, tmp_path, capsys) -> None:
    from app.cli import main

    out = tmp_path / "cli"
    argv = ["analyze", str(batch_root), "--task", "fake-ct", "--out", str(out)]
    assert main([*argv, "--cluster", "local:zero"]) == 2
    assert "expected local:N with N >= 1" in capsys.readouterr().err
    assert main([*argv, "--cluster", "local:2"]) == 0, capsys.readouterr().err
    assert f"{STUDIES} of {STUDIES} studies analysed" in capsys.readouterr().out
    assert len(_summary(out)) == STUDIES
