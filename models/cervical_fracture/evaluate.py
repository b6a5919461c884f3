"""Held-out evaluation of the shipped ONNX weights on phantoms never used for training.

    python -m models.cervical_fracture.evaluate --n 50 --out models/cervical_fracture/weights/heldout_metrics.json

By default (``--path dicom``) every phantom goes through the product path: written as a DICOM
series (int16 with rescale, as the demo studies are), read back with the project loader, the series
chosen as ``osteoview analyze`` chooses it, and analysed by ``CervicalFractureAdapter.run``; the
probabilities reported are the adapter's. ``--path memory`` runs the same pipeline on the
phantom's in-memory float32 volume instead (the faster, earlier evaluation). Reports per-vertebra
Dice on the study grid (with and without the anatomical level ordering), per-vertebra fracture
AUC (all vertebrae pooled), patient-level AUC and the RSNA competition metric (weighted log loss),
and every study's probabilities (``per_study``) so that two runs can be compared seed by seed.

``--thin-n N`` adds a second, separately reported held-out slice (``thin_slice`` in the output):
N phantoms whose fractures are as thin and as little displaced as the demo study's
(``fracture.THIN_HELDOUT``, seeds from ``HELDOUT_THIN_SEED_BASE``, never used in training).
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
from app.engine.adapter import InputRejected
from app.engine.runtime import Manifest, run_session, session_for
from app.study.geometry import ImageVolume
from models.cervical_fracture import pipeline as P
from models.cervical_fracture.fracture import THIN_HELDOUT
from models.cervical_fracture.inference import run_pipeline
from models.cervical_fracture.loss import rsna_weighted_log_loss
from models.cervical_fracture.phantom import CervicalSample, generate, write_study
from models.cervical_fracture.train import HELDOUT_SEED_BASE, HELDOUT_THIN_SEED_BASE

WEIGHTS = Path(__file__).parent / "weights"


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the rank statistic (ties count one half); NaN if one class is absent."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / s) if s else float("nan")


PATHS = ("dicom", "memory")


def through_dicom(sample: CervicalSample, folder: Path):
    """The phantom written as DICOM, loaded and chosen as ``osteoview analyze`` does:
    (series, truth label map on the loaded series' grid)."""
    from app.analysis.one_study import load_study, request_for
    from models.cervical_fracture.adapter import CervicalFractureAdapter
    from models.cervical_fracture.data import resample_labels_to

    write_study(sample, folder)
    series = request_for(load_study(folder), CervicalFractureAdapter(), folder).primary
    return series, resample_labels_to(sample.labels, series.image)


def evaluate(
    weights: Path,
    n: int,
    seed_base: int = HELDOUT_SEED_BASE,
    top_n: int = P.TOP_N,
    path: str = "dicom",
    options: dict | None = None,
):
    """Metrics on phantoms ``seed_base .. seed_base + n - 1``, drawn with ``options``
    (``phantom.generate``'s; default: the default phantom distribution)."""
    from models.cervical_fracture.adapter import CervicalFractureAdapter

    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, not {path!r}")
    adapter = CervicalFractureAdapter(weights_dir=weights, top_n=top_n)
    manifest = Manifest.load(weights)
    s1 = session_for(manifest, "stage1.onnx")
    s2 = session_for(manifest, "stage2.onnx")

    def stage1(x):
        return run_session(s1, {"slices": x})[0]

    def stage2(x):
        return run_session(s2, {"sequence": x})[0]

    dices = {"ordered": {v: [] for v in P.VERTEBRAE}, "raw": {v: [] for v in P.VERTEBRAE}}
    y_vert, p_vert, y_all, p_all, y_pat, p_pat = [], [], [], [], [], []
    missing_studies = 0
    labelmap_mismatch = 0
    per_study = []
    t_memory = t_adapter = 0.0  # evaluation's own pipeline run; adapter.run (dicom path)
    tmp = tempfile.TemporaryDirectory(prefix="cervical_eval_")
    for m in range(n):
        sample = generate(seed_base + m, **(options or {}))
        if path == "dicom":
            series, truth = through_dicom(sample, Path(tmp.name) / str(seed_base + m))
            ct: ImageVolume = series.image
        else:
            series, truth, ct = None, sample.labels.array, sample.ct
        t0 = time.perf_counter()
        grid = P.make_working_grid(ct)
        x = P.stage1_inputs(P.to_working(ct, grid))
        probs = np.concatenate([stage1(x[b : b + 16]) for b in range(0, len(x), 16)])
        up = P.superior_is_high_k(ct)
        labels = {
            "ordered": P.labels_from_probs(probs, up, ordered=True),
            "raw": P.labels_from_probs(probs, up, ordered=False),
        }
        out = run_pipeline(
            ct, stage1, stage2, top_n=top_n, require_all=False,
            stage1_result=(grid, labels["ordered"]),
        )  # fmt: skip
        t_memory += time.perf_counter() - t0
        if series is not None:  # the product itself: its probabilities are the ones scored
            t0 = time.perf_counter()
            try:
                result = run_analysis(adapter, single_input(adapter, series))
            except InputRejected:  # a vertebra not found: scored 0.5 below, as in memory mode
                out.vertebrae = {}
                out.patient_probability = None
            else:
                for f in result.findings:
                    if f.label in out.vertebrae:
                        out.vertebrae[f.label].probability = f.probability
                    elif f.label == "patient_overall":
                        out.patient_probability = f.probability
                product_labels = result.overlays[0].image.array
                labelmap_mismatch += int(not np.array_equal(product_labels, out.study_labels))
            t_adapter += time.perf_counter() - t0
        for kind, lab in labels.items():
            study = P.labels_to_study(lab, grid)
            for c, name in enumerate(P.VERTEBRAE, start=1):
                dices[kind][name].append(dice(study == c, truth == c))
        if out.missing:
            missing_studies += 1
        row_y, row_p = [], []
        for name in P.VERTEBRAE:
            y = sample.fractures[name]
            # a vertebra stage 1 missed gets the uninformative 0.5 (it is scored, not dropped)
            p = out.vertebrae[name].probability if name in out.vertebrae else 0.5
            y_vert.append(y)
            p_vert.append(p)
            row_y.append(y)
            row_p.append(p)
        pp = out.patient_probability if out.patient_probability is not None else 0.5
        y_pat.append(sample.patient_overall)
        p_pat.append(pp)
        y_all.append([*row_y, sample.patient_overall])
        p_all.append([*row_p, pp])
        per_study.append(
            {"seed": seed_base + m, "truth": row_y, "p": [round(float(x), 5) for x in row_p],
             "p_patient": round(float(pp), 5)}
        )  # fmt: skip
        print(f"[{m + 1}/{n}] seed {seed_base + m}: fractures {sample.fractures} "
              f"p_patient {pp:.3f}", flush=True)  # fmt: skip

    def summary(d):
        per = {k: float(np.nanmean(v)) for k, v in d.items()}
        return {"per_vertebra": per, "mean": float(np.mean(list(per.values())))}

    tmp.cleanup()
    y_vert, p_vert = np.array(y_vert), np.array(p_vert)
    return {
        "path": path,
        "n_studies": n,
        "heldout_seeds": [seed_base, seed_base + n - 1],
        "phantom_options": {
            k: list(v) if isinstance(v, tuple) else v for k, v in (options or {}).items()
        },
        "studies_with_missing_vertebra": missing_studies,
        "dice": {k: summary(v) for k, v in dices.items()},
        "vertebra_fracture_auc": auc(y_vert, p_vert),
        "vertebra_accuracy_at_0.5": float(((p_vert >= 0.5) == y_vert.astype(bool)).mean()),
        "vertebra_positives": int(y_vert.sum()),
        # fractured vertebrae called at 0.5 / all fractured (what the thin slice is about)
        "vertebra_sensitivity_at_0.5": float((p_vert[y_vert == 1] >= 0.5).mean())
        if y_vert.any()
        else float("nan"),
        "vertebra_false_positives_at_0.5": int(((p_vert >= 0.5) & (y_vert == 0)).sum()),
        "patient_auc": auc(np.array(y_pat), np.array(p_pat)),
        "patient_positives": int(np.sum(y_pat)),
        "competition_metric": rsna_weighted_log_loss(np.array(y_all), np.array(p_all)),
        "competition_metric_constant_0.5": rsna_weighted_log_loss(
            np.array(y_all), np.full((n, 8), 0.5)
        ),
        "top_n": top_n,
        "mean_pipeline_seconds": (t_adapter if path == "dicom" else t_memory) / n,
        "adapter_labelmap_differs_from_evaluation": labelmap_mismatch if path == "dicom" else None,
        "per_study": per_study,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Held-out phantom metrics of the shipped weights")
    ap.add_argument("--weights", type=Path, default=WEIGHTS)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seed-base", type=int, default=HELDOUT_SEED_BASE)
    ap.add_argument("--top-n", type=int, default=P.TOP_N)
    ap.add_argument(
        "--path",
        choices=PATHS,
        default="dicom",
        help="dicom: through DICOM files, the loader and the adapter (what users get); "
        "memory: the phantom's in-memory volume",
    )
    ap.add_argument(
        "--thin-n",
        type=int,
        default=0,
        help="also evaluate this many thin-fracture phantoms (THIN_HELDOUT), reported apart",
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    metrics = evaluate(args.weights, args.n, args.seed_base, args.top_n, args.path)
    if args.thin_n:
        metrics["thin_slice"] = evaluate(
            args.weights, args.thin_n, HELDOUT_THIN_SEED_BASE, args.top_n, args.path, THIN_HELDOUT
        )
    text = json.dumps(metrics, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
