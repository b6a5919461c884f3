"""Train the calcaneus MSRT classifier, its rough-mask U-Net and the GDIO ablation, one command.

    python -m models.calcaneus_msrt.train --data phantom|PATH --out DIR --seed N

Deterministic from the seed (one thread). It renders phantoms once (cached in DIR) or reads a
folder (``data.py``), then in one process:

1. trains the rough-mask U-Net (radiograph -> the rough mask the data carries: the paper's
   "arbitrary segmentation method trained with rough annotations");
2. trains MSRT with GridDropIn&Out (the shipped weights) and, unless ``--no-ablation``, the same
   MSRT with plain augmentation only (the paper's Table 3 ablation), same seed and epochs;
3. writes network-level held-out metrics to DIR/metrics.json and exports ONNX + manifest to
   DIR/export (GDIO arm + U-Net) and DIR/export_plain (plain arm + the same U-Net), which
   ``evaluate.py`` then scores through the product path.

Loss: binary cross-entropy on the final logits plus 0.3 x (backbone logits + mean over the three
scales' SRT logits), so every branch and its attention maps learn from the labels.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.calcaneus_msrt.data import (
    GDIO,
    CalcSet,
    folder_set,
    geometric,
    grid_drop_in_out,
    phantom_set,
)
from models.calcaneus_msrt.labels import LABELS
from models.calcaneus_msrt.metrics import choose_thresholds, multilabel_report
from models.calcaneus_msrt.networks import (
    CONFIGS,
    UNET_DEMO,
    build,
    build_unet,
    count_parameters,
)


@dataclass(frozen=True)
class Recipe:
    phantoms: int  # rendered for train + validation (10 % validation)
    test_phantoms: int  # network-level held-out set (other seeds)
    epochs: int
    lr: float
    batch: int
    unet_epochs: int
    unet_lr: float


# The first recipe (540 phantoms, 8 epochs, U-Net 5 epochs at batch 32) stopped with the
# validation loss still falling and its U-Net marking every film; this one has 2.2x the phantoms
# and about 3x the optimiser steps per network (MODEL_CARD.md has the measured times).
RECIPE = Recipe(
    phantoms=1200, test_phantoms=120, epochs=12, lr=1e-3, batch=16, unet_epochs=6, unet_lr=3e-3
)
AUX_WEIGHT = 0.3
LSE_R = 4.0  # attention-map pooling (LSE, as in WILDCAT): between average and max pooling
PRESENCE_TOP = 32  # pixels (of 128 x 128) whose mean logit is the film-level "fracture" score
UNET_BATCH = 16


def lse_pool(maps: torch.Tensor, r: float = LSE_R) -> torch.Tensor:
    """Log-sum-exp pooling of (B, C, H, W) maps to (B, C): between average (r -> 0) and max."""
    flat = maps.flatten(2)
    return (torch.logsumexp(r * flat, dim=2) - math.log(flat.shape[2])) / r


def msrt_loss(out: dict[str, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits
    aux = (
        bce(out["backbone_logits"], y)
        + torch.stack(
            [bce(out["scale_logits"][:, s], y) for s in range(out["scale_logits"].shape[1])]
        ).mean()
        # the attention maps, pooled, must predict the labels themselves (SRN's weak spatial
        # supervision): without this they only feed the SRT tokens and need not mark where a
        # label's fracture is (0.69x chance on the truth regions before, 1.48x with it:
        # MODEL_CARD.md). A weight of 1.0, or sharper pooling (r = 8), made some labels' maps
        # sharper and others point away from their region; this is the most even.
        + bce(lse_pool(out["maps"]), y)
    )
    return bce(out["logits"], y) + AUX_WEIGHT * aux


def _tensors(ds: CalcSet) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.stack([ds.x, ds.m], 1).astype(np.float32))
    return x, torch.from_numpy(ds.y)


def predict(net, ds: CalcSet, batch: int = 64) -> np.ndarray:
    net.eval()
    x, _ = _tensors(ds)
    with torch.no_grad():
        return np.concatenate(
            [
                torch.sigmoid(net(x[i : i + batch])["logits"]).numpy()
                for i in range(0, len(x), batch)
            ]
        )


def train_msrt(cfg, train: CalcSet, val: CalcSet, recipe: Recipe, gdio: bool, seed: int,
               best_path: Path) -> tuple[torch.nn.Module, dict]:  # fmt: skip
    torch.manual_seed(seed)
    net = build(cfg)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, recipe.epochs, eta_min=recipe.lr / 10)
    x_all, y_all = _tensors(train)
    x_val, y_val = _tensors(val)
    arm = "gdio" if gdio else "plain"
    best, best_epoch, history, t0 = np.inf, -1, [], time.perf_counter()
    for epoch in range(recipe.epochs):
        net.train()
        order = torch.randperm(len(x_all), generator=gen)
        total = 0.0
        for i in range(0, len(order), recipe.batch):
            idx = order[i : i + recipe.batch]
            x = geometric(x_all[idx].clone(), gen)
            if gdio:
                x[:, 1:] = grid_drop_in_out(x[:, 1:], gen)
            loss = msrt_loss(net(x), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        net.eval()
        with torch.no_grad():
            val_loss = float(msrt_loss(net(x_val), y_val))
        p_val = predict(net, val)
        val_map = multilabel_report(val.y, p_val)["mAP"]
        history.append({"epoch": epoch, "train_loss": total / len(x_all), "val_loss": val_loss,
                        "val_mAP": val_map})  # fmt: skip
        print(f"[msrt {arm}] epoch {epoch} train {total / len(x_all):.4f} val {val_loss:.4f} "
              f"val mAP {val_map:.3f} {(time.perf_counter() - t0) / 60:.1f} min", flush=True)  # fmt: skip
        if val_loss < best:
            best, best_epoch = val_loss, epoch
            torch.save(net.state_dict(), best_path)
    net.load_state_dict(torch.load(best_path, weights_only=True))
    return net, {"arm": arm, "best_epoch": best_epoch, "best_val_loss": best,
                 "minutes": (time.perf_counter() - t0) / 60, "history": history}  # fmt: skip


def unet_inputs(ds: CalcSet) -> tuple[torch.Tensor, torch.Tensor]:
    """The U-Net reads the classifier's image block-averaged to its own size (as the adapter
    does); its target is the rough mask the data carries."""
    x = torch.from_numpy(ds.x.astype(np.float32))[:, None]
    m = torch.from_numpy(ds.m.astype(np.float32))[:, None]
    k = x.shape[-1] // UNET_DEMO.input_size
    return (F.avg_pool2d(x, k), F.avg_pool2d(m, k)) if k > 1 else (x, m)


def seg_loss(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + soft Dice pooled over the batch + an image-level term (the mean of each film's
    top ``PRESENCE_TOP`` logits, BCE against "this film has a fracture mask").

    Per-film Dice saturates on a normal film (empty target: 1 - 1/(sum p + 1) has no gradient
    left), and the first U-Net, trained so, drew the usual fracture region on every film. Pooled
    Dice and the presence term make "nothing here" a film-level decision the net must take."""
    p = torch.sigmoid(logit)
    inter = (p * target).sum()
    dice = 1 - (2 * inter + 1) / (p.sum() + target.sum() + 1)
    present = (target.flatten(1).amax(1) > 0.5).float()
    top = logit.flatten(1).topk(PRESENCE_TOP, dim=1).values.mean(1)
    presence = F.binary_cross_entropy_with_logits(top, present)
    return F.binary_cross_entropy_with_logits(logit, target) + dice + presence


