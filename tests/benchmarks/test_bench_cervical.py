"""Cervical pipeline speed on a 300-slice 512 x 512 neck CT phantom (``make bench``).

Prints per-stage and total wall time of the adapter (ONNX Runtime), ONNX Runtime against the
same network architectures in torch eager, and achieved GFLOP/s against this CPU's measured fp32
peak (about 200 GFLOP/s on two cores; ``PEAK_GFLOPS`` overrides). The torch networks have the
shipped architecture with freshly initialised weights: arithmetic, and so speed, does not depend
on the weight values.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from app.analysis.runner import run_on_series
from app.study.model import Series
from models.cervical_fracture import pipeline as P
from models.cervical_fracture.adapter import WEIGHTS_DIR, CervicalFractureAdapter
from models.cervical_fracture.phantom import generate

PEAK_GFLOPS = float(os.environ.get("PEAK_GFLOPS", "200"))
TARGET_TOTAL_S = 15.0


def _best_of(fn, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


@pytest.fixture(scope="module")
def big_ct():
    t0 = time.perf_counter()
    s = generate(2024, fractures=["C2"], shape=512, spacing_mm=0.35, slice_mm=0.5, n_slices=300)
    print(f"\n[bench] phantom 300x512x512 generated in {time.perf_counter() - t0:.1f} s")
    return s


@pytest.mark.slow
def test_bench_cervical_pipeline(big_ct):
    import torch

    from app.engine.runtime import Manifest, run_session
    from models.cervical_fracture.export import config_from_json
    from models.cervical_fracture.flops import count_flops
    from models.cervical_fracture.networks import build_stage1, build_stage2

    assert big_ct.ct.shape == (300, 512, 512)
    series = Series("bench", "CT", "bench phantom", big_ct.ct.with_array(big_ct.ct.array))
    adapter = CervicalFractureAdapter()
    run_on_series(adapter, series)  # warm-up: session creation, sha256 check, allocator
    t0 = time.perf_counter()
    result = run_on_series(adapter, series)
    total = time.perf_counter() - t0
    timings = result.provenance.timings_s
    threads_env = os.environ.get("OSTEOVIEW_THREADS", "engine default")
    print(f"[bench] device: {result.provenance.device}; ORT threads: {threads_env}")
    for name, sec in timings.items():
        print(f"[bench]   {name:<22s} {sec:7.3f} s")
    print(f"[bench] whole pipeline: {total:.2f} s (target < {TARGET_TOTAL_S:.0f} s) "
          f"-> {'met' if total < TARGET_TOTAL_S else 'missed'}")  # fmt: skip
    assert len(result.findings) == 8

    # ---- ONNX Runtime vs torch eager, same inputs, architectures and thread count --------------
    import onnxruntime as ort

    manifest = Manifest.load(WEIGHTS_DIR)
    grid = P.make_working_grid(series.image)
    x1 = P.stage1_inputs(P.to_working(series.image, grid))
    x2 = np.random.default_rng(0).random((7, P.SEQ_LEN, 3, P.CROP_SIZE, P.CROP_SIZE), np.float32)
    cfg = config_from_json(manifest.data["config"])
    net1, net2 = build_stage1(cfg.stage1).eval(), build_stage2(cfg.stage2).eval()
    flops1 = count_flops(net1, torch.from_numpy(x1[:1])) * len(x1)
    flops2 = count_flops(net2, torch.from_numpy(x2[:1])) * 7
    for threads in sorted({1, os.cpu_count() or 2}):
        torch.set_num_threads(threads)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        s1 = ort.InferenceSession(
            str(manifest.verified_path("stage1.onnx")), opts, providers=["CPUExecutionProvider"]
        )
        s2 = ort.InferenceSession(
            str(manifest.verified_path("stage2.onnx")), opts, providers=["CPUExecutionProvider"]
        )

        def ort1(s1=s1):
            for b in range(0, len(x1), 16):
                run_session(s1, {"slices": x1[b : b + 16]})

        def ort2(s2=s2):
            for v in range(7):
                run_session(s2, {"sequence": x2[v : v + 1]})

        def torch1():
            with torch.no_grad():
                for b in range(0, len(x1), 16):
                    torch.softmax(net1(torch.from_numpy(x1[b : b + 16])), dim=1)

        def torch2():
            with torch.no_grad():
                for v in range(7):
                    torch.sigmoid(net2(torch.from_numpy(x2[v : v + 1])))

        rows = []
        for name, f_ort, f_torch, flops in (
            (f"stage 1 ({len(x1)} slices 3x96x96)", ort1, torch1, flops1),
            (f"stage 2 (7 x 8 x 3x{P.CROP_SIZE}x{P.CROP_SIZE})", ort2, torch2, flops2),
        ):
            t_ort, t_torch = _best_of(f_ort, 5), _best_of(f_torch, 5)
            rows.append((t_ort, t_torch, flops))
            print(
                f"[bench] {threads} thread(s) {name}: {flops / 1e9:.2f} GFLOP; ORT {t_ort:.3f} s "
                f"({flops / t_ort / 1e9:.1f} GFLOP/s = {100 * flops / t_ort / 1e9 / PEAK_GFLOPS:.1f}%"
                f" of {PEAK_GFLOPS:.0f}); torch eager {t_torch:.3f} s "
                f"({flops / t_torch / 1e9:.1f} GFLOP/s); ORT/torch speed-up {t_torch / t_ort:.2f}x"
            )
        t_ort = sum(r[0] for r in rows)
        t_torch = sum(r[1] for r in rows)
        flops = sum(r[2] for r in rows)
        print(
            f"[bench] {threads} thread(s) networks: ORT {t_ort:.3f} s vs torch {t_torch:.3f} s "
            f"({t_torch / t_ort:.2f}x); ORT {flops / t_ort / 1e9:.1f} GFLOP/s "
            f"({100 * flops / t_ort / 1e9 / PEAK_GFLOPS:.1f}% of peak)"
        )
    assert total < 120  # a loose ceiling on a shared machine; the target is printed above
