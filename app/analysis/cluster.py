"""The resumable batch on a Dask distributed cluster: ``--cluster local:N`` or ``dask://HOST:PORT``.

Same outputs as ``app.analysis.batch.run_batch`` (``OUT/<study>/`` published from
``OUT/.staging/`` when complete, ``OUT/summary.csv``, skip what is done), with one Dask task per
study. Each study's plan and code are the batch's own (``batch_plan``, ``batch_study``); only the
scheduling differs:

- Workers keep one adapter per task for their lifetime (``_adapter_for``), so ONNX sessions are
  opened once per worker process, not once per study.
- A worker that dies mid-study is replaced by the scheduler and its study runs again elsewhere;
  its staging folder is never published, and a rerun first checks whether the study's folder
  is already complete (a worker that died right after publishing), so no study is done twice
  and the summary has one row per study.
- The progress bar advances as futures complete, in completion order.

For a multi-node cluster OUT (and a folder SOURCE) must be on storage every worker sees with the
same path; studies retrieved from a PACS land in each worker's own cache.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from app.analysis.batch_plan import STAGING, clear_stale_staging, plan_batch
from app.analysis.batch_study import run_study_in_batch, scrub
from app.analysis.discovery import StudyEntry
from app.analysis.one_study import AnalyzeOptions, default_loader
from app.analysis.summary import BatchResult, SummaryRow, previous_row, write_summary
from app.engine.adapter import Adapter
from app.engine.task import TaskSpec

# ---- on the workers -----------------------------------------------------------------------------
_ADAPTERS: dict[str, Adapter] = {}
_LOADS: dict[str, int] = {}  # task id -> adapters built in this process (1 when all is well)
_LOCK = threading.Lock()


class _NoBar:
    """A worker has no terminal: progress is the client's, from the futures."""

    def stage(self, name: str, stage: str, fraction: float) -> None:
        pass

    def finished(self, name: str, status: str, seconds: float, ran: bool) -> None:
        pass


def _adapter_for(spec: TaskSpec) -> Adapter:
    """This worker's adapter for the task, built on first use (its sessions open once)."""
    with _LOCK:
        if spec.id not in _ADAPTERS:
            from app.analysis import tasks

            if spec.id not in tasks.task_ids():  # a task registered at run time (tests, plugins)
                tasks.register(spec)
            _ADAPTERS[spec.id] = tasks.get_adapter(spec.id)
            _LOADS[spec.id] = _LOADS.get(spec.id, 0) + 1
        return _ADAPTERS[spec.id]


def analyze_on_worker(
    entry: StudyEntry,
    name: str,
    spec: TaskSpec,
    out: str,
    options: AnalyzeOptions,
    make_report: bool,
    force: bool,
) -> tuple[SummaryRow, dict]:
    """One study on a worker: (its summary row, {"pid", "adapter_loads", "reused"})."""
    final = Path(out) / name
    info = {"pid": os.getpid(), "reused": False}
    if not force:
        done = previous_row(final, spec.id)
        if done is not None:  # published by a worker that died before reporting it
            info["reused"] = True
            info["adapter_loads"] = _LOADS.get(spec.id, 0)
            return done, info
    adapter = _adapter_for(spec)
    row = run_study_in_batch(
        entry, name, adapter, Path(out), Path(out) / STAGING, options, make_report,
        default_loader, _NoBar(),
    )  # fmt: skip
    info["adapter_loads"] = _LOADS[spec.id]
    return row, info


# ---- on the client ------------------------------------------------------------------------------
def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        from app.errors import CliError

        raise CliError(
            "--cluster needs Dask distributed: pip install 'osteoview[cluster]'"
        ) from exc
    return distributed