def train_unet(train: CalcSet, val: CalcSet, recipe: Recipe, seed: int, best_path: Path):
    torch.manual_seed(seed)
    net = build_unet(UNET_DEMO)
    gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.Adam(net.parameters(), lr=recipe.unet_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, recipe.unet_epochs, eta_min=recipe.unet_lr / 10
    )
    x_all, m_all = unet_inputs(train)
    x_val, m_val = unet_inputs(val)
    best, best_epoch, history, t0 = np.inf, -1, [], time.perf_counter()
    for epoch in range(recipe.unet_epochs):
        net.train()
        order = torch.randperm(len(x_all), generator=gen)
        for i in range(0, len(order), UNET_BATCH):
            idx = order[i : i + UNET_BATCH]
            xm = geometric(torch.cat([x_all[idx], m_all[idx]], 1), gen)
            loss = seg_loss(net(xm[:, :1]), xm[:, 1:])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        net.eval()
        with torch.no_grad():
            logit = torch.cat([net(x_val[i : i + 64]) for i in range(0, len(x_val), 64)])
            val_loss = float(seg_loss(logit, m_val))
            pred, truth = torch.sigmoid(logit) > 0.5, m_val > 0.5
            dice = float(2 * (pred & truth).sum() / max(int(pred.sum() + truth.sum()), 1))
            # Film level: an empty prediction on a normal film, a non-empty one on a fractured
            # film (the first U-Net marked every film).
            said, has = pred.flatten(1).any(1), truth.flatten(1).any(1)
            film_acc = float((said == has).float().mean())
        history.append({"epoch": epoch, "val_loss": val_loss, "val_dice": dice,
                        "val_film_accuracy": film_acc})  # fmt: skip
        print(f"[unet] epoch {epoch} val {val_loss:.4f} dice {dice:.3f} film acc {film_acc:.3f} "
              f"{(time.perf_counter() - t0) / 60:.1f} min", flush=True)  # fmt: skip
        if val_loss < best:
            best, best_epoch = val_loss, epoch
            torch.save(net.state_dict(), best_path)
    net.load_state_dict(torch.load(best_path, weights_only=True))
    return net, {"best_epoch": best_epoch, "best_val_loss": best,
                 "minutes": (time.perf_counter() - t0) / 60, "history": history}  # fmt: skip


