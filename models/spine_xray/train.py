"""Train both U-Nets and the dual-view classifier in one command, deterministically from the seed.

    python -m models.spine_xray.train --data phantom|PATH --out DIR --seed N [--export DIR]
        [--n-mild N] [--unets-onnx WEIGHTS_DIR]

Phantoms are rendered once (cached in DIR), then the AP U-Net, the LAT U-Net and the classifier
train one after another on one thread, and the result is exported to ``DIR/export`` (ONNX +
sha256 manifest, what ``models/spine_xray/weights`` ships). ``--data PATH`` reads the paper's
folder layout (``models/spine_xray/data.py``) through the same preprocessing, split 80/20.

Segmentation: random crops of the network input (fully convolutional, so inference runs on the
whole input), loss = binary cross-entropy + soft Dice per mask (the paper's models missed thin
structures; Dice weighs each mask equally whatever its size). Classification: the paper's Adam
and head (dense 128), a higher learning rate than its 1e-4 because the demo encoders start from
scratch, not from ImageNet; the epoch with the lowest validation loss is kept.

``--n-mild N`` adds N mild wedge phantoms (anterior height ``phantom.MILD_WEDGE_RATIO`` of the
body's, milder than the default draw's 45-75 %) and N normal ones to the classifier's training
set, and a tenth as many of each to its validation set, all from their own seed ranges. The
normals keep the classes balanced: with the wedges alone (63 % damaged) the demo's normal study
went to P(damaged) 0.55. ``--unets-onnx DIR`` retrains the classifier alone: the U-Nets
are not trained and DIR's U-Net ONNX files are shipped unchanged (the classifier reads the
images, not the masks, so it needs nothing from them).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.spine_xray.data import SpineSet, folder_set, phantom_set
from models.spine_xray.metrics import accuracy, dice_parts, roc_auc
from models.spine_xray.networks import (
    CONFIGS,
    VIEW_MASKS,
    SpineConfig,
    build_classifier,
    build_unet,
    count_parameters,
)
from models.spine_xray.phantom import MILD_WEDGE_RATIO


@dataclass(frozen=True)
class Recipe:
    phantoms: int
    val_phantoms: int
    seg_epochs: int
    seg_crop: int
    seg_batch: int
    seg_lr: float
    cls_epochs: int
    cls_batch: int
    cls_lr: float


MILD_OPTIONS = {"damaged": True, "damage_type": "wedge", "wedge_ratio": MILD_WEDGE_RATIO}
# --n-mild's sets: seed offset within a training seed's block of 100,000 (train: +0..,
# validation: +50,000..), the share of N, generate() options, and whether it trains or validates.
# Held-out evaluation uses 700,000.. and its mild slice 960,000.. (evaluate.py). Named *mild /
# *normal, never *_val: export.py reads the one validation file phantoms_*_val.npz.
MILD_SETS = {
    "trainmild": (80_000, 1.0, MILD_OPTIONS, "train"),
    "valmild": (90_000, 0.1, MILD_OPTIONS, "val"),
    "trainnormal": (60_000, 1.0, {"damaged": False}, "train"),
    "valnormal": (70_000, 0.1, {"damaged": False}, "val"),
}

# The shipped demo weights' recipe: sized for about 15 minutes on one thread (MODEL_CARD.md).
DEMO_RECIPE = Recipe(
    phantoms=1000, val_phantoms=100, seg_epochs=5, seg_crop=96, seg_batch=8, seg_lr=3e-3,
    cls_epochs=15, cls_batch=16, cls_lr=2e-3,
)  # fmt: skip


def _phantoms(path: Path, seeds: range, seg: int, cls: int, workers: int, **options) -> SpineSet:
    """Render ``seeds`` (``options`` to ``phantom.generate``) or read them cached at ``path``."""
    if path.is_file():
        return SpineSet.load(path)
    t0 = time.perf_counter()
    ds = phantom_set(seeds, seg, cls, workers, **options)
    ds.save(path)
    print(f"rendered {len(ds)} phantoms ({path.name}) in {time.perf_counter() - t0:.0f} s",
          flush=True)  # fmt: skip
    return ds


def load_data(data: str, cfg: SpineConfig, recipe: Recipe, seed: int, out: Path, workers: int,
              n_mild: int = 0):  # fmt: skip
    """(train, validation): phantoms from disjoint seed ranges, cached in ``out``; or a folder's
    cases split 80/20 by the seed. ``n_mild`` mild wedge phantoms and as many normal ones join
    training (a tenth as many of each join validation)."""
    seg, cls = cfg.unet.input_size, cfg.classifier.input_size
    if data == "phantom":
        base = seed * 100_000
        pre = f"phantoms_{seg}_{cls}_{seed}"
        train = _phantoms(out / f"{pre}_{recipe.phantoms}_train.npz",
                          range(base, base + recipe.phantoms), seg, cls, workers)  # fmt: skip
        val = _phantoms(out / f"{pre}_{recipe.val_phantoms}_val.npz",
                        range(base + 50_000, base + 50_000 + recipe.val_phantoms), seg, cls,
                        workers)  # fmt: skip
        parts = {"train": [train], "val": [val]}
        for name, (offset, share, options, split) in MILD_SETS.items() if n_mild else ():
            n = max(1, round(n_mild * share))
            parts[split].append(_phantoms(out / f"{pre}_{n}_{name}.npz",
                                          range(base + offset, base + offset + n), seg, cls,
                                          workers, **options))  # fmt: skip
        return SpineSet.concat(*parts["train"]), SpineSet.concat(*parts["val"])
    full = folder_set(Path(data), seg, cls)
    order = np.random.default_rng(seed).permutation(len(full))
    n_val = max(1, len(full) // 5)
    return full.subset(order[n_val:]), full.subset(order[:n_val])


def _intensity(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    b = x.shape[0]
    gain = 1.0 + (torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 0.3
    return x * gain + (torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 0.2


def seg_batch(x: np.ndarray, m: np.ndarray, idx: np.ndarray, crop: int, gen: torch.Generator):
    """Random crops around the spine (the Vertebra mask's mean column, +- half a crop) with
    random left-right flips: an input of the full size is 4x dearer and mostly background."""
    xs, ms = [], []
    size = x.shape[-1]
    for i in idx:
        cols = np.nonzero(m[i, -1].any(0))[0]  # Vertebra is the last mask of both views
        centre = int(cols.mean()) if cols.size else size // 2
        jitter = int(torch.randint(-crop // 2, crop // 2 + 1, (1,), generator=gen))
        c0 = int(np.clip(centre + jitter - crop // 2, 0, size - crop))
        r0 = int(torch.randint(0, size - crop + 1, (1,), generator=gen))
        a = x[i, r0 : r0 + crop, c0 : c0 + crop].astype(np.float32)
        b = m[i, :, r0 : r0 + crop, c0 : c0 + crop].astype(np.float32)
        if bool(torch.rand(1, generator=gen) < 0.5):
            a, b = a[:, ::-1], b[:, :, ::-1]
        xs.append(a.copy())
        ms.append(b.copy())
    return _intensity(torch.from_numpy(np.stack(xs))[:, None], gen), torch.from_numpy(np.stack(ms))


def seg_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + (1 - soft Dice), the Dice taken per mask over the whole batch."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum(dim=(0, 2, 3))
    denom = p.sum(dim=(0, 2, 3)) + target.sum(dim=(0, 2, 3))
    return bce + (1 - (2 * inter + 1) / (denom + 1)).mean()


def predict_masks(net, x: np.ndarray, batch: int = 8) -> np.ndarray:
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i : i + batch].astype(np.float32))[:, None]
            out.append((torch.sigmoid(net(xb)) >= 0.5).numpy())
    return np.concatenate(out)


def val_dice(net, x: np.ndarray, m: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    """Pooled Dice per mask on the validation inputs (network resolution)."""
    pred = predict_masks(net, x)
    out = {}
    for k, name in enumerate(names):
        num, den = (
            sum(v)
            for v in zip(*(dice_parts(pred[i, k], m[i, k]) for i in range(len(x))), strict=True)
        )
        out[name] = num / den if den else 1.0
    return out


def train_unet(cfg: SpineConfig, view: str, train: SpineSet, val: SpineSet, r: Recipe,
               gen: torch.Generator) -> tuple[torch.nn.Module, dict]:  # fmt: skip
    net = build_unet(cfg, view)
    x, m = getattr(train, view), getattr(train, f"{view}_masks")
    usable = np.nonzero(train.has_masks)[0]
    opt = torch.optim.Adam(net.parameters(), lr=r.seg_lr)
    steps = r.seg_epochs * math.ceil(len(usable) / r.seg_batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, r.seg_lr, total_steps=max(steps, 1))
    t0, history = time.perf_counter(), []
    for epoch in range(r.seg_epochs):
        net.train()
        order = usable[torch.randperm(len(usable), generator=gen).numpy()]
        total = 0.0
        for i in range(0, len(order), r.seg_batch):
            xb, mb = seg_batch(x, m, order[i : i + r.seg_batch], r.seg_crop, gen)
            loss = seg_loss(net(xb), mb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(xb)
        history.append(total / len(order))
        print(f"[{view} U-Net] epoch {epoch} loss {history[-1]:.4f} "
              f"{(time.perf_counter() - t0) / 60:.1f} min", flush=True)  # fmt: skip
    vm = np.nonzero(val.has_masks)[0]
    scores = val_dice(
        net, getattr(val, view)[vm], getattr(val, f"{view}_masks")[vm], VIEW_MASKS[view]
    )
    print(f"[{view} U-Net] validation Dice {json.dumps({k: round(v, 3) for k, v in scores.items()})}",
          flush=True)  # fmt: skip
    return net, {"loss": history, "val_dice": scores, "minutes": (time.perf_counter() - t0) / 60}


def _cls_aug(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Small zoom and shift, intensity gain and offset. No rotation (the column's angulation is
    part of the damage) and no flips (a lateral view mirrored faces the other way: with a few
    hundred cases that doubles what the encoder must learn)."""
    b = x.shape[0]
    s = 1.0 + (torch.rand(b, generator=gen) - 0.5) * 0.1
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = s
    theta[:, 1, 1] = s
    theta[:, :, 2] = (torch.rand(b, 2, generator=gen) - 0.5) * 0.08
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return _intensity(F.grid_sample(x, grid, padding_mode="zeros", align_corners=False), gen)


def classify(net, ap: np.ndarray, lat: np.ndarray, batch: int = 32) -> np.ndarray:
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(ap), batch):
            a = torch.from_numpy(ap[i : i + batch].astype(np.float32))[:, None]
            b = torch.from_numpy(lat[i : i + batch].astype(np.float32))[:, None]
            out.append(torch.softmax(net(a, b), 1)[:, 1].numpy())
    return np.concatenate(out)