@contextlib.contextmanager
def connect(cluster: str) -> Iterator[object]:
    """A ``distributed.Client`` for ``local:N`` (a LocalCluster of N one-thread worker
    processes on this machine, stopped after) or ``dask://HOST:PORT`` (an existing scheduler)."""
    from app.errors import CliError

    distributed = _import_distributed()
    if cluster.startswith("local:"):
        count = cluster.partition(":")[2]
        if not count.isdigit() or int(count) < 1:
            raise CliError(f"--cluster {cluster}: expected local:N with N >= 1 workers")
        local = distributed.LocalCluster(
            n_workers=int(count),
            threads_per_worker=1,  # one study per worker at a time; ONNX uses the cores
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        )
        try:
            with distributed.Client(local) as client:
                yield client
        finally:
            local.close()
        return
    if cluster.startswith("dask://"):
        address = "tcp://" + cluster[len("dask://") :]
        try:
            client = distributed.Client(address, timeout="20s")
        except OSError as exc:
            raise CliError(f"--cluster {cluster}: cannot reach the scheduler ({exc})") from exc
        try:
            yield client
        finally:
            client.close()
        return
    raise CliError(f"--cluster {cluster}: expected local:N or dask://HOST:PORT")


def run_batch_on_cluster(
    root: Path,
    adapter: Adapter,
    out: Path,
    options: AnalyzeOptions,
    cluster: str,
    make_report: bool = False,
    force: bool = False,
    stream: TextIO | None = None,
    client: object | None = None,
) -> BatchResult:
    """``run_batch`` with one Dask task per study (see the module doc). ``client``: an already
    connected ``distributed.Client`` (tests), else one from ``cluster``."""
    root, out = Path(root), Path(out)
    plan = plan_batch(root, adapter, out, options, force, stream)
    options, entries, names, rows = plan.options, plan.entries, plan.names, plan.rows
    summary_path = plan.summary_path
    workers: dict[int, dict] = {}
    context = contextlib.nullcontext(client) if client is not None else connect(cluster)
    try:
        with context as dask:
            _collect(dask, entries, names, plan.todo, rows, adapter, out, options, make_report,
                     force, plan.bar, summary_path, workers, root)  # fmt: skip
    finally:
        write_summary(summary_path, rows, options.anonymise, options.pseudonym_key)
        # what a killed worker left half-done (its pid is dead; every study has its row now)
        clear_stale_staging(plan.staging)
        with contextlib.suppress(OSError):
            plan.staging.rmdir()
    result = BatchResult(rows, summary_path)
    result.workers = workers  # type: ignore[attr-defined]  # pid -> info, for tests and bench
    return result


def _collect(
    dask, entries, names, todo, rows, adapter, out, options, make_report, force, bar,
    summary_path, workers, root,
) -> None:  # fmt: skip
    distributed = _import_distributed()
    futures = {}
    for n in todo:
        fut = dask.submit(
            analyze_on_worker, entries[n], names[n], adapter.spec, str(out), options,
            make_report, force, key=f"osteoview-study-{n}-{names[n]}-{os.getpid()}", pure=False,
        )  # fmt: skip
        futures[fut] = n
    last = 0.0
    try:
        for fut in distributed.as_completed(futures):
            n = futures[fut]
            try:
                row, info = fut.result()
                workers.setdefault(info["pid"], {"studies": 0, "adapter_loads": 0})
                workers[info["pid"]]["studies"] += 0 if info["reused"] else 1
                loads = max(workers[info["pid"]]["adapter_loads"], info["adapter_loads"])
                workers[info["pid"]]["adapter_loads"] = loads
            except Exception as exc:  # KilledWorker after repeated deaths, a lost scheduler
                row = SummaryRow(names[n], "failed", f"{entries[n].path}: {type(exc).__name__}: "
                                 f"{' '.join(str(exc).split())}")  # fmt: skip
            if options.anonymise:
                row.reason = scrub(row.reason, entries[n], names[n], root)
            rows[n] = row
            status = row.status if row.status == "ok" else f"FAILED: {row.reason}"
            bar.finished(entries[n].name, status, row.seconds or 0.0, ran=True)
            if time.perf_counter() - last > 2.0:
                write_summary(summary_path, rows, options.anonymise, options.pseudonym_key)
                last = time.perf_counter()
    except KeyboardInterrupt:
        for fut in futures:
            fut.cancel()
        raise
