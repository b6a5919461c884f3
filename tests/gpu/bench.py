"""CPU and CUDA side by side, in one process: each task's end-to-end time on its demo study, each
shipped network's throughput, and the cervical paper configuration (ResNet-50 encoder + BiLSTM
768 at the paper's 384 px, stage 1 over a 300-slice study) per study.

    python -m tests.gpu.bench [--repeat 5] [--batch 8] [--paper-slices 300] [--paper-size 384]
                              [--paper-vertebrae 7] [--no-paper] [--json OUT.json]

``tests/gpu/run.sh`` installs the ``[gpu]`` extra and runs this. The GPU column is measured only
where the engine's own test (``app.engine.device``) finds a working CUDA provider; elsewhere it
says why, and only the CPU is measured. Every figure goes through the engine's sessions and
``run_session`` (IO binding on CUDA), as a user's run does. The paper configuration needs torch
and MONAI (the ``[train]`` extra) to build and export the networks, with random weights: speed
does not depend on the weight values.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.engine import device as D

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "resources" / "demo"
PAPER_TARGET_S = 2.0  # issue 13: per 300-slice study on a GPU (the thesis: 6.5 s, stage 1 alone)
CPU = D.DeviceChoice((D.CPU,))
GPU = D.DeviceChoice((D.CUDA, D.CPU))


def gpu_status() -> str:
    """ "" when CUDA works here, else why not (the engine's own decision and reason)."""
    D.forget_choice()
    choice = D.choose_device()
    return "" if choice.device == "CUDA" else choice.reason


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall seconds of ``repeat`` calls after one warm-up (sessions, allocator, cuDNN)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _row(name: str, cpu: float, gpu: float | None, unit: str = "s") -> dict:
    if gpu is None:
        print(f"  {name:<52s} CPU {cpu:9.3f} {unit:<9s} GPU {'-':>9s}")
    else:
        faster = cpu / gpu if unit == "s" else gpu / cpu
        print(f"  {name:<52s} CPU {cpu:9.3f} {unit:<9s} GPU {gpu:9.3f} {unit:<9s} {faster:6.1f}x")
    return {"name": name, "unit": unit, "cpu": cpu, "gpu": gpu}


def demo_request(task_id: str):
    from app.analysis.request import resolve_inputs
    from app.analysis.tasks import get_adapter, get_spec
    from app.study.loader import load

    cases = sorted(p for p in (DEMO / task_id).iterdir() if p.is_dir())
    adapter = get_adapter(task_id)
    loaded = load(cases[0])
    return adapter, resolve_inputs(get_spec(task_id), loaded, cases[0], adapter), cases[0].name


def end_to_end(devices: list[D.DeviceChoice], repeat: int, tasks: list[str]) -> list[dict]:
    from app.analysis.runner import run_analysis

    print("End to end (demo study, run_analysis: checks, domain check, model, provenance)")
    rows = []
    for task_id in tasks:
        adapter, request, case = demo_request(task_id)
        secs = []
        for choice in devices:
            with D.forced(choice):
                secs.append(timed(lambda a=adapter, r=request: run_analysis(a, r), repeat))
        rows.append(_row(f"{task_id} ({case})", secs[0], secs[1] if len(secs) > 1 else None))
    return rows


def throughput(devices: list[D.DeviceChoice], repeat: int, batch: int, tasks: list[str]):
    from app.analysis.tasks import get_adapter
    from app.engine.runtime import run_session, session_for

    print(f"Network throughput (batch {batch}, images per second)")
    rows = []
    for task_id in tasks:
        adapter = get_adapter(task_id)
        manifest = adapter.manifest
        for name in sorted(n for n in manifest.data["files"] if n.endswith(".onnx")):
            rates = []
            for choice in devices:
                with D.forced(choice):
                    sess = session_for(manifest, name)
                rng = np.random.default_rng(0)
                feeds = {
                    i.name: rng.random([batch if not isinstance(d, int) else d for d in i.shape])
                    .astype(np.float32)
                    for i in sess.get_inputs()
                }  # fmt: skip
                rates.append(batch / timed(lambda s=sess, f=feeds: run_session(s, f), repeat))
            rows.append(
                _row(f"{task_id} {name}", rates[0], rates[1] if len(rates) > 1 else None, "img/s")
            )
    return rows


def export_paper(folder: Path, size: int) -> tuple[Path, Path]:
    """The cervical paper configuration exported to ONNX (random weights)."""
    import torch

    from models.cervical_fracture.export import export_stage1, export_stage2
    from models.cervical_fracture.networks import PAPER, build_stage1, build_stage2

    torch.manual_seed(0)
    s1, s2 = folder / "paper_stage1.onnx", folder / "paper_stage2.onnx"
    export_stage1(build_stage1(PAPER.stage1).eval(), s1, size=size)
    export_stage2(build_stage2(PAPER.stage2).eval(), s2, size=size)
    return s1, s2


def paper_per_study(
    devices: list[D.DeviceChoice], slices: int, size: int, vertebrae: int, repeat: int
) -> list[dict]:
    import onnxruntime as ort

    from app.engine.runtime import intra_op_threads, run_session
    from models.cervical_fracture.pipeline import SEQ_LEN

    print(
        f"Cervical paper configuration per study: stage 1 (BasicUNet 32..256) on {slices} slices "
        f"3x{size}x{size} in batches of 16, stage 2 (ResNet-50 + BiLSTM 768) on {vertebrae} "
        f"vertebrae x {SEQ_LEN} x 3x{size}x{size}"
    )
    rng = np.random.default_rng(0)
    x1 = rng.random((slices, 3, size, size), np.float32)
    x2 = rng.random((vertebrae, SEQ_LEN, 3, size, size), np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        p1, p2 = export_paper(Path(tmp), size)
        print(f"  (exported in {time.perf_counter() - t0:.0f} s)")
        per_device: list[dict[str, float]] = []
        for choice in devices:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = intra_op_threads()
            s1 = ort.InferenceSession(str(p1), opts, providers=list(choice.providers))
            s2 = ort.InferenceSession(str(p2), opts, providers=list(choice.providers))

            def stage1(s1=s1):
                for b in range(0, slices, 16):
                    run_session(s1, {"slices": x1[b : b + 16]})

            def stage2(s2=s2):
                for v in range(vertebrae):  # one vertebra per run, as the adapter does
                    run_session(s2, {"sequence": x2[v : v + 1]})

            # The CPU takes minutes per study at the paper's size: measured once after warm-up.
            n = repeat if choice.device == "CUDA" else 1
            t1, t2 = timed(stage1, n), timed(stage2, n)
            per_device.append({"stage 1": t1, "stage 2": t2, "study": t1 + t2})
    rows = []
    for part in ("stage 1", "stage 2", "study"):
        gpu = per_device[1][part] if len(per_device) > 1 else None
        rows.append(_row(f"paper config {part}", per_device[0][part], gpu))
    if len(per_device) > 1:
        study = per_device[1]["study"]
        verdict = "met" if study <= PAPER_TARGET_S else "missed"
        print(f"  GPU per study {study:.2f} s (target {PAPER_TARGET_S} s) -> {verdict}")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.gpu.bench", description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tasks", nargs="*", default=None, help="task ids (default: all)")
    ap.add_argument("--paper-slices", type=int, default=300)
    ap.add_argument("--paper-size", type=int, default=384)
    ap.add_argument("--paper-vertebrae", type=int, default=7)
    ap.add_argument("--no-paper", action="store_true", help="skip the paper configuration")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)

    import onnxruntime as ort

    from app.analysis.tasks import task_ids

    reason = gpu_status()
    devices = [CPU] if reason else [CPU, GPU]
    print(f"onnxruntime {ort.__version__}, providers {ort.get_available_providers()}")
    print("GPU: measured" if not reason else f"GPU: skipped ({reason}); CPU only")
    tasks = args.tasks or task_ids()
    report = {
        "onnxruntime": ort.__version__,
        "gpu": not reason,
        "gpu_skipped_because": reason,
        "end_to_end_s": end_to_end(devices, args.repeat, tasks),
        "throughput_img_per_s": throughput(devices, args.repeat, args.batch, tasks),
    }
    if not args.no_paper:
        report["paper_config_s"] = paper_per_study(
            devices, args.paper_slices, args.paper_size, args.paper_vertebrae, args.repeat
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