def load_data(data: str, size: int, seed: int, recipe: Recipe, out: Path, workers: int):
    """(train, validation, test). Phantoms: disjoint seed ranges, cached in ``out``; a folder:
    a 70/10/20 split by the seed."""
    if data == "phantom":
        parts = []
        base = 1_000_000 + seed * 100_000  # clear of the demo studies' and evaluation's seeds
        for name, seeds in (("train", range(base, base + recipe.phantoms)),
                            ("test", range(base + 50_000, base + 50_000 + recipe.test_phantoms))):  # fmt: skip
            path = out / f"phantoms_{size}_{seed}_{len(seeds)}_{name}.npz"
            if path.is_file():
                parts.append(CalcSet.load(path))
                continue
            t0 = time.perf_counter()
            ds = phantom_set(seeds, size, workers)
            ds.save(path)
            print(f"rendered {len(ds)} {name} phantoms in {time.perf_counter() - t0:.0f} s",
                  flush=True)  # fmt: skip
            parts.append(ds)
        train_all, test = parts
        n_val = max(len(train_all) // 10, 1)
        return train_all.subset(slice(n_val, None)), train_all.subset(slice(0, n_val)), test
    full = folder_set(Path(data), size)
    order = np.random.default_rng(seed).permutation(len(full))
    n_te, n_val = max(int(0.2 * len(full)), 1), max(int(0.1 * len(full)), 1)
    return (full.subset(order[n_te + n_val :]), full.subset(order[n_te : n_te + n_val]),
            full.subset(order[:n_te]))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="'phantom' or a folder with labels.csv")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default="demo", choices=sorted(CONFIGS))
    ap.add_argument("--phantoms", type=int, help=f"default {RECIPE.phantoms}")
    ap.add_argument("--test-phantoms", type=int, help=f"default {RECIPE.test_phantoms}")
    ap.add_argument("--epochs", type=int, help=f"default {RECIPE.epochs}")
    ap.add_argument("--unet-epochs", type=int, help=f"default {RECIPE.unet_epochs}")
    ap.add_argument("--no-ablation", action="store_true", help="skip the plain-augmentation arm")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2, help="processes rendering phantoms")
    args = ap.parse_args(argv)
    t_run = time.perf_counter()
    torch.set_num_threads(args.threads)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    recipe = Recipe(**{**asdict(RECIPE), **{k: v for k, v in (
        ("phantoms", args.phantoms), ("test_phantoms", args.test_phantoms),
        ("epochs", args.epochs), ("unet_epochs", args.unet_epochs)) if v is not None}})  # fmt: skip
    cfg = CONFIGS[args.config]
    args.out.mkdir(parents=True, exist_ok=True)
    train, val, test = load_data(args.data, cfg.input_size, args.seed, recipe, args.out,
                                 args.workers)  # fmt: skip
    print(f"calcaneus: train {len(train)}, validation {len(val)}, test {len(test)}; "
          f"{cfg.name}: {count_parameters(build(cfg)):,} parameters", flush=True)  # fmt: skip
    unet, unet_run = train_unet(train, val, recipe, args.seed, args.out / "unet.pt")
    arms = [True] if args.no_ablation else [True, False]
    report: dict = {"seed": args.seed, "data": args.data, "recipe": asdict(recipe),
                    "config": cfg.to_json(), "unet_config": UNET_DEMO.to_json(),
                    "gdio": asdict(GDIO()), "unet": unet_run, "arms": {}}  # fmt: skip
    nets = {}
    for gdio in arms:
        arm = "gdio" if gdio else "plain"
        net, run = train_msrt(cfg, train, val, recipe, gdio, args.seed,
                              args.out / f"msrt_{arm}.pt")  # fmt: skip
        # Per-label call thresholds from the validation split (never from held-out data).
        cut = choose_thresholds(val.y, predict(net, val))
        run["thresholds"] = dict(zip(LABELS, cut, strict=True))
        p_test = predict(net, test)
        run["held_out_network"] = multilabel_report(test.y, p_test, np.array(cut), LABELS)
        run["held_out_network_at_0.5"] = multilabel_report(test.y, p_test, labels=LABELS)
        report["arms"][arm] = run
        nets[arm] = net
    report["train_minutes"] = (time.perf_counter() - t_run) / 60
    command = (f"python -m models.calcaneus_msrt.train --data {args.data} --out DIR "
               f"--seed {args.seed}")  # fmt: skip
    from models.calcaneus_msrt.export import export_trained

    check = (np.stack([test.x[:8], test.m[:8]], 1).astype(np.float32),
             unet_inputs(test.subset(slice(0, 8)))[0].numpy())  # fmt: skip
    for arm, net in nets.items():
        folder = args.out / ("export" if arm == "gdio" else f"export_{arm}")
        export_trained(net, cfg, unet, folder, report, arm, check, command)
    report["run_minutes"] = (time.perf_counter() - t_run) / 60
    (args.out / "metrics.json").write_text(json.dumps(report, indent=2))
    for arm, run in report["arms"].items():
        h = run["held_out_network"]
        print(
            f"{arm}: held-out (network level, phantom rough masks) mAP {h['mAP']:.4f} "
            f"F1-C {h['f1_macro']:.4f} exact {h['exact_match']:.4f}"
        )
    print(f"run took {report['run_minutes']:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
