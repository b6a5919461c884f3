"""Held-out evaluation through the product path: phantoms with new seeds written as DICOM,
read back with ``app.study.load``, run by the adapter through the runner, scored against their
truth in LPS mm.

    python -m models.lumbar_ccfnet.evaluate --n 40 [--weights DIR] [--out metrics.json] [--record]

``--record`` writes the figures into the weights' manifest under ``metrics.held_out`` (the
manifest is not pinned; the ONNX file's digest is unchanged).

Localisation recall counts a landmark within 6 mm of its truth (the paper's criterion); the
disease AUC is taken at the landmarks found (the paper's "AUC at the true points").
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from app.analysis.request import single_input
from app.analysis.runner import run_analysis
from app.study import load
from models.lumbar_ccfnet.adapter import LumbarCCFAdapter
from models.lumbar_ccfnet.anatomy import OBJECTS
from models.lumbar_ccfnet.metrics import score
from models.lumbar_ccfnet.phantom import generate, write_study

HELD_OUT_SEED0 = 900_000  # training uses seed * 100000 + n (n < 100000), validation 500000+
# Paper Table 1, CCF-Net ResNet18-MSC, four-fold cross-validation on Tianchi (mean values)
PAPER = {"recall_disc": 0.9475, "recall_vertebra": 0.9471, "auc_disc": 0.9088,
         "auc_vertebra": 0.7916, "score": 0.8050}  # fmt: skip


def load_complete(path: Path, n_slices: int, tries: int = 3):
    """The study's series through ``app.study.load``, insisting on every slice: under heavy CPU
    load the loader's decoder children can time out on a file and leave it out, and a partial
    series would move the analysed mid slice (the figures would then measure the load)."""
    reasons = []
    for _ in range(tries):
        loaded = load(path)
        series = loaded.all_series()
        if series and series[0].shape[0] == n_slices:
            return series[0]
        reasons = [e.reason for e in loaded.errors]
    raise RuntimeError(
        f"{path}: loaded without all {n_slices} slices after {tries} tries {reasons[:2]}"
    )


def evaluate(n: int, weights: Path | None = None, seed0: int = HELD_OUT_SEED0) -> dict:
    adapter = LumbarCCFAdapter(weights)
    rng = np.random.default_rng(seed0)
    dist = np.full((n, len(OBJECTS)), np.nan)
    prob = np.zeros((n, len(OBJECTS)))
    labels = np.zeros((n, len(OBJECTS)))
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in range(n):
            # Matrix and pixel size vary as in clinical sagittal T2 (FOV 220-340 mm).
            size = int(rng.choice([288, 320, 384, 448]))
            sample = generate(
                seed0 + s, rows=size, cols=size, pixel_mm=float(rng.uniform(0.6, 0.85))
            )
            path = write_study(sample, Path(tmp) / f"case{s}")
            series = load_complete(path, sample.volume.shape[0])
            t0 = time.perf_counter()
            result = run_analysis(adapter, single_input(adapter, series))
            seconds.append(time.perf_counter() - t0)
            marks = {m.name: np.asarray(m.position_lps) for o in result.overlays
                     for m in getattr(o, "landmarks", [])}  # fmt: skip
            truth = sample.landmarks_lps
            found = {f.label: f.probability for f in result.findings}
            for k, name in enumerate(OBJECTS):
                dist[s, k] = float(np.linalg.norm(marks[name] - truth[name]))
                prob[s, k] = found[name]
            labels[s] = sample.label_vector()
    out = score(dist, prob, labels)
    out.update({
        "cases": n, "points": int(n * len(OBJECTS)), "seeds": f"{seed0}..{seed0 + n - 1}",
        "diseased_fraction": float(labels.mean()),
        "seconds_per_study_median": float(np.median(seconds)),
        "paper_resnet18_msc": PAPER,
    })  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--record", action="store_true", help="write into the manifest's metrics")
    args = ap.parse_args(argv)
    m = evaluate(args.n, args.weights)
    text = json.dumps(m, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.record:
        path = (args.weights or LumbarCCFAdapter.default_weights_dir) / "manifest.json"
        doc = json.loads(path.read_text())
        doc.setdefault("metrics", {})["held_out"] = {
            **{k: v for k, v in m.items() if k != "paper_resnet18_msc"},
            "command": "python -m models.lumbar_ccfnet.evaluate --n " + str(args.n),
        }
        path.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
