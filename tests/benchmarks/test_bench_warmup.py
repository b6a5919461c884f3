"""SHAP warm-up at viewer start-up (``make bench``): the event-loop stall while shap is imported
and numba compiles, in a thread of the viewer's process against in the explanation child the
viewer starts (``app.analysis.explain_child``), each measured in a fresh process with a 10 ms
QTimer on a Qt event loop, plus the same loop with nothing warming up (this shared CPU's floor).

Target (issue 12): stall < 100 ms. A thread cannot meet it: imports of extension modules and
LLVM building its pass pipeline hold the GIL for hundreds of milliseconds; the child can.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TARGET_S = 0.100
REPO = Path(__file__).resolve().parents[2]

METER = """
import sys, threading, time
from PySide6 import QtCore

app = QtCore.QCoreApplication([])
mode = sys.argv[1]
gaps, last = [], [0.0]


def tick():
    now = time.perf_counter()
    gaps.append(now - last[0])
    last[0] = now


if mode == "thread":
    from app.engine.shap_maps import warm_up

    worker = threading.Thread(target=warm_up, daemon=True)
    worker.start()
    done = lambda: not worker.is_alive()
elif mode == "child":
    from app.analysis.explain_child import start_child

    child = start_child()
    done = lambda: child.wait_ready(0)
else:
    end = time.perf_counter() + float(mode)
    done = lambda: time.perf_counter() > end
t0 = time.perf_counter()
timer, poll = QtCore.QTimer(), QtCore.QTimer()
timer.setInterval(10)
timer.timeout.connect(tick)
poll.setInterval(50)
poll.timeout.connect(lambda: done() and app.quit())
last[0] = time.perf_counter()
timer.start()
poll.start()
app.exec()
print(time.perf_counter() - t0, max(gaps), len(gaps), sum(g > 0.1 for g in gaps))
if mode == "child":
    child.stop()
"""


def _measure(mode: str) -> tuple[float, float, int, int]:
    done = subprocess.run(
        [sys.executable, "-c", METER, mode],
        cwd=REPO, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    seconds, longest, ticks, over = done.stdout.split()[-4:]
    return float(seconds), float(longest), int(ticks), int(over)


def test_warm_up_stalls_the_event_loop_in_a_thread_not_in_the_child():
    results = {}
    for mode in ("thread", "child"):
        results[mode] = _measure(mode)
    floor = _measure(f"{results['child'][0]:.1f}")  # as long as the child took, nothing running
    for mode, (seconds, longest, ticks, over) in {**results, "idle": floor}.items():
        print(f"\nwarm-up {mode}: {seconds:.1f} s, longest event-loop stall {longest * 1000:.0f} "
              f"ms, {over} of {ticks} ticks over 100 ms")  # fmt: skip
    assert results["child"][1] < TARGET_S
