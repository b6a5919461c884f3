"""Export the spine networks to ONNX (opset 17, fp32) with their sha256 manifest.

``python -m models.spine_xray.export --run DIR --out models/spine_xray/weights`` re-exports the
state dicts that ``train.py`` left in DIR (``train.py`` calls ``export_all`` itself).

Three graphs, each checked against PyTorch on validation inputs:

- ``spine_unet_ap.onnx``: ``image`` (B, 1, S, S) -> ``masks`` (B, 3, S, S) probabilities;
- ``spine_unet_lateral.onnx``: the same with 5 masks;
- ``spine_classifier.onnx``: ``ap``, ``lateral`` (B, 1, C, C) -> ``probabilities`` (B, 2)
  [normal, damaged].
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from app.engine.runtime import sha256_of
from models.spine_xray.networks import (
    VIEW_MASKS,
    ClsExport,
    SegExport,
    SpineConfig,
    build_classifier,
    build_unet,
    count_parameters,
)
from models.spine_xray.phantom import CLASSES

FILES = {
    "ap": "spine_unet_ap.onnx",
    "lateral": "spine_unet_lateral.onnx",
    "classifier": "spine_classifier.onnx",
}
MAX_FILE_MB = 15.0


def _onnx(module: torch.nn.Module, args: tuple, path: Path, inputs: list[str], output: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        module.eval(),
        args,
        str(path),
        input_names=inputs,
        output_names=[output],
        dynamic_axes={**{k: {0: "batch"} for k in inputs}, output: {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def export_graphs(nets: dict[str, torch.nn.Module], cfg: SpineConfig, out: Path) -> None:
    s, c = cfg.unet.input_size, cfg.classifier.input_size
    for view in ("ap", "lateral"):
        _onnx(SegExport(nets[view]), (torch.zeros(1, 1, s, s),), out / FILES[view], ["image"],
              "masks")  # fmt: skip
    x = torch.zeros(2, 1, c, c)
    _onnx(ClsExport(nets["classifier"]), (x, x), out / FILES["classifier"], ["ap", "lateral"],
          "probabilities")  # fmt: skip


def check_against_torch(nets, out: Path, seg: dict[str, np.ndarray], cls: tuple) -> dict:
    """Largest |ONNX Runtime - PyTorch| per graph on the given inputs."""
    import onnxruntime as ort

    def run(name, feed):
        sess = ort.InferenceSession(str(out / FILES[name]), providers=["CPUExecutionProvider"])
        return sess.run(None, feed)[0]

    diffs = {}
    with torch.no_grad():
        for view in ("ap", "lateral"):
            x = seg[view].astype(np.float32)[:, None]
            ref = SegExport(nets[view].eval())(torch.from_numpy(x)).numpy()
            diffs[FILES[view]] = float(np.abs(run(view, {"image": x}) - ref).max())
        a, b = (v.astype(np.float32)[:, None] for v in cls)
        ref = ClsExport(nets["classifier"].eval())(torch.from_numpy(a), torch.from_numpy(b)).numpy()
        got = run("classifier", {"ap": a, "lateral": b})
        diffs[FILES["classifier"]] = float(np.abs(got - ref).max())
    return diffs


def write_manifest(out: Path, cfg: SpineConfig, extra: dict) -> Path:
    files = {}
    for name in FILES.values():
        size_mb = (out / name).stat().st_size / 1e6
        if size_mb > MAX_FILE_MB and cfg.name == "demo":
            raise ValueError(f"{out / name}: {size_mb:.1f} MB, over the {MAX_FILE_MB} MB limit")
        files[name] = {"sha256": sha256_of(out / name), "bytes": (out / name).stat().st_size}
    doc = {
        "model_name": f"spine-xray-{cfg.name}",
        "version": extra.pop("version", "0.1.0"),
        "trained_on": extra.pop(
            "trained_on",
            "synthetic AP + lateral lumbar spine phantoms (models/spine_xray/phantom.py)",
        ),
        "disclaimer": "trained on synthetic phantoms, not for clinical use",
        "config": cfg.to_json(),
        "inputs": {
            FILES["ap"]: {"image": ["batch", 1, cfg.unet.input_size, cfg.unet.input_size]},
            FILES["lateral"]: {"image": ["batch", 1, cfg.unet.input_size, cfg.unet.input_size]},
            FILES["classifier"]: {
                v: ["batch", 1, cfg.classifier.input_size, cfg.classifier.input_size]
                for v in ("ap", "lateral")
            },
        },
        "metrics": extra.pop("metrics", {}),
        "masks": {view: list(names) for view, names in VIEW_MASKS.items()},
        "classes": list(CLASSES),
        "files": files,
        **extra,
    }
    path = out / "manifest.json"
    from app.engine.manifest_schema import validate_manifest

    validate_manifest(doc, path)  # the one schema every task's manifest follows
    path.write_text(json.dumps(doc, indent=2))
    return path


def export_all(nets, cfg: SpineConfig, out: Path, report: dict | None, val, command: str = "",
               trained: bool = True) -> Path:  # fmt: skip
    """Export, check against PyTorch on up to 8 validation cases, write the manifest."""
    out = Path(out)
    export_graphs(nets, cfg, out)
    n = min(8, len(val))
    diffs = check_against_torch(nets, out, {"ap": val.ap[:n], "lateral": val.lateral[:n]},
                                (val.ap_cls[:n], val.lateral_cls[:n]))  # fmt: skip
    print("max |onnx - torch|:", diffs, flush=True)
    per_net = {k: count_parameters(v) for k, v in nets.items()}
    extra: dict = {
        "task_id": "spine-xray",
        "parameters": sum(per_net.values()),
        "parameters_per_network": per_net,
        "export_check_max_abs_diff": diffs,
        "trained": trained,
    }
    if report:
        # Validation split of the training run (network resolution); the held-out evaluation
        # through the product path is evaluate.py's, recorded in MODEL_CARD.md.
        extra["metrics"] = {
            "split": "validation phantoms (seeds never trained on), network input resolution",
            "unet_ap_dice": report.get("unet_ap", {}).get("val_dice"),
            "unet_lateral_dice": report.get("unet_lateral", {}).get("val_dice"),
            "classifier": report.get("classifier", {}).get("best"),
            "train_minutes": report.get("train_minutes"),
            "recipe": report.get("recipe"),
        }
    if command:
        extra["training_command"] = command
    path = write_manifest(out, cfg, extra)
    for name in FILES.values():
        print(f"wrote {out / name} ({(out / name).stat().st_size / 1e6:.2f} MB)", flush=True)
    return path


DIGEST_FILE = Path(__file__).parent / "weights_digest.py"
DIGEST_TEMPLATE = '''"""The sha256 of each weights file this task ships, pinned in code so that a change to the
weights is a change to reviewed code (``manifest.json`` alone could be edited to match modified
weights). ``OnnxAdapter`` refuses a shipped file whose bytes do not hash to this.

