"""Export the calcaneus MSRT classifier and its rough-mask U-Net to ONNX with a sha256 manifest.

``train.py`` calls ``export_trained``; ``python -m models.calcaneus_msrt.export --out DIR
[--config paper]`` writes randomly initialised weights (for timing only, said in the manifest).

``calcaneus_msrt.onnx``: ``input`` (B, 2, N, N) (radiograph, mask) -> ``probabilities`` (B, 6)
and ``attention`` (B, 6, N/8, N/8), the spatial-regularization maps through a sigmoid.
``calcaneus_unet.onnx``: ``image`` (B, 1, M, M) -> ``mask`` (B, 1, M, M) probabilities.
Both opset 17, fp32, checked against PyTorch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from app.engine.runtime import sha256_of
from models.calcaneus_msrt.labels import LABELS
from models.calcaneus_msrt.networks import (
    CONFIGS,
    EXPORT_OUTPUTS,
    UNET_DEMO,
    ExportWrapper,
    MSRTConfig,
    UNetConfig,
    UNetExport,
    build,
    build_unet,
    count_parameters,
)

MODEL_FILE = "calcaneus_msrt.onnx"
UNET_FILE = "calcaneus_unet.onnx"
MAX_BYTES = 15_000_000


def export_msrt(net: torch.nn.Module, cfg: MSRTConfig, path: Path, opset: int = 17) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.zeros(1, 2, cfg.input_size, cfg.input_size)
    torch.onnx.export(
        ExportWrapper(net.eval()).eval(), (x,), str(path), input_names=["input"],
        output_names=list(EXPORT_OUTPUTS), opset_version=opset, dynamo=False,
        dynamic_axes={"input": {0: "batch"}, **{k: {0: "batch"} for k in EXPORT_OUTPUTS}},
    )  # fmt: skip


def export_unet(net: torch.nn.Module, cfg: UNetConfig, path: Path, opset: int = 17) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.zeros(1, 1, cfg.input_size, cfg.input_size)
    torch.onnx.export(
        UNetExport(net.eval()).eval(), (x,), str(path), input_names=["image"],
        output_names=["mask"], opset_version=opset, dynamo=False,
        dynamic_axes={"image": {0: "batch"}, "mask": {0: "batch"}},
    )  # fmt: skip


def max_abs_diff(module: torch.nn.Module, path: Path, x: np.ndarray, names) -> dict:
    """Largest |ONNX Runtime - PyTorch| per output on ``x``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})
    with torch.no_grad():
        ref = module.eval()(torch.from_numpy(x.astype(np.float32)))
    ref = ref if isinstance(ref, tuple) else (ref,)
    return {
        n: float(np.max(np.abs(g - r.numpy()))) for n, g, r in zip(names, got, ref, strict=True)
    }


def write_manifest(out: Path, cfg: MSRTConfig, ucfg: UNetConfig, extra: dict) -> Path:
    """``out/manifest.json`` in the one schema (``app/engine/manifest_schema.py``)."""
    files = {
        name: {"sha256": sha256_of(out / name), "bytes": (out / name).stat().st_size}
        for name in (MODEL_FILE, UNET_FILE)
    }
    n, m = cfg.input_size, ucfg.input_size
    doc = {
        "model_name": f"calcaneus-msrt-{cfg.name}",
        "version": extra.pop("version", "0.1.0"),
        "task_id": "calcaneus-fracture",
        "paper": "calcaneus_msrt.txt",
        "trained_on": extra.pop(
            "trained_on", "synthetic lateral calcaneus phantoms (models/calcaneus_msrt/phantom.py)"
        ),
        "disclaimer": "trained on synthetic phantoms, not for clinical use",
        "config": cfg.to_json(),
        "unet_config": ucfg.to_json(),
        "labels": list(LABELS),
        "threshold": 0.5,
        "inputs": {
            MODEL_FILE: {"input": ["batch", 2, n, n]},
            UNET_FILE: {"image": ["batch", 1, m, m]},
        },  # fmt: skip
        "outputs": {MODEL_FILE: list(EXPORT_OUTPUTS), UNET_FILE: ["mask"]},
        "files": files,
        "metrics": extra.pop("metrics", {}),
        **extra,
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def flat(diffs: dict) -> dict[str, float]:
    """{file: {output: diff}} -> {output: diff} (the schema's flat table; names are unique)."""
    return {out: v for per_file in diffs.values() for out, v in per_file.items()}


def trained_extra(params: dict, diffs: dict, report: dict, arm: str, command: str) -> dict:
    """The manifest's training record for one arm of a ``train.py`` run."""
    run = report["arms"][arm]
    return {
        "parameters": sum(params.values()),
        "parameters_per_file": params,
        "export_check_max_abs_diff": flat(diffs),
        "trained": True,
        "seed": report["seed"],
        "augmentation": "GridDropIn&Out + geometric" if arm == "gdio" else "geometric only",
        "thresholds": run["thresholds"],  # per label, chosen on the validation split
        "metrics": {
            "network_level_held_out": run["held_out_network"],
            "best_epoch": run["best_epoch"],
            "unet_best_epoch": report["unet"]["best_epoch"],
            "data": report["data"],
            "recipe": report["recipe"],
            "train_minutes": report.get("train_minutes"),
        },
        "training_command": command,
    }


def export_pair(net, cfg: MSRTConfig, unet, ucfg: UNetConfig, out: Path, check) -> dict:
    """Both ONNX files in ``out``, checked against PyTorch on ``check`` = (msrt_x, unet_x)."""
    export_msrt(net, cfg, out / MODEL_FILE)
    export_unet(unet, ucfg, out / UNET_FILE)
    diffs = {
        MODEL_FILE: max_abs_diff(ExportWrapper(net), out / MODEL_FILE, check[0], EXPORT_OUTPUTS),
        UNET_FILE: max_abs_diff(UNetExport(unet), out / UNET_FILE, check[1], ["mask"]),
    }
    for name in (MODEL_FILE, UNET_FILE):
        size = (out / name).stat().st_size
        print(f"wrote {out / name} ({size / 1e6:.2f} MB); max |onnx - torch| {diffs[name]}")
    return diffs


def export_trained(net, cfg, unet, out: Path, report: dict, arm: str, check, command: str) -> None:
    diffs = export_pair(net, cfg, unet, UNET_DEMO, out, check)
    params = {MODEL_FILE: count_parameters(net), UNET_FILE: count_parameters(unet)}
    write_manifest(out, cfg, UNET_DEMO, trained_extra(params, diffs, report, arm, command))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="demo", choices=sorted(CONFIGS))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    cfg = CONFIGS[args.config]
    torch.manual_seed(0)
    net, unet = build(cfg).eval(), build_unet(UNET_DEMO).eval()
    rng = np.random.default_rng(0)
    check = (rng.random((2, 2, cfg.input_size, cfg.input_size), np.float32),
             rng.random((2, 1, UNET_DEMO.input_size, UNET_DEMO.input_size), np.float32))  # fmt: skip
    diffs = export_pair(net, cfg, unet, UNET_DEMO, args.out, check)
    write_manifest(args.out, cfg, UNET_DEMO, {
        "trained_on": "nothing: random initialisation (for timing only)", "trained": False,
        "parameters": count_parameters(net) + count_parameters(unet),
        "export_check_max_abs_diff": flat(diffs)})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
