"""Export trained state dicts to ONNX and write ``weights/manifest.json`` (sha256 per file).

    python -m models.cervical_fracture.export --run runs/cervical --out models/cervical_fracture/weights

then pin the printed digests (``sha256sum weights/*.onnx``) in ``weights_digest.py``.
``--gradcam-only`` adds the Grad-CAM output and head to files already exported.

Stage 1 is exported with its softmax (output: class probabilities), stage 2 with its sigmoid
(output: fracture probability), so the adapter needs no torch. Both keep fp32: the demo networks
are 2 MB each, ONNX Runtime's CPU provider has no fast fp16 convolution on x86 (it would cast
back), and no fp16 converter is among the project's dependencies; ``--fp16`` is therefore not
offered rather than half-done. The export checks ONNX Runtime against torch before writing the
manifest.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from app.engine.runtime import sha256_of
from models.cervical_fracture import pipeline as P
from models.cervical_fracture.networks import (
    ModelConfig,
    Stage1Config,
    Stage2Config,
    build_stage1,
    build_stage2,
)

MODEL_NAME = "cervical-fracture-2stage-demo"
MODEL_VERSION = "0.1.0"
PAPER_REF = (
    "Two-stage 2.5D CNN + BiLSTM cervical spine fracture detection, RSNA 2022 "
    "(thesis, section 4.5; metric section 4.1)"
)
TOLERANCE = 1e-3  # max abs difference in probabilities, ONNX Runtime vs torch
# Grad-CAM (models/common/feature_outputs.py, models/cervical_fracture/cam.py): stage 2 also
# outputs its CNN's feature maps, and this head graph maps them to the fracture logit.
GRADCAM_HEAD = "stage2_gradcam_head.onnx"
GRADCAM_LAYER = "layer2"  # see add_gradcam_outputs


class _Stage1Probs(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


class _Stage2Probs(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


def config_from_json(data: dict) -> ModelConfig:
    s1 = Stage1Config(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in data["stage1"].items()}
    )
    s2 = Stage2Config(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in data["stage2"].items()}
    )
    return ModelConfig(s1, s2)


def load_networks(run: Path) -> tuple[nn.Module, nn.Module, dict]:
    meta = json.loads((run / "config.json").read_text())
    cfg = config_from_json(meta["config"])
    net1 = build_stage1(cfg.stage1)
    net1.load_state_dict(torch.load(run / "stage1.pt", weights_only=True))
    net2 = build_stage2(cfg.stage2)
    net2.load_state_dict(torch.load(run / "stage2.pt", weights_only=True))
    return net1.eval(), net2.eval(), meta


def export_stage1(net: nn.Module, path: Path, size: int = P.WORK_SIZE) -> None:
    example = torch.rand(2, 3, size, size)
    torch.onnx.export(
        _Stage1Probs(net).eval(),
        (example,),
        str(path),
        input_names=["slices"],
        output_names=["probs"],
        dynamic_axes={"slices": {0: "n"}, "probs": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )


def export_stage2(net: nn.Module, path: Path, size: int = P.CROP_SIZE) -> None:
    example = torch.rand(2, P.SEQ_LEN, 3, size, size)
    torch.onnx.export(
        _Stage2Probs(net).eval(),
        (example,),
        str(path),
        input_names=["sequence"],
        output_names=["prob"],
        dynamic_axes={"sequence": {0: "b"}, "prob": {0: "b"}},
        opset_version=17,
        dynamo=False,
    )


def add_gradcam_outputs(out: Path, layer: str = GRADCAM_LAYER) -> dict:
    """Give ``out/stage2.onnx`` the ``features`` output (the encoder's ``layer`` output, per
    triplet) and write the head graph beside it; returns the manifest's ``gradcam`` entry.
    Idempotent. layer2 (8 x 8 cells on a 64-pixel crop) rather than layer4 (2 x 2: a quarter of
    the crop per cell) or layer3 (4 x 4): with the stage 2 of commit 591fc11, on 10 fractured
    vertebrae of phantoms (seeds 0-8) the share of the map in the fracture region was 2.25x
    chance on average with layer2 (1.41x-2.85x), 1.54x with layer3 (0.78x-2.78x) and 1.32x with
    layer4 (0.79x-2.26x); with the stage 2 before it, layer3 1.70x and layer2 1.63x (one map at
    0.48x). tests/test_explain_gradcam_cervical.py asserts it."""
    import onnx

    from models.common.feature_outputs import (
        FeatureTap,
        add_gradcam,
        input_of_last,
        last_output_under,
    )

    path = Path(out) / "stage2.onnx"
    model = onnx.load(str(path))
    taps = [FeatureTap("features", last_output_under(model, f"/net/encoder/{layer}/"))]
    add_gradcam(path, taps, input_of_last(model, "Sigmoid"), Path(out) / GRADCAM_HEAD)
    return {
        "stage2.onnx": {
            "head": GRADCAM_HEAD,
            "features": "features",
            "layer": f"{layer} output of the per-triplet CNN encoder, (batch x 8, K, h, w)",
            "score": "head output: the fracture logit before the sigmoid",
        }
    }


def shipped_files(out: Path) -> list[str]:
    """The weights files the manifest lists (the Grad-CAM head when there is one)."""
    head = [GRADCAM_HEAD] if (Path(out) / GRADCAM_HEAD).exists() else []
    return ["stage1.onnx", "stage2.onnx", *head]


def gradcam_in_place(out: Path, layer: str = GRADCAM_LAYER) -> Path:
    """``add_gradcam_outputs`` on the files already in ``out`` and their manifest updated."""
    from models.common.feature_outputs import gradcam_manifest_in_place

    return gradcam_manifest_in_place(out, lambda o: add_gradcam_outputs(o, layer), shipped_files)


def max_difference(onnx_path: Path, module: nn.Module, x: np.ndarray) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    return float(np.abs(got - want).max())


def write_manifest(out: Path, meta: dict, extra: dict | None = None) -> Path:
    files = {}
    for name in shipped_files(out):
        files[name] = {"sha256": sha256_of(out / name), "bytes": (out / name).stat().st_size}
    trained_on = (
        f"{len(meta.get('train_studies', []))} synthetic neck CT phantoms "
        f"(models.cervical_fracture.phantom, seed {meta.get('seed')})"
        if meta.get("data") == "phantom"
        else f"RSNA 2022 layout folder {meta.get('data')}"
    )
    doc = {
        "model_name": MODEL_NAME,
        "version": MODEL_VERSION,
        "task_id": "cervical-fracture",
        "paper": PAPER_REF,
        "trained_on": trained_on,
        # the one manifest schema (app/engine/manifest_schema.py)
        "config": {"name": meta.get("config_name"), **(meta.get("config") or {})},
        "seed": meta.get("seed"),
        "training_command": meta.get("command"),
        "metrics": meta.get("metrics", {}),
        "preprocessing": {
            "hu_window": list(P.HU_WINDOW),
            "slice_mm": P.SLICE_MM,
            "pixel_mm": P.PIXEL_MM,
            "work_size": P.WORK_SIZE,
            "crop_size": P.CROP_SIZE,
            "seq_slices": P.SEQ_SLICES,
            "seq_len": P.SEQ_LEN,
            "slice_share": P.SLICE_SHARE,
            "top_n": P.TOP_N,
        },
        "files": files,
        **(extra or {}),
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Export the cervical pipeline to ONNX")
    ap.add_argument("--run", type=Path, help="folder written by train.py")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "weights")
    ap.add_argument("--gradcam-only", action="store_true",
                    help="add the Grad-CAM output and head to the ONNX files already in --out "
                         "(no --run needed) and update their manifest")  # fmt: skip
    args = ap.parse_args(argv)
    if args.gradcam_only:
        print(f"updated {gradcam_in_place(args.out)}; pin the digests in weights_digest.py")
        return 0
    if args.run is None:
        ap.error("--run is required (unless --gradcam-only)")
    torch.set_num_threads(1)  # see train.py: one thread is faster on the shared machine
    net1, net2, meta = load_networks(args.run)
    args.out.mkdir(parents=True, exist_ok=True)
    export_stage1(net1, args.out / "stage1.onnx")
    export_stage2(net2, args.out / "stage2.onnx")
    gradcam = add_gradcam_outputs(
        args.out
    )  # before the check: the checked graph is the shipped one
    rng = np.random.default_rng(0)
    d1 = max_difference(
        args.out / "stage1.onnx", _Stage1Probs(net1).eval(), rng.random((4, 3, 96, 96), np.float32)
    )
    d2 = max_difference(
        args.out / "stage2.onnx",
        _Stage2Probs(net2).eval(),
        rng.random((3, P.SEQ_LEN, 3, P.CROP_SIZE, P.CROP_SIZE), np.float32),
    )
    if max(d1, d2) > TOLERANCE:
        raise SystemExit(f"ONNX differs from torch: stage1 {d1:.2e}, stage2 {d2:.2e}")
    diffs = {"stage1.onnx": d1, "stage2.onnx": d2}
    path = write_manifest(args.out, meta, {"export_check_max_abs_diff": diffs, "gradcam": gradcam})
    print(f"wrote {path} (ONNX vs torch max |diff|: stage1 {d1:.2e}, stage2 {d2:.2e})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
