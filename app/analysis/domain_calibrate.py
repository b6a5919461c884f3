"""Fit and calibrate a task's input-domain model on its phantoms, through the product path.

``python -m app.analysis.domain_calibrate --task femur-ao --n-train 120 --n-heldout 200
[--n-verify 100] [--out models/femur_ao/weights/domain.json] [--pin]``

Each phantom is written as a study (the task's ``phantom.write_study``), loaded by
``app.study.load``, its inputs resolved by ``resolve_inputs`` and its features taken by the
adapter's own ``domain_features`` (its own preprocessing): exactly what a run computes. Three
disjoint seed ranges: fitting, the held-out set whose distances set the threshold, and a
verification set that measures the share of new phantoms that get calls. ``--pin`` writes the
file's sha256 to ``models/<task>/domain_digest.py`` (``app.engine.domain.load_domain_model``
refuses a shipped domain.json that does not match it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from app.analysis.request import resolve_inputs
from app.analysis.tasks import get_adapter, get_spec, phantom_module
from app.engine.domain import SCALE_FLOOR, DomainModel, domain_hook
from app.study import load

# Seed ranges far from those training, evaluation and the demos use (0..~10^4, 900000+).
TRAIN_SEED0, HELDOUT_SEED0, VERIFY_SEED0 = 7_100_000, 7_200_000, 7_300_000

_FEMUR_SHAPES = ((410, 500), (614, 750), (820, 1000))
_FEMUR_VIEWS = ("bilateral", "bilateral", "right", "left")
_LUMBAR_MATRICES = (288, 320, 384, 448)


def phantom_options(task_id: str, seed: int) -> dict:
    """The phantom variations a task's product path accepts (sizes, single-hip views), so the
    domain covers the phantoms users and evaluations analyse, not only the training size."""
    if task_id == "femur-ao":
        return {"shape": _FEMUR_SHAPES[seed % 3], "view": _FEMUR_VIEWS[(seed // 3) % 4]}
    if task_id == "lumbar-mri":
        # matrix and pixel size as training (models/lumbar_ccfnet/data.py) and the evaluation
        # vary them; the default size alone left the demo studies (320 px of 0.84 mm) outside
        rng = np.random.default_rng(seed)
        size = int(rng.choice(_LUMBAR_MATRICES))
        return {"rows": size, "cols": size, "pixel_mm": float(rng.uniform(0.6, 0.9))}
    return {}


def phantom_features(task_id: str, seeds: range) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """(seed, {slot: features}) for each phantom, written, loaded and preprocessed as in a run."""
    spec = get_spec(task_id)
    adapter = get_adapter(task_id)
    phantom = phantom_module(task_id)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            sample = phantom.generate(seed, **phantom_options(task_id, seed))
            out = Path(tmp) / str(seed)
            path = phantom.write_study(sample, out)
            loaded = load(Path(path))
            request = resolve_inputs(spec, loaded, path, adapter)
            yield seed, domain_hook(adapter)(request)


def calibrate(
    task_id: str,
    n_train: int,
    n_heldout: int,
    n_verify: int,
    log: Callable[[str], None] = print,
    scale_floor: float = SCALE_FLOOR,
) -> tuple[DomainModel, dict]:
    t0 = time.perf_counter()
    train = [f for _, f in phantom_features(task_id, range(TRAIN_SEED0, TRAIN_SEED0 + n_train))]
    rows = np.concatenate([feat for f in train for feat in f.values()])
    aggregate = "median" if task_id == "cervical-fracture" else "max"
    model = DomainModel.fit(rows, aggregate=aggregate, scale_floor=scale_floor)
    log(f"fitted on {len(rows)} network images of {n_train} phantoms, shrinkage "
        f"{model.shrinkage:.3f} ({time.perf_counter() - t0:.0f} s)")  # fmt: skip

    def study_distances(seed0: int, n: int) -> list[float]:
        return [
            max(model.distance(v) for v in f.values())
            for _, f in phantom_features(task_id, range(seed0, seed0 + n))
        ]

    heldout = study_distances(HELDOUT_SEED0, n_heldout)
    model.calibrate(heldout)
    verify = study_distances(VERIFY_SEED0, n_verify) if n_verify else []
    called = [d <= model.threshold for d in verify]
    report = {
        "task": task_id,
        "seeds": {
            "train": [TRAIN_SEED0, TRAIN_SEED0 + n_train - 1],
            "heldout": [HELDOUT_SEED0, HELDOUT_SEED0 + n_heldout - 1],
            "verify": [VERIFY_SEED0, VERIFY_SEED0 + n_verify - 1] if n_verify else [],
        },
        "n_train_images": len(rows),
        "heldout_distance_max": round(max(heldout), 4),
        "threshold": round(model.threshold, 4),
        "verify_n": len(verify),
        "verify_share_called": round(float(np.mean(called)), 4) if verify else None,
        "verify_distance_max": round(max(verify), 4) if verify else None,
        "phantom_options": "models sizes/views: app.analysis.domain_calibrate.phantom_options",
        "minutes": round((time.perf_counter() - t0) / 60, 2),
    }
    model.calibration.update(report)
    return model, report


def write_pin(task_id: str, out: Path) -> Path:
    package = get_spec(task_id).adapter.split(":")[0].rpartition(".")[0]
    pin = Path(*package.split(".")) / "domain_digest.py"
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    pin.write_text(
        '"""The sha256 of this task\'s shipped ``weights/domain.json`` (the input-domain model),\n'
        "pinned in code like the weights so that widening the domain is a reviewed change.\n\n"
        f"Written by ``python -m app.analysis.domain_calibrate --task {task_id} ... --pin``.\n"
        '"""\n\n'
        f'DOMAIN_SHA256 = "{digest}"\n'
    )
    return pin


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--n-train", type=int, default=120)
    ap.add_argument("--n-heldout", type=int, default=200)
    ap.add_argument("--n-verify", type=int, default=0)
    ap.add_argument("--out", type=Path, help="default: the task's weights/domain.json")
    ap.add_argument("--pin", action="store_true", help="pin the written file's sha256 in code")
    ap.add_argument("--scale-floor", type=float, default=SCALE_FLOOR)
    args = ap.parse_args(argv)
    model, report = calibrate(
        args.task, args.n_train, args.n_heldout, args.n_verify, scale_floor=args.scale_floor
    )
    out = args.out or Path(get_adapter(args.task).default_weights_dir) / "domain.json"
    out.write_text(json.dumps(model.to_json(), indent=1))
    print(json.dumps(report, indent=2))
    print(f"wrote {out}")
    if args.pin:
        print(f"pinned in {write_pin(args.task, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
