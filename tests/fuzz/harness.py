"""Fuzz campaign over the real DICOM files: ``python -m tests.fuzz.harness --count 10000``.

Each mutant (see ``mutants``) is loaded with ``app.study.load`` in a worker subprocess that
handles many mutants (a fresh interpreter per mutant is too slow on two cores) under a memory
limit, with a per-file time limit. Every mutant is classified:

- loaded: at least one series came back (its geometry is checked by ``predicate``);
- error: a clean ``StudyLoadError`` naming the file and the reason;
- uncaught: any other exception escaped ``load`` (or the worker exited without answering);
- hang: no answer within the time limit (the worker's process group is killed);
- signal: the worker died of a signal (SIGABRT, SIGSEGV...).

A worker that dies or hangs is attributed to the mutant it was loading and replaced. Prints
the counts (and with ``--json`` one JSON line); exits 1 when any target is missed: signals,
hangs, uncaught errors or silent impossible geometry.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLASSES = ("loaded", "error", "uncaught", "hang", "signal")
BAD = ("uncaught", "hang", "signal")


@dataclass
class _Worker:
    proc: subprocess.Popen
    buffer: bytes = b""
    index: int | None = None
    desc: str = ""
    deadline: float | None = None  # set once the mutant is written ("ready")


@dataclass
class Campaign:
    counts: Counter = field(default_factory=Counter)
    findings: list[dict] = field(default_factory=list)  # bad classes and geometry violations
    slowest: tuple[float, int] = (0.0, -1)
    violations: int = 0
    silent: int = 0
    wall_s: float = 0.0

    def summary(self) -> dict:
        return {
            **{c: self.counts[c] for c in CLASSES},
            "total": sum(self.counts.values()),
            "geometry_violations": self.violations,
            "silent_impossible_geometry": self.silent,
            "slowest_s": round(self.slowest[0], 2),
            "slowest_index": self.slowest[1],
            "wall_s": round(self.wall_s, 1),
        }

    def failed(self) -> bool:
        return any(self.counts[c] for c in BAD) or self.silent > 0


def _start(seed: int, workdir: Path, mem_mb: int) -> _Worker:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    cmd = [sys.executable, "-m", "tests.fuzz.worker", "--seed", str(seed),
           "--workdir", str(workdir), "--mem-mb", str(mem_mb)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    os.set_blocking(proc.stdout.fileno(), False)
    return _Worker(proc)


def _kill(worker: _Worker) -> None:
    try:
        os.killpg(worker.proc.pid, signal.SIGKILL)  # the worker and its decoder children
    except ProcessLookupError:
        pass
    worker.proc.wait()


def run_campaign(
    count: int,
    seed: int = 0,
    workers: int = 2,
    timeout_s: float = 10.0,
    mem_mb: int = 3072,
    first: int = 0,
    progress: bool = False,
) -> Campaign:
    camp = Campaign()
    todo = list(range(first, first + count))
    todo.reverse()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="osteoview-fuzz-") as tmp:
        dirs = [Path(tmp) / f"w{n}" for n in range(workers)]
        pool = [_start(seed, d, mem_mb) for d in dirs]
        sel = selectors.DefaultSelector()
        for n, w in enumerate(pool):
            sel.register(w.proc.stdout, selectors.EVENT_READ, n)

        def record(worker: _Worker, cls: str, detail: dict) -> None:
            camp.counts[cls] += 1
            s = float(detail.get("s", 0.0))
            if s > camp.slowest[0]:
                camp.slowest = (s, worker.index)
            camp.violations += 1 if detail.get("violations") else 0
            camp.silent += 1 if detail.get("silent") else 0
            if cls in BAD or detail.get("violations"):
                camp.findings.append({"index": worker.index, "class": cls, "mutant": worker.desc,
                                      **{k: v for k, v in detail.items() if k != "class"}})  # fmt: skip
            worker.index, worker.deadline, worker.desc = None, None, ""
            done = sum(camp.counts.values())
            if progress and done % 500 == 0:
                print(f"  {done}/{count} {dict(camp.counts)}", file=sys.stderr, flush=True)

        def replace(n: int, cls: str, detail: dict) -> None:
            old = pool[n]
            _kill(old)
            record(old, cls, detail)
            sel.unregister(old.proc.stdout)
            pool[n] = _start(seed, dirs[n], mem_mb)
            sel.register(pool[n].proc.stdout, selectors.EVENT_READ, n)

        def feed(n: int) -> None:
            w = pool[n]
            if w.index is None and todo:
                w.index = todo.pop()
                w.deadline = time.monotonic() + 120.0  # building the mutant; the clock starts later
                w.proc.stdin.write(json.dumps({"index": w.index}).encode() + b"\n")
                w.proc.stdin.flush()

        try:
            _drive(pool, sel, feed, replace, record, timeout_s)
        finally:  # also on Ctrl-C: no worker (in its own session) outlives the campaign
            for w in pool:
                if w.proc.poll() is None:
                    _kill(w)
    camp.wall_s = time.monotonic() - t0
    return camp


def _drive(pool, sel, feed, replace, record, timeout_s: float) -> None:
    """The event loop: answers in, deadlines checked, a dead or hung worker replaced."""
    for n in range(len(pool)):
        feed(n)
    while any(w.index is not None for w in pool):
        now = time.monotonic()
        wait = min((w.deadline for w in pool if w.deadline), default=now + 1) - now
        for key, _ in sel.select(timeout=max(0.0, wait)):
            n = key.data
            w = pool[n]
            chunk = os.read(w.proc.stdout.fileno(), 1 << 16)
            if not chunk:  # EOF: the worker died while on its mutant
                code = w.proc.wait()
                if code < 0:
                    replace(n, "signal", {"detail": signal.Signals(-code).name})
                else:
                    replace(n, "uncaught", {"detail": f"worker exited with status {code}"})
                feed(n)
                continue
            w.buffer += chunk
            while b"\n" in w.buffer:
                line, w.buffer = w.buffer.split(b"\n", 1)
                msg = json.loads(line)
                if msg["phase"] == "ready":
                    w.desc, w.deadline = msg["desc"], time.monotonic() + timeout_s
                else:
                    outcome = msg["outcome"]
                    record(w, outcome["class"], outcome)
                    feed(n)
        now = time.monotonic()
        for n, w in enumerate(pool):
            if w.index is not None and w.deadline is not None and now > w.deadline:
                replace(n, "hang", {"detail": f"no answer within {timeout_s:.0f} s"})
                feed(n)
    for w in pool:
        w.proc.stdin.close()
        w.proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", type=int, default=0, help="index of the first mutant")
    parser.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per file")
    parser.add_argument("--mem-mb", type=int, default=3072, help="address-space limit per worker")
    parser.add_argument("--json", action="store_true", help="also print one JSON summary line")
    parser.add_argument("--show", metavar="INDEX", type=int, help="write that mutant and say how")
    default_out = Path(tempfile.gettempdir()) / "osteoview-fuzz-mutant"
    parser.add_argument("--out", default=str(default_out), help="folder for --show")
    args = parser.parse_args(argv)
    if args.show is not None:
        from tests.fuzz.mutants import find_seeds, make_mutant

        target, desc = make_mutant(find_seeds(), args.seed, args.show, Path(args.out))
        print(f"{target}: {desc}")
        return 0
    # A terminated campaign still kills its workers (they run in sessions of their own).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    camp = run_campaign(args.count, args.seed, args.workers, args.timeout, args.mem_mb,
                        args.first, progress=True)  # fmt: skip
    s = camp.summary()
    print(f"fuzz: {s['total']} mutants (seed {args.seed}) in {s['wall_s']} s with "
          f"{args.workers} workers")  # fmt: skip
    for c in CLASSES:
        print(f"  {c:<9} {s[c]}")
    print(f"  impossible geometry loaded: {s['geometry_violations']} "
          f"(silent, without any warning: {s['silent_impossible_geometry']})")  # fmt: skip
    print(f"  slowest mutant: {s['slowest_s']} s (index {s['slowest_index']})")
    for f in camp.findings[:40]:
        print(f"  #{f['index']} {f['class']}: {f['mutant']} -> "
              f"{f.get('detail') or f.get('violations')}")  # fmt: skip
    if args.json:
        print(json.dumps({**s, "findings": camp.findings}))
    return 1 if camp.failed() else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