def train_classifier(cfg: SpineConfig, train: SpineSet, val: SpineSet, r: Recipe,
                     gen: torch.Generator, best_path: Path) -> tuple[torch.nn.Module, dict]:  # fmt: skip
    net = build_classifier(cfg)
    ap = torch.from_numpy(train.ap_cls.astype(np.float32))[:, None]
    lat = torch.from_numpy(train.lateral_cls.astype(np.float32))[:, None]
    y = torch.from_numpy(train.y)
    opt = torch.optim.Adam(net.parameters(), lr=r.cls_lr, weight_decay=1e-4)
    steps = r.cls_epochs * math.ceil(len(y) / r.cls_batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, r.cls_lr, total_steps=max(steps, 1))
    t0, history, best, best_epoch = time.perf_counter(), [], math.inf, -1
    for epoch in range(r.cls_epochs):
        net.train()
        order = torch.randperm(len(y), generator=gen)
        total = 0.0
        for i in range(0, len(order), r.cls_batch):
            idx = order[i : i + r.cls_batch]
            loss = F.cross_entropy(net(_cls_aug(ap[idx], gen), _cls_aug(lat[idx], gen)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        p = classify(net, val.ap_cls, val.lateral_cls)
        p_t = np.clip(np.where(val.y == 1, p, 1 - p), 1e-7, 1)
        val_loss = float(-np.log(p_t).mean())
        history.append({"epoch": epoch, "train_loss": total / len(y), "val_loss": val_loss,
                        "val_accuracy": accuracy(val.y, p), "val_auc": roc_auc(val.y, p)})  # fmt: skip
        print(f"[classifier] epoch {epoch} train {total / len(y):.4f} val {val_loss:.4f} "
              f"acc {history[-1]['val_accuracy']:.3f} auc {history[-1]['val_auc']:.3f} "
              f"{(time.perf_counter() - t0) / 60:.1f} min", flush=True)  # fmt: skip
        if val_loss < best:
            best, best_epoch = val_loss, epoch
            torch.save(net.state_dict(), best_path)
    net.load_state_dict(torch.load(best_path, weights_only=True))
    return net, {"history": history, "best_epoch": best_epoch,
                 "best": history[best_epoch], "minutes": (time.perf_counter() - t0) / 60}  # fmt: skip


def _stage_seed(seed: int, stage: int) -> torch.Generator:
    """Seed torch's global RNG (weight initialisation) and return the stage's own generator."""
    torch.manual_seed(seed * 1000 + stage)
    return torch.Generator().manual_seed(seed * 1000 + stage)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="'phantom' or a folder in the paper's layout")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default="demo", choices=sorted(CONFIGS))
    ap.add_argument("--phantoms", type=int, help="training phantoms (default: the recipe's)")
    ap.add_argument("--val-phantoms", type=int)
    ap.add_argument("--seg-epochs", type=int)
    ap.add_argument("--cls-epochs", type=int)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1, help="processes rendering phantoms")
    ap.add_argument("--export", type=Path, help="ONNX + manifest folder (default DIR/export)")
    lo, hi = MILD_WEDGE_RATIO
    ap.add_argument("--n-mild", type=int, default=0,
                    help=f"phantoms: extra mild wedge studies (anterior height {lo}-{hi} of the "
                         "body's)")  # fmt: skip
    ap.add_argument("--unets-onnx", type=Path,
                    help="weights folder whose U-Net ONNX files are kept: train the classifier "
                         "alone")  # fmt: skip
    args = ap.parse_args(argv)
    if args.unets_onnx is not None:  # before minutes of phantoms
        from models.spine_xray.export import FILES

        for view in ("ap", "lateral"):
            if not (args.unets_onnx / FILES[view]).is_file():
                raise SystemExit(f"{args.unets_onnx / FILES[view]}: no such file (--unets-onnx "
                                 "wants a weights folder with both U-Nets)")  # fmt: skip
    t_run = time.perf_counter()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = CONFIGS[args.config]
    r = DEMO_RECIPE
    overrides = {"phantoms": args.phantoms, "val_phantoms": args.val_phantoms,
                 "seg_epochs": args.seg_epochs, "cls_epochs": args.cls_epochs}  # fmt: skip
    r = Recipe(**{**r.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
    n_mild = args.n_mild if args.data == "phantom" else 0
    train, val = load_data(args.data, cfg, r, args.seed, args.out, args.workers, n_mild)
    print(
        f"cases: train {len(train)} ({int(train.y.sum())} damaged), validation {len(val)}",
        flush=True,
    )
    nets, report = {}, {"config": cfg.to_json(), "recipe": r.__dict__, "seed": args.seed,
                        "data": args.data, "n_mild": n_mild,
                        "unets_onnx": str(args.unets_onnx) if args.unets_onnx else None}  # fmt: skip
    # Each network starts from its own seed, so one stage can be re-run alone identically.
    for stage, view in enumerate(() if args.unets_onnx else ("ap", "lateral")):
        gen = _stage_seed(args.seed, stage)
        nets[view], report[f"unet_{view}"] = train_unet(cfg, view, train, val, r, gen)
        torch.save(nets[view].state_dict(), args.out / f"unet_{view}.pt")
    nets["classifier"], report["classifier"] = train_classifier(
        cfg, train, val, r, _stage_seed(args.seed, 2), args.out / "classifier.pt"
    )
    report["parameters"] = {k: count_parameters(v) for k, v in nets.items()}
    report["train_minutes"] = (time.perf_counter() - t_run) / 60
    (args.out / "config.json").write_text(json.dumps(cfg.to_json(), indent=2))
    (args.out / "metrics.json").write_text(json.dumps(report, indent=2))
    from models.spine_xray.export import export_all, training_command

    export_all(nets, cfg, args.export or args.out / "export", report, val,
               training_command(report), unets_from=args.unets_onnx)  # fmt: skip
    report["run_minutes"] = (time.perf_counter() - t_run) / 60
    (args.out / "metrics.json").write_text(json.dumps(report, indent=2))
    print(f"run took {report['run_minutes']:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
