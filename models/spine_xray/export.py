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
# Grad-CAM (models/common/feature_outputs.py): the classifier also outputs each encoder's last
# convolutional block but one, and this head graph maps those feature maps to the logits.
GRADCAM_HEAD = "spine_classifier_gradcam_head.onnx"
# layer3 (8 x 8 cells on the 128-pixel input) rather than layer4 (4 x 4: one cell is a sixteenth
# of the film, far larger than a vertebra): on damaged phantoms the share of the map on the
# damaged vertebra was 1.0x chance with layer4, 1.8x with layer3 and 1.6x with layer2
# (seeds 1-6, both views; /tmp/gc/spine_loc.py in the commit message's session).
GRADCAM_LAYER = "layer3"


def add_gradcam_outputs(out: Path, layer: str = GRADCAM_LAYER) -> dict:
    """Give the exported classifier in ``out`` its feature-map outputs and write the head graph
    beside it; returns the manifest's ``gradcam`` entry. Idempotent."""
    import onnx

    from models.common.feature_outputs import (
        FeatureTap,
        add_gradcam,
        input_of_last,
        last_output_under,
    )

    path = Path(out) / FILES["classifier"]
    model = onnx.load(str(path))
    taps = [FeatureTap(f"features_{v}", last_output_under(model, f"/net/{v}/net/{layer}/"))
            for v in ("ap", "lateral")]  # fmt: skip
    add_gradcam(path, taps, input_of_last(model, "Softmax"), Path(out) / GRADCAM_HEAD)
    return {
        FILES["classifier"]: {
            "head": GRADCAM_HEAD,
            "features": {v: f"features_{v}" for v in ("ap", "lateral")},
            "layer": f"{layer} output of each view's encoder",
            "score": "head output: logits [normal, damaged] before the softmax",
        }
    }


