"""Held-out evaluation through the product path, with realistic mask errors and the GDIO ablation.

``python -m models.calcaneus_msrt.evaluate --weights DIR [--plain-weights DIR] --n 50
[--seed 900000] [--out report.json]``

Each held-out phantom (512 px at 0.3 mm, as the demo studies; seeds far from training's) is
written as a DX DICOM with its rough mask as a PNG beside it. The mask is made from the fine
fracture truth with the errors a segmenter makes (``data.corrupt_mask``: grown, zigzag edges,
missing and extra blobs), not the phantom's own rough mask that training saw. Then, as
``osteoview analyze DIR --input fracture_mask=mask.png`` does: ``app.study.load`` ->
``series_by_uid_or_path`` -> ``resolve_inputs`` -> ``run_analysis``, once with the given mask
and once without (the shipped U-Net predicts it). ``--plain-weights`` scores the ablation arm
(plain augmentation) the same way.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from app.analysis.request import resolve_inputs, series_by_uid_or_path
from app.analysis.runner import run_analysis
from app.findings.types import LabelMapOverlay
from app.study import load
from models.calcaneus_msrt.adapter import CalcaneusAdapter
from models.calcaneus_msrt.data import corrupt_mask
from models.calcaneus_msrt.labels import LABELS
from models.calcaneus_msrt.metrics import multilabel_report
from models.calcaneus_msrt.phantom import BONES, CalcaneusSample, generate


def write_case(sample: CalcaneusSample, mask: np.ndarray, out: Path) -> tuple[Path, Path]:
    """The radiograph as DX DICOM (lateral, FOOT) and the mask as a 0/255 PNG."""
    from PIL import Image

    from app.study.dicom_writer import PatientTags, write_radiograph

    out.mkdir(parents=True, exist_ok=True)
    patient = PatientTags(
        name=f"PHANTOM^CALCANEUS^{sample.seed}",
        patient_id=f"PH-CALC-{sample.seed}",
        study_description="Synthetic lateral calcaneus (held-out phantom)",
        body_part="FOOT",
    )
    dcm = write_radiograph(
        sample.image, out / "calcaneus_lateral.dcm", sample.pixel_spacing_mm, modality="DX",
        patient=patient, series_description=f"Calcaneus lateral {sample.side}",
        view_position="LL" if sample.side == "left" else "RL", window=sample.window,
    )  # fmt: skip
    png = out.parent / f"{out.name}_mask.png"  # outside the study folder, as a user's file
    Image.fromarray((mask * 255).astype(np.uint8)).save(png)
    return dcm.parent, png


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum() + b.sum())
    return 1.0 if s == 0 else float(2 * (a & b).sum() / s)


def evaluate(adapters: dict[str, CalcaneusAdapter], n: int, seed0: int) -> dict:
    truth = []
    probs = {arm: {"given": [], "predicted": []} for arm in adapters}
    mask_dice = {"given": [], "predicted": []}
    times, no_calls = [], 0
    marked: dict[str, list[bool]] = {"given": [], "predicted": []}  # a non-empty mask
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(n):
            seed = seed0 + k
            sample = generate(seed)
            bone = sample.bones == BONES.index("Calcaneus") + 1
            mask = corrupt_mask(sample.fracture_mask, bone, np.random.default_rng(seed), 0.3)
            study, png = write_case(sample, mask, Path(tmp) / f"s{k}")
            truth.append(sample.label_vector())
            loaded = load(study)
            given = series_by_uid_or_path(loaded, str(png), load)
            for arm, adapter in adapters.items():
                for how, overrides in (("given", {"fracture_mask": given}), ("predicted", {})):
                    req = resolve_inputs(adapter.spec, loaded, study, adapter, overrides)
                    t0 = time.perf_counter()
                    r = run_analysis(adapter, req)
                    times.append(time.perf_counter() - t0)
                    no_calls += bool(r.no_call)  # the input-domain check declined to call
                    if r.extra["mask_used"] != how:
                        raise AssertionError(
                            f"{study}: asked for {how}, ran {r.extra['mask_used']}"
                        )
                    p = {f.label: f.probability for f in r.findings}
                    probs[arm][how].append([p[lab] for lab in LABELS])
                    if arm == next(iter(adapters)):
                        used = next(o for o in r.overlays if isinstance(o, LabelMapOverlay))
                        m = np.asarray(used.image.array[0]) > 0
                        mask_dice[how].append(dice(m, sample.fracture_mask))
                        marked[how].append(bool(m.any()))
    y = np.array(truth)
    report: dict = {
        "n_radiographs": n,
        "seeds": [seed0, seed0 + n - 1],
        "shape": [512, 512],
        "label_support": {lab: int(y[:, k].sum()) for k, lab in enumerate(LABELS)},
        "mask_dice_vs_fine_truth_median": {h: float(np.median(v)) for h, v in mask_dice.items()},
        # Film level: a mask on fractured films, none on normal ones (the first U-Net marked
        # every film).
        "films_marked": {
            how: {
                "fractured": int(np.sum(np.array(v) & y.any(1))),
                "normal": int(np.sum(np.array(v) & ~y.any(1))),
            }
            for how, v in marked.items()
        },
        "films": {"fractured": int(y.any(1).sum()), "normal": int((~y.any(1)).sum())},
        "seconds_per_run_median": float(np.median(times)),
        "runs": len(times),
        "no_call_runs": no_calls,
    }
    for arm, adapter in adapters.items():
        # Scored at the calls the product makes: the manifest's per-label thresholds.
        cut = adapter.thresholds()
        report[arm] = {
            how: multilabel_report(y, np.array(v), np.array([cut[lab] for lab in LABELS]), LABELS)
            for how, v in probs[arm].items()
        }
        report[arm]["thresholds"] = cut
        report[arm]["given_at_0.5"] = multilabel_report(y, np.array(probs[arm]["given"]),
                                                        labels=LABELS)  # fmt: skip
    return report


METRIC_COLUMNS = (
    ("Ex Acc", "exact_match"), ("mAP", "mAP"), ("F1-C", "f1_macro"), ("P-C", "precision_macro"),
    ("R-C", "recall_macro"), ("F1-O", "f1_micro"), ("P-O", "precision_micro"),
    ("R-O", "recall_micro"),
)  # fmt: skip


def markdown(report: dict) -> str:
    """The model card's tables (percent, as the paper's): overall, then per label."""
    arms = [a for a in ("gdio", "plain") if a in report]
    lines = ["| arm, mask | " + " | ".join(c for c, _ in METRIC_COLUMNS) + " |",
             "|---" * (len(METRIC_COLUMNS) + 1) + "|"]  # fmt: skip
    for arm in arms:
        for how in ("given", "predicted"):
            r = report[arm][how]
            cells = " | ".join(f"{100 * r[k]:.2f}" for _, k in METRIC_COLUMNS)
            lines.append(f"| {arm}, {how} | {cells} |")
    lines += ["", "| label | " + " | ".join(f"{a} given acc / F1 / AP" for a in arms) + " |",
              "|---" * (len(arms) + 1) + "|"]  # fmt: skip
    for lab in LABELS:
        cells = []
        for arm in arms:
            x = report[arm]["given"]["per_label"][lab]
            ap = "-" if x["ap"] is None else f"{100 * x['ap']:.1f}"
            cells.append(f"{100 * x['accuracy']:.1f} / {100 * x['f1']:.1f} / {ap}")
        lines.append(f"| {lab} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=None, help="GDIO arm (default: shipped)")
    ap.add_argument("--plain-weights", type=Path, help="plain-augmentation arm (the ablation)")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seed", type=int, default=900_000)
    ap.add_argument("--out", type=Path, help="write the report as JSON here")
    ap.add_argument("--markdown", type=Path, help="print the tables of a report JSON and stop")
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    adapters = {"gdio": CalcaneusAdapter(args.weights)}
    if args.plain_weights:
        adapters["plain"] = CalcaneusAdapter(args.plain_weights)
    report = evaluate(adapters, args.n, args.seed)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text)
    for arm in adapters:
        for how in ("given", "predicted"):
            r = report[arm][how]
            print(f"{arm:5s} {how:9s} mAP {r['mAP']:.4f} F1-C {r['f1_macro']:.4f} "
                  f"F1-O {r['f1_micro']:.4f} exact {r['exact_match']:.4f}")  # fmt: skip
    print("mask Dice vs fine truth (median):", report["mask_dice_vs_fine_truth_median"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
