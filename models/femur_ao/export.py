"""Export a trained femur AO model to ONNX with its sha256 manifest.

``python -m models.femur_ao.export --checkpoint DIR/best.pt --config demo --out models/femur_ao/weights
[--metrics DIR/metrics.json]``

The graph takes ``image`` (B, 1, N, N) and returns the three scenarios' probabilities, the class
activation maps (B, 11, S, S) and the STN warp (B, 2, 3). The export is checked against PyTorch
on random and phantom inputs; fp16 is used only when requested and its probabilities stay within
``--fp16-tolerance`` of fp32 (on CPU fp32 is faster, and the demo file is small either way).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from app.engine.runtime import sha256_of
from models.femur_ao.labels import CAM_LABELS, GROUPS
from models.femur_ao.networks import (
    CONFIGS,
    EXPORT_OUTPUTS,
    ExportWrapper,
    FemurNetConfig,
    build,
    count_parameters,
)

MODEL_FILE = "femur_ao.onnx"


def export_onnx(net: torch.nn.Module, cfg: FemurNetConfig, path: Path, opset: int = 17) -> None:
    net.eval()
    wrapper = ExportWrapper(net).eval()
    x = torch.zeros(2, 1, cfg.input_size, cfg.input_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        wrapper,
        (x,),
        str(path),
        input_names=["image"],
        output_names=list(EXPORT_OUTPUTS),
        dynamic_axes={"image": {0: "batch"}, **{k: {0: "batch"} for k in EXPORT_OUTPUTS}},
        opset_version=opset,
        dynamo=False,
    )


def check_against_torch(
    net: torch.nn.Module, cfg: FemurNetConfig, path: Path, x: np.ndarray
) -> dict:
    """Largest absolute differences between ONNX Runtime and PyTorch on ``x``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want_type = sess.get_inputs()[0].type
    feed = x.astype(np.float16 if want_type == "tensor(float16)" else np.float32)
    got = sess.run(None, {"image": feed})
    with torch.no_grad():
        ref = ExportWrapper(net.eval())(torch.from_numpy(x.astype(np.float32)))
    return {
        name: float(np.max(np.abs(g.astype(np.float32) - r.numpy())))
        for name, g, r in zip(EXPORT_OUTPUTS, got, ref, strict=True)
    }


def write_manifest(out: Path, cfg: FemurNetConfig, extra: dict) -> Path:
    files = {MODEL_FILE: {"sha256": sha256_of(out / MODEL_FILE)}}
    doc = {
        "model_name": f"femur-ao-{cfg.name}",
        "version": extra.pop("version", "0.1.0"),
        "trained_on": extra.pop(
            "trained_on", "synthetic AP pelvis phantoms (models/femur_ao/phantom.py)"
        ),
        "disclaimer": "trained on synthetic phantoms, not for clinical use",
        "config": cfg.to_json(),
        "inputs": {"image": ["batch", 1, cfg.input_size, cfg.input_size]},
        "outputs": list(EXPORT_OUTPUTS),
        "groups": {k: list(v) for k, v in GROUPS.items()},
        "cam_labels": list(CAM_LABELS),
        "files": files,
        "metrics": {},  # the schema requires it; export_trained fills it with held-out metrics
        **extra,
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def export_trained(
    net: torch.nn.Module,
    cfg: FemurNetConfig,
    out: Path,
    metrics: dict | None,
    check_x: np.ndarray,
    command: str | None = None,
    trained: bool = True,
) -> Path:
    """Export ``net`` to ``out/femur_ao.onnx``, check it against PyTorch on ``check_x`` and write
    the manifest (sha256, held-out metrics, and the training command when given)."""
    path = out / MODEL_FILE
    export_onnx(net, cfg, path)
    diffs = check_against_torch(net, cfg, path, check_x)
    print("max |onnx - torch|:", diffs)
    extra: dict = {
        "parameters": count_parameters(net),
        "export_check_max_abs_diff": diffs,
        "trained": trained,
    }
    # The one manifest schema (app/engine/manifest_schema.py): held-out metrics under "metrics".
    extra["metrics"] = {
        k: v for k, v in (metrics or {}).items() if k not in ("history", "config", "phases")
    }
    if metrics:
        if "phases" in metrics:
            extra["training_phases"] = metrics["phases"]
    if command:
        extra["training_command"] = command
    write_manifest(out, cfg, extra)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) and {out / 'manifest.json'}")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, help="state dict from train.py (omit: random init)")
    ap.add_argument("--config", default="demo", choices=sorted(CONFIGS))
    ap.add_argument("--config-json", type=Path, help="config.json written by train.py")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--metrics", type=Path, help="metrics.json from train.py to record")
    ap.add_argument("--test-set", type=Path, help="phantom .npz to check the export on")
    args = ap.parse_args(argv)
    cfg = CONFIGS[args.config]
    if args.config_json:
        cfg = FemurNetConfig(
            **{
                k: tuple(v) if isinstance(v, list) else v
                for k, v in json.loads(args.config_json.read_text()).items()
            }
        )
    net = build(cfg).eval()
    if args.checkpoint:
        net.load_state_dict(torch.load(args.checkpoint, weights_only=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 1, cfg.input_size, cfg.input_size)).astype(np.float32)
    if args.test_set:
        from models.femur_ao.data import FemurSet

        x = FemurSet.load(args.test_set).x[:16, None].astype(np.float32)
    metrics = json.loads(args.metrics.read_text()) if args.metrics else None
    export_trained(net, cfg, args.out, metrics, x, trained=bool(args.checkpoint))
    if not args.checkpoint:  # random weights: say so in the manifest
        manifest = args.out / "manifest.json"
        doc = json.loads(manifest.read_text())
        doc["trained_on"] = "nothing: random initialisation (for timing only)"
        manifest.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
