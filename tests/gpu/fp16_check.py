"""Would fp16 weights keep each task's held-out metrics within 0.5% of fp32?

    python -m tests.gpu.fp16_check [--tasks T ...] [--n N] [--json OUT.json]

For each task: the shipped weights are copied twice, once as they are and once converted to fp16
(onnxconverter-common, inputs and outputs kept float32, so ``run_session`` feeds them unchanged),
each copy's manifest given its files' digests; then the task's own ``evaluate.py`` (the product
path, the same held-out seeds) runs on both and every metric is compared. A task passes when each
metric is within 0.5% (relative) of its fp32 value. Timings and per-study lists are not metrics.

Needs ``onnx`` and ``onnxconverter-common`` (``tests/gpu/run.sh`` installs them). Where it runs
decides what it measures: on the CPU, ONNX Runtime computes fp16 graphs with its CPU kernels,
which may accumulate differently from a GPU's; the figures that decide the engine's use of fp16
are the ones measured on the GPU it would run on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 0.005  # relative
# Ops left in float32 (between casts): the converter's own list, and explicit Casts to float32 in
# a graph (calcaneus), which it would mistype. Not LSTM: onnxconverter-common 1.16 loops forever
# on a blocked LSTM, and ONNX Runtime's CPU build dies on cervical stage 2's fp16 BiLSTM, so that
# task's fp16 figure needs the GPU.
KEEP_FP32_EXTRA = ("Cast",)
NOT_METRICS = ("second", "time", "per_study", "timing", "seed")


def to_fp16(folder: Path) -> list[str]:
    """Convert every ONNX file in ``folder`` in place; the manifest gets their new digests."""
    import onnx
    from onnxconverter_common import float16

    keep_fp32 = [*float16.DEFAULT_OP_BLOCK_LIST, *KEEP_FP32_EXTRA]
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    converted = []
    for name, entry in manifest["files"].items():
        if not name.endswith(".onnx"):
            continue
        model = onnx.load(folder / name)
        # Stale intermediate types left by the exporter would contradict the converted nodes;
        # ONNX Runtime infers them again.
        model.graph.ClearField("value_info")
        _outputs_only_at_the_end(model)
        model = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=keep_fp32)
        data = model.SerializeToString()
        (folder / name).write_bytes(data)
        if isinstance(entry, dict):
            entry["sha256"] = hashlib.sha256(data).hexdigest()
        converted.append(name)
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return converted


def _outputs_only_at_the_end(model) -> None:
    """A graph output that other nodes also read (femur's ``theta``) keeps its float32 cast only
    at the end: the converter would otherwise feed the float32 copy to fp16 nodes. Such an
    output is renamed inside the graph and copied out by an Identity."""
    from onnx import helper

    graph = model.graph
    read = {name for node in graph.node for name in node.input}
    for out in graph.output:
        if out.name not in read:
            continue
        inner = f"{out.name}__inner"
        for node in graph.node:
            node.output[:] = [inner if o == out.name else o for o in node.output]
            node.input[:] = [inner if i == out.name else i for i in node.input]
        graph.node.append(helper.make_node("Identity", [inner], [out.name], name=f"{inner}_out"))


def convert_in_child(folder: Path, timeout: float) -> list[str]:
    """``to_fp16`` in a child process: onnxconverter-common 1.16 never returns on some graphs
    (lumbar, calcaneus here), which must become that task's result, not a stalled run."""
    code = "import json,sys; from tests.gpu.fp16_check import to_fp16; " \
           "print(json.dumps(to_fp16(__import__('pathlib').Path(sys.argv[1]))))"  # fmt: skip
    try:
        r = subprocess.run([sys.executable, "-W", "ignore", "-c", code, str(folder)], cwd=REPO,
                           capture_output=True, text=True, timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"fp16 conversion did not finish in {timeout:.0f} s") from exc
    if r.returncode != 0:
        raise RuntimeError(f"fp16 conversion failed (exit {r.returncode})\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def flat_metrics(data, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            if any(word in key.lower() for word in NOT_METRICS):
                continue
            out.update(flat_metrics(value, f"{prefix}{key}."))
    elif isinstance(data, bool):
        pass
    elif isinstance(data, int | float):
        out[prefix.rstrip(".")] = float(data)
    return out


def evaluate(package: str, weights: Path, n: int, out: Path, timeout: float) -> dict[str, float]:
    cmd = [sys.executable, "-m", f"models.{package}.evaluate", "--weights", str(weights),
           "--n", str(n), "--out", str(out)]  # fmt: skip
    try:
        r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{weights.name} evaluation took over {timeout:.0f} s") from exc
    if r.returncode != 0:
        # a signal (negative code) leaves no traceback: ONNX Runtime died in native code
        raise RuntimeError(f"{weights.name} evaluation failed (exit {r.returncode})\n"
                           f"{r.stderr[-2000:]}")  # fmt: skip
    return flat_metrics(json.loads(out.read_text()))


def compare(fp32: dict[str, float], fp16: dict[str, float]) -> tuple[bool, list[dict]]:
    rows, ok = [], True
    for key in sorted(fp32):
        a, b = fp32[key], fp16.get(key)
        if b is None:
            continue
        rel = abs(b - a) / abs(a) if a else abs(b - a)
        within = rel <= TOLERANCE
        ok &= within
        rows.append({"metric": key, "fp32": a, "fp16": b, "relative": rel, "within": within})
    return ok, rows


def check(package: str, n: int, timeout: float) -> dict:
    shipped = REPO / "models" / package / "weights"
    with tempfile.TemporaryDirectory() as tmp:
        d32, d16 = Path(tmp) / "fp32", Path(tmp) / "fp16"
        shutil.copytree(shipped, d32)
        shutil.copytree(shipped, d16)
        converted = convert_in_child(d16, timeout)
        m32 = evaluate(package, d32, n, Path(tmp) / "fp32.json", timeout)
        m16 = evaluate(package, d16, n, Path(tmp) / "fp16.json", timeout)
    ok, rows = compare(m32, m16)
    worst = max(rows, key=lambda r: r["relative"]) if rows else None
    return {"package": package, "n": n, "files": converted, "fp16_ok": ok, "worst": worst,
            "metrics": rows}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.gpu.fp16_check", description=__doc__)
    ap.add_argument("--tasks", nargs="*", default=None, help="model packages (default: all)")
    ap.add_argument("--n", type=int, default=20, help="held-out studies per task")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--timeout", type=float, default=3600, help="seconds per evaluation (fp16 on a CPU is slow)"
    )
    args = ap.parse_args(argv)
    packages = args.tasks or sorted(
        p.parent.parent.name for p in REPO.glob("models/*/weights/manifest.json")
    )
    results = []
    for package in packages:
        try:
            result = check(package, args.n, args.timeout)
        except RuntimeError as exc:  # evaluate.py failed (an fp16 graph ONNX Runtime refuses)
            reason = str(exc).strip().splitlines()[-1]
            print(f"{package:<20s} fp16 not evaluated: {reason}", flush=True)
            results.append({"package": package, "n": args.n, "fp16_ok": False, "error": reason})
            continue
        results.append(result)
        worst = result["worst"]
        detail = f"worst {worst['metric']} {worst['fp32']:.4f} -> {worst['fp16']:.4f} " \
                 f"({100 * worst['relative']:.2f}%)" if worst else "no metric"  # fmt: skip
        verdict = "fp16 within 0.5%" if result["fp16_ok"] else "fp16 NOT within 0.5%"
        changed = sum(r["fp16"] != r["fp32"] for r in result["metrics"])
        print(f"{package:<20s} n={args.n} {verdict}; {len(result['metrics'])} metrics, "
              f"{changed} changed; {detail}", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
