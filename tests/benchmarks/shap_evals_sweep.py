"""How few SHAP evaluations keep the femur map of shap's default call (issue 12's 2x target).

Run by hand (not a test; deterministic, so it measures no time):

    .venv/bin/python -m tests.benchmarks.shap_evals_sweep --phantoms 18 --evals 200,225,250,275

For each fractured femur phantom it computes shap's default call (``default_map``: 500
evaluations, batch 10, all 11 outputs) and our explanation of P(fracture) at each number of
evaluations (batch 10), and prints the correlation of the two maps: the worst phantom decides
whether a number of evaluations meets the 0.9 correlation target. In steady state the model is
~90% of either call, so a 2x speed-up needs about 240 evaluations or fewer.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

SUBTYPES = ("A1", "A2", "A3", "B1", "B2", "B3")


def cases(n: int) -> list[tuple[int, dict[str, str]]]:
    """``n`` fractured phantoms, alternating sides; the first two are the benchmark's."""
    rng = np.random.default_rng(5)
    out = [(3, {"right": "A2", "left": "normal"}), (31, {"right": "normal", "left": "A3"})]
    for i in range(max(0, n - 2)):
        sub = str(rng.choice(SUBTYPES))
        out.append((100 + 7 * i, {"right": sub, "left": "normal"} if i % 2 == 0
                    else {"right": "normal", "left": sub}))  # fmt: skip
    return out[:n]


def main() -> None:
    from app.analysis.request import single_input
    from app.analysis.runner import run_analysis
    from app.engine.runtime import session_for
    from app.engine.shap_maps import shap_map, warm_up
    from app.study import load
    from models.femur_ao.adapter import MODEL_FILE, FemurAOAdapter
    from models.femur_ao.explain import session_predict, side_crop
    from models.femur_ao.phantom import generate, write_study
    from tests.benchmarks.test_bench_shap import default_map

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phantoms", type=int, default=18)
    ap.add_argument("--evals", default="200,225,250,275")
    ap.add_argument("--batch", type=int, default=10)
    args = ap.parse_args()
    evals = [int(e) for e in args.evals.split(",")]

    warm_up()
    adapter = FemurAOAdapter()
    sess = session_for(adapter.manifest, MODEL_FILE)
    worst = dict.fromkeys(evals, 1.0)
    for seed, labels in cases(args.phantoms):
        with tempfile.TemporaryDirectory() as tmp:
            series = load(write_study(generate(seed, labels=labels), Path(tmp))).all_series()[0]
            request = single_input(adapter, series)
            result = run_analysis(adapter, request)
        side = next(s for s, c in labels.items() if c != "normal")
        finding = result.finding("fracture", side)
        crop = side_crop(request["radiograph"], side, 192)
        base = default_map(sess, crop.pixels, crop.mirrored)
        row = []
        for n in evals:
            values, _ = shap_map(session_predict(sess, finding), crop.pixels, max_evals=n,
                                 batch_size=args.batch)  # fmt: skip
            values = values[:, ::-1] if crop.mirrored else values
            corr = float(np.corrcoef(values.ravel(), base.ravel())[0, 1])
            worst[n] = min(worst[n], corr)
            row.append(f"{n}: {corr:.3f}")
        print(f"seed {seed} {side} {labels[side]}: " + ", ".join(row), flush=True)
    print("worst correlation with the default call's map: "
          + ", ".join(f"{n} evals {c:.3f}" for n, c in worst.items()))  # fmt: skip


if __name__ == "__main__":
    main()