def shipped_files(out: Path) -> list[str]:
    """The weights files in ``out`` the manifest lists (the Grad-CAM head when there is one)."""
    return [*FILES.values(), *([GRADCAM_HEAD] if (Path(out) / GRADCAM_HEAD).exists() else [])]


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
    """Export the networks in ``nets`` (a classifier-only run has no U-Nets to export)."""
    s, c = cfg.unet.input_size, cfg.classifier.input_size
    for view in (v for v in ("ap", "lateral") if v in nets):
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
        for view in (v for v in ("ap", "lateral") if v in nets):
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
    for name in shipped_files(out):
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
               trained: bool = True, unets_from: Path | None = None) -> Path:  # fmt: skip
    """Export, check against PyTorch on up to 8 validation cases, write the manifest.

    ``unets_from``: a weights folder whose U-Net ONNX files are copied byte for byte (a run that
    retrained the classifier alone); their validation Dice is taken from its manifest."""
    out = Path(out)
    unet_metrics = {}
    if unets_from is not None:
        unet_metrics = _copy_unets(Path(unets_from), out)
    export_graphs(nets, cfg, out)
    gradcam = add_gradcam_outputs(out)  # before the check: the checked graph is the shipped one
    n = min(8, len(val))
    diffs = check_against_torch(nets, out, {"ap": val.ap[:n], "lateral": val.lateral[:n]},
                                (val.ap_cls[:n], val.lateral_cls[:n]))  # fmt: skip
    print("max |onnx - torch|:", diffs, flush=True)
    counted = {**{v: build_unet(cfg, v) for v in ("ap", "lateral") if v not in nets}, **nets}
    per_net = {k: count_parameters(counted[k]) for k in ("ap", "lateral", "classifier")}
    extra: dict = {
        "task_id": "spine-xray",
        "parameters": sum(per_net.values()),
        "parameters_per_network": per_net,
        "export_check_max_abs_diff": diffs,
        "trained": trained,
        "gradcam": gradcam,
    }
    if report:
        # Validation split of the training run (network resolution); the held-out evaluation
        # through the product path is evaluate.py's, recorded in MODEL_CARD.md.
        extra["metrics"] = {
            "split": "validation phantoms (seeds never trained on), network input resolution",
            "unet_ap_dice": report.get("unet_ap", {}).get("val_dice")
            or unet_metrics.get("unet_ap_dice"),
            "unet_lateral_dice": report.get("unet_lateral", {}).get("val_dice")
            or unet_metrics.get("unet_lateral_dice"),
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


def _copy_unets(src: Path, out: Path) -> dict:
    """Copy the U-Net ONNX files of the weights folder ``src`` into ``out`` unchanged; returns
    the U-Net entries of ``src``'s manifest metrics."""
    import shutil

    out.mkdir(parents=True, exist_ok=True)
    for view in ("ap", "lateral"):
        file = src / FILES[view]
        if not file.is_file():
            raise FileNotFoundError(f"{file}: no such file (--unets-onnx wants a weights folder "
                                    f"holding {FILES['ap']} and {FILES['lateral']})")  # fmt: skip
        if file.resolve() != (out / FILES[view]).resolve():
            shutil.copyfile(file, out / FILES[view])
    manifest = src / "manifest.json"
    metrics = json.loads(manifest.read_text()).get("metrics", {}) if manifest.is_file() else {}
    return {k: metrics.get(k) for k in ("unet_ap_dice", "unet_lateral_dice")}


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
    lines = "".join(
        f'    "{n}": "{sha256_of(Path(weights) / n)}",\n' for n in shipped_files(weights)
    )
    target.write_text(DIGEST_TEMPLATE % lines)
    return target


def gradcam_in_place(out: Path, layer: str = GRADCAM_LAYER) -> Path:
    """``add_gradcam_outputs`` on the shipped files in ``out`` and their manifest updated."""
    from models.common.feature_outputs import gradcam_manifest_in_place

    return gradcam_manifest_in_place(out, lambda o: add_gradcam_outputs(o, layer), shipped_files)


def training_command(report: dict) -> str:
    """The train.py command line that made a run, from its metrics.json report."""
    command = (f"python -m models.spine_xray.train --data {report.get('data')} --out DIR "
               f"--seed {report.get('seed', 0)}")  # fmt: skip
    if report.get("n_mild"):
        command += f" --n-mild {report['n_mild']}"
    if report.get("recipe", {}).get("cls_epochs") not in (None, 15):  # 15: the recipe's default
        command += f" --cls-epochs {report['recipe']['cls_epochs']}"
    if report.get("unets_onnx"):
        command += f" --unets-onnx {report['unets_onnx']}"
    return command


def load_run(run: Path) -> tuple[dict[str, torch.nn.Module], SpineConfig]:
    """The run's networks; a classifier-only run (``--unets-onnx``) has no U-Net state dicts."""
    cfg = SpineConfig.from_json(json.loads((run / "config.json").read_text()))
    nets = {v: build_unet(cfg, v) for v in ("ap", "lateral") if (run / f"unet_{v}.pt").is_file()}
    nets["classifier"] = build_classifier(cfg)
    for key in nets:
        file = "classifier.pt" if key == "classifier" else f"unet_{key}.pt"
        nets[key].load_state_dict(torch.load(run / file, weights_only=True))
    return {k: v.eval() for k, v in nets.items()}, cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="train.py's output folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pin", action="store_true", help="pin the new digests in weights_digest.py")
    ap.add_argument("--gradcam-only", action="store_true",
                    help="add the Grad-CAM outputs and head to the ONNX files already in --out "
                         "(no --run needed) and update their manifest")  # fmt: skip
    args = ap.parse_args(argv)
    if args.gradcam_only:
        print(f"updated {gradcam_in_place(args.out)}")
        if args.pin:
            print(f"pinned in {write_pins(args.out)}")
        return 0
    if args.run is None:
        ap.error("--run is required (unless --gradcam-only)")
    nets, cfg = load_run(args.run)
    report = json.loads((args.run / "metrics.json").read_text())
    from models.spine_xray.data import SpineSet

    val = SpineSet.load(next(args.run.glob("phantoms_*_val.npz")))
    unets = report.get("unets_onnx")
    if unets is None and "ap" not in nets:
        ap.error(f"{args.run}: no U-Net state dicts and no unets_onnx in its metrics.json")
    export_all(nets, cfg, args.out, report, val, training_command(report),
               unets_from=Path(unets) if unets else None)  # fmt: skip
    if args.pin:
        print(f"pinned in {write_pins(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
