"""Spine benchmark (``make bench``): one AP + lateral study end to end (DICOM load of both views,
pairing, both U-Nets, label maps and levels on both radiographs, the dual-view classifier) with
the shipped demo weights on this CPU, against PyTorch eager running the same networks.

Target (issue 9): at most 1 s per study. The baseline swaps ONNX Runtime for PyTorch eager on
the same inputs, in the same run: end to end with PyTorch = end to end - ORT model time + eager
model time. Best of N after a warm-up, so a burst of load from other processes does not count.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pytest

from app.analysis.request import resolve_inputs
from app.analysis.runner import run_analysis
from app.study import load

N_RUNS = 5
TARGET_S = 1.0
STUDY = Path(__file__).resolve().parents[2] / "resources" / "demo" / "spine-xray" / "01_normal"


def _best(fn, n: int) -> tuple[float, float]:
    fn()  # warm-up: sessions, caches
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def test_one_study_end_to_end_under_one_second_and_against_torch_eager(monkeypatch):
    # Decode in this process (the loader's documented benchmark switch): the decoder child's
    # start-up is not what is measured here.
    monkeypatch.setenv("OSTEOVIEW_DECODE_IN_PROCESS", "1")
    from app.engine.runtime import run_session, session_for
    from models.spine_xray.adapter import FILES, SpineXrayAdapter, bone_bright
    from models.spine_xray.preprocess import network_input

    adapter = SpineXrayAdapter()

    def end_to_end():
        loaded = load(STUDY)
        return run_analysis(adapter, resolve_inputs(adapter.spec, loaded, STUDY, adapter=adapter))

    best, median = _best(end_to_end, N_RUNS)
    r = end_to_end()
    stages = ", ".join(f"{k}: {v:.3f}" for k, v in r.provenance.timings_s.items())

    cfg = adapter.manifest.data["config"]
    seg, cls = int(cfg["unet"]["input_size"]), int(cfg["classifier"]["input_size"])
    request = resolve_inputs(adapter.spec, load(STUDY), STUDY, adapter=adapter)
    x = {v: network_input(bone_bright(request[v]), seg)[0][None, None] for v in ("ap", "lateral")}
    xc = {v: network_input(bone_bright(request[v]), cls)[0][None, None] for v in ("ap", "lateral")}
    sessions = {k: session_for(adapter.manifest, f) for k, f in FILES.items()}

    def ort_models():
        for v in ("ap", "lateral"):
            run_session(sessions[v], {"image": x[v]})
        run_session(sessions["classifier"], xc)

    ort_best, _ = _best(ort_models, N_RUNS)

    torch = pytest.importorskip("torch")
    from models.spine_xray.networks import SpineConfig, build_classifier, build_unet

    spec = SpineConfig.from_json(cfg)
    nets = {v: build_unet(spec, v).eval() for v in ("ap", "lateral")}
    clf = build_classifier(spec).eval()
    tx = {v: torch.from_numpy(a) for v, a in x.items()}
    txc = {v: torch.from_numpy(a) for v, a in xc.items()}

    def eager_models():
        with torch.no_grad():
            for v in ("ap", "lateral"):
                torch.sigmoid(nets[v](tx[v]))
            torch.softmax(clf(txc["ap"], txc["lateral"]), 1)

    # One thread: with its default pool PyTorch's OpenMP workers spin against each other and
    # against other processes on a loaded 2-core machine, which would flatter ONNX Runtime.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        eager_best, _ = _best(eager_models, N_RUNS)
    finally:
        torch.set_num_threads(threads)
    eager_e2e = best - ort_best + eager_best
    print(
        f"\nspine-xray demo, AP + LAT 640x512 DICOM, load + pairing + 2 U-Nets + label maps + "
        f"levels + classifier: best {best:.3f} s, median {median:.3f} s over {N_RUNS} runs; "
        f"stages (last run) {{{stages}}}\n"
        f"models only: ONNX Runtime {ort_best:.3f} s vs PyTorch eager (1 thread) {eager_best:.3f} s "
        f"(ratio {ort_best / eager_best:.2f}); end to end with PyTorch eager {eager_e2e:.3f} s "
        f"(ratio ORT / eager {best / eager_e2e:.2f})"
    )
    assert np.isfinite(best) and best < TARGET_S
