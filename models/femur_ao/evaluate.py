"""End-to-end held-out evaluation through the shipped adapter (DICOM -> loader -> adapter).

``python -m models.femur_ao.evaluate --n 60 --shape 820 1000 [--weights DIR] [--seed 900000]``

Unlike the metrics that ``train.py`` writes (network inputs rendered at training resolution),
this renders full AP pelvis phantoms at another size and seed range, writes them as DICOM and
scores what a user would see: per-side probabilities (F1 for 2, 3 and 6 classes) and the CAM
boxes against the femoral-head boxes in image pixels (mAP, fractured sides only).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from app.analysis.one_study import request_for
from app.analysis.runner import run_analysis
from app.study import load
from models.femur_ao.adapter import FemurAOAdapter
from models.femur_ao.metrics import f1_scores, localization_map
from models.femur_ao.phantom import generate, write_study


def evaluate(
    adapter: FemurAOAdapter, n: int, shape: tuple[int, int], seed0: int, noise: float = 1.0
) -> dict:
    rows = []
    preds, truth = [], {}
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(n):
            sample = generate(seed0 + k, shape=shape, fracture_probability=0.9, noise=noise)
            path = write_study(sample, Path(tmp) / f"s{k}")
            t0 = time.perf_counter()
            r = run_analysis(adapter, request_for(load(path), adapter, path))
            times.append(time.perf_counter() - t0)
            for side in ("right", "left"):
                label = sample.labels[side]
                p = {f.label: f.probability for f in r.findings if f.side == side}
                # The 6-class scenario is scored on its own output (given a fracture).
                p.update(r.extra["sides"][side]["p_subtype_given_fracture"])
                rows.append((label, p))
                if label != "normal":
                    key = len(truth)
                    truth[key] = sample.head_boxes[side]
                    for b in r.extra["sides"][side]["cam_boxes"]:
                        preds.append((key, b["score"], tuple(b["box_px"])))
    truth_2 = ["fracture" if lab != "normal" else "normal" for lab, _ in rows]
    pred_2 = ["fracture" if p["fracture"] >= 0.5 else "normal" for _, p in rows]
    truth_3 = [lab[0] if lab != "normal" else "normal" for lab, _ in rows]
    pred_3 = [max(("normal", "A", "B"), key=lambda c, p=p: p[c]) for _, p in rows]
    subs = ("A1", "A2", "A3", "B1", "B2", "B3")
    frac = [(lab, p) for lab, p in rows if lab != "normal"]
    pred_6 = [max(subs, key=lambda c, p=p: p[c]) for _, p in frac]
    return {
        "n_radiographs": n,
        "shape": list(shape),
        "seeds": [seed0, seed0 + n - 1],
        "noise": noise,
        "2-class": f1_scores(truth_2, pred_2, ("normal", "fracture")),
        "3-class": f1_scores(truth_3, pred_3, ("normal", "A", "B")),
        "6-class": f1_scores([lab for lab, _ in frac], pred_6, subs),
        "localization (CAM boxes of the predicted type, fractured sides)": localization_map(
            preds, truth
        ),
        "seconds_per_radiograph_median": float(np.median(times)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--shape", type=int, nargs=2, default=(820, 1000))
    ap.add_argument("--seed", type=int, default=900_000)
    ap.add_argument("--noise", type=float, default=1.0, help="phantom noise (1 = training)")
    ap.add_argument("--out", type=Path, help="write the report as JSON here")
    args = ap.parse_args(argv)
    report = evaluate(
        FemurAOAdapter(args.weights), args.n, tuple(args.shape), args.seed, args.noise
    )
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
