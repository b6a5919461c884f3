"""Fuzz worker: builds mutants and loads them, one per request, for ``harness``.

Protocol on stdin/stdout, one JSON object per line. Request ``{"index": N}``; answers
``{"index": N, "phase": "ready", "desc": ...}`` once the mutant is written (the harness starts
its per-file clock there), then ``{"index": N, "phase": "done", "outcome": ...}``. Runs under an
address-space limit (RLIMIT_AS) so a mutant cannot exhaust the machine; file descriptors 1 and
2 are pointed at /dev/null so codec chatter cannot corrupt the protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import traceback
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.fuzz.mutants import find_seeds, make_mutant  # noqa: E402
from tests.fuzz.predicate import geometry_violations  # noqa: E402


def _load(target: Path) -> dict:
    from app.study import LoadCancelled, StudyLoadError, load

    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = load(target)
    except StudyLoadError as exc:
        return {"class": "error", "detail": exc.reason[:300], "s": time.perf_counter() - t0}
    except (LoadCancelled, Exception) as exc:  # noqa: BLE001 - exactly what is being counted
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{Path(tb.filename).name}:{tb.lineno}"
        detail = f"{type(exc).__name__}: {str(exc)[:200]} at {where}"
        return {"class": "uncaught", "detail": detail, "s": time.perf_counter() - t0}
    elapsed = time.perf_counter() - t0
    violations, silent = [], []
    for series in result.all_series():
        found = geometry_violations(series)
        if found:
            violations.append(f"{series.series_uid[-12:]}: {'; '.join(found)}")
            if not series.warnings:
                silent.append(violations[-1])
    return {
        "class": "loaded",
        "series": len(result.all_series()),
        "errors": len(result.errors),
        "violations": violations,
        "silent": silent,
        "s": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--mem-mb", type=int, default=3072)
    args = parser.parse_args()
    limit = args.mem_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    seeds = find_seeds()
    work = Path(args.workdir)
    for line in sys.stdin:
        index = json.loads(line)["index"]
        try:
            target, desc = make_mutant(seeds, args.seed, index, work)
        except Exception as exc:  # noqa: BLE001 - a harness bug is reported, never hidden
            outcome = {"class": "uncaught", "detail": f"building the mutant failed: {exc!r}"}
            proto.write(json.dumps({"index": index, "phase": "done", "outcome": outcome}) + "\n")
            continue
        proto.write(json.dumps({"index": index, "phase": "ready", "desc": desc}) + "\n")
        outcome = _load(target)
        proto.write(json.dumps({"index": index, "phase": "done", "outcome": outcome}) + "\n")


if __name__ == "__main__":
    main()
