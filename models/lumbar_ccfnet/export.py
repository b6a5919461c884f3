"""Export CCF-Net to ONNX (opset 17, fp32) with its sha256 manifest.

    python -m models.lumbar_ccfnet.export --checkpoint DIR/best.pt --config-json DIR/config.json \
        --metrics DIR/metrics.json --out models/lumbar_ccfnet/weights

The graph takes ``image`` (B, 1, S, S) and returns ``heatmap``, ``offset_x``, ``offset_y`` and
``category`` (probabilities), each (B, 11, S/16, S/16). The export is checked against PyTorch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from app.engine.runtime import sha256_of
from models.lumbar_ccfnet.anatomy import DISCS, OBJECTS
from models.lumbar_ccfnet.networks import (
    CONFIGS,
    OUTPUTS,
    STRIDE,
    CCFConfig,
    ExportWrapper,
    build,
    count_parameters,
)

MODEL_FILE = "lumbar_ccfnet.onnx"
MAX_MB = 15.0


def export_onnx(net: torch.nn.Module, cfg: CCFConfig, path: Path, opset: int = 17) -> None:
    wrapper = ExportWrapper(net.eval()).eval()
    x = torch.zeros(1, cfg.in_channels, cfg.input_size, cfg.input_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        wrapper,
        (x,),
        str(path),
        input_names=["image"],
        output_names=list(OUTPUTS),
        dynamic_axes={"image": {0: "batch"}, **{k: {0: "batch"} for k in OUTPUTS}},
        opset_version=opset,
        dynamo=False,
    )


def check_against_torch(net: torch.nn.Module, path: Path, x: np.ndarray) -> dict[str, float]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x.astype(np.float32)})
    with torch.no_grad():
        ref = ExportWrapper(net.eval())(torch.from_numpy(x.astype(np.float32)))
    return {
        n: float(np.max(np.abs(g - r.numpy()))) for n, g, r in zip(OUTPUTS, got, ref, strict=True)
    }


def write_manifest(out: Path, cfg: CCFConfig, extra: dict) -> Path:
    """The one manifest schema (``app/engine/manifest_schema.py``); ``extra`` may hold metrics,
    training_command, seed and task-specific keys."""
    weights = out / MODEL_FILE
    doc = {
        "model_name": f"lumbar-ccfnet-{cfg.name}",
        "version": "0.1.0",
        "task_id": "lumbar-mri",
        "paper": "shared/papers/lumbar_mri_ccfnet.txt",
        "trained_on": "synthetic sagittal T2 lumbar phantoms (models/lumbar_ccfnet/phantom.py)",
        "disclaimer": "trained on synthetic phantoms, not for clinical use",
        "config": cfg.to_json(),
        "metrics": {},
        "stride": STRIDE,
        "objects": list(OBJECTS),
        "discs": list(DISCS),
        "inputs": {"image": ["batch", cfg.in_channels, cfg.input_size, cfg.input_size]},
        "outputs": list(OUTPUTS),
        "files": {MODEL_FILE: {"sha256": sha256_of(weights), "bytes": weights.stat().st_size}},
        **extra,
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def export_trained(
    net: torch.nn.Module, cfg: CCFConfig, out: Path, metrics: dict | None, check_x: np.ndarray
) -> Path:
    path = out / MODEL_FILE
    export_onnx(net, cfg, path)
    size_mb = path.stat().st_size / 1e6
    if size_mb >= MAX_MB:
        raise SystemExit(f"{path}: {size_mb:.1f} MB, over the {MAX_MB} MB budget")
    diffs = check_against_torch(net, path, check_x)
    print("max |onnx - torch|:", diffs)
    extra: dict = {"parameters": count_parameters(net), "export_check_max_abs_diff": diffs}
    if metrics:
        extra["metrics"] = {"validation_phantoms": metrics.get("validation", {})}
        extra["training_command"] = metrics.get("command", "")
        extra["training_seconds"] = metrics.get("seconds")
        if "seed" in metrics:
            extra["seed"] = int(metrics["seed"])
    write_manifest(out, cfg, extra)
    print(f"wrote {path} ({size_mb:.2f} MB) and {out / 'manifest.json'}")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, help="state dict from train.py (omit: random init)")
    ap.add_argument("--config", default="demo", choices=sorted(CONFIGS))
    ap.add_argument("--config-json", type=Path, help="config.json written by train.py")
    ap.add_argument("--metrics", type=Path, help="metrics.json from train.py to record")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    cfg = CONFIGS[args.config]
    if args.config_json:
        cfg = CCFConfig.from_json(json.loads(args.config_json.read_text()))
    net = build(cfg).eval()
    if args.checkpoint:
        net.load_state_dict(torch.load(args.checkpoint, weights_only=True))
    metrics = json.loads(args.metrics.read_text()) if args.metrics else None
    x = np.random.default_rng(0).normal(size=(2, cfg.in_channels, cfg.input_size, cfg.input_size))
    export_trained(net, cfg, args.out, metrics, x.astype(np.float32))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