Written by ``python -m models.spine_xray.export --run DIR --out models/spine_xray/weights --pin``;
commit it with the weights.
"""

WEIGHTS_SHA256 = {
%s}
'''


def write_pins(weights: Path, target: Path = DIGEST_FILE) -> Path:
    """Pin the digests of the ONNX files in ``weights`` in the task's code."""
    lines = "".join(f'    "{n}": "{sha256_of(Path(weights) / n)}",\n' for n in FILES.values())
    target.write_text(DIGEST_TEMPLATE % lines)
    return target


def load_run(run: Path) -> tuple[dict[str, torch.nn.Module], SpineConfig]:
    cfg = SpineConfig.from_json(json.loads((run / "config.json").read_text()))
    nets = {v: build_unet(cfg, v) for v in ("ap", "lateral")}
    nets["classifier"] = build_classifier(cfg)
    for key, file in (("ap", "unet_ap.pt"), ("lateral", "unet_lateral.pt"),
                      ("classifier", "classifier.pt")):  # fmt: skip
        nets[key].load_state_dict(torch.load(run / file, weights_only=True))
    return {k: v.eval() for k, v in nets.items()}, cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="train.py's output folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pin", action="store_true", help="pin the new digests in weights_digest.py")
    args = ap.parse_args(argv)
    nets, cfg = load_run(args.run)
    report = json.loads((args.run / "metrics.json").read_text())
    from models.spine_xray.data import SpineSet

    val = SpineSet.load(next(args.run.glob("phantoms_*_val.npz")))
    seed = report.get("seed", 0)
    command = (
        f"python -m models.spine_xray.train --data {report.get('data')} --out DIR --seed {seed}"
    )
    export_all(nets, cfg, args.out, report, val, command)
    if args.pin:
        print(f"pinned in {write_pins(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
