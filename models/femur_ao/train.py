"""Train the femur AO model in one command, deterministically from the seed.

    python -m models.femur_ao.train --data phantom|PATH --recipe demo --out DIR --seed N

The ``demo`` recipe renders the phantoms once, runs phase 1 (STL, alpha 0.4 complemented to 0.6
at a fixed epoch), then phase 2 in the same process (continues from phase 1's best epoch with
input-noise augmentation and a lower learning rate), and exports the best phase-2 epoch to
``DIR/export`` (ONNX + sha256 manifest). Epoch counts decide when each phase stops; ``--minutes``
is only an optional safety cap (off by default) and a run it cuts short says so in its metrics.
Without ``--recipe`` one phase runs with the flags given (``--epochs``, ``--init``, ...).

Loss (paper eq. 1, 2, 5, 6): L = (1 - alpha) * L_class + alpha * L_uloc, where L_class is the
cross-entropy of the prediction layer for the three scenarios (the 6-class one weighted with
w_c = Z / freq(c), Z making the mean weight 1) and L_uloc the cross-entropy of the STL
localisation branch; alpha starts small and is complemented (alpha -> 1 - alpha) at
``--switch-epoch`` or, when that is not given, once the validation loss stops improving for three
epochs. The best epoch by validation loss is kept ("tested at minimum validation loss").
Held-out metrics are written to ``DIR/metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.femur_ao.data import FemurSet, folder_set, phantom_set, targets
from models.femur_ao.labels import GROUP_SLICES
from models.femur_ao.networks import CONFIGS, build, count_parameters


@dataclass(frozen=True)
class Phase:
    name: str
    epochs: int
    lr: float
    alpha: float  # STL alpha at the start of the phase
    switched: bool  # alpha already complemented
    switch_epoch: int | None  # complement alpha after this epoch (None: validation rule)
    noise_aug: float  # max std of the added input noise


@dataclass(frozen=True)
class Recipe:
    phantoms: int
    test_phantoms: int
    phase1: Phase
    phase2: Phase


# The shipped demo weights' recipe. Epoch counts were chosen so that the whole command (render,
# both phases, export) takes about 8 minutes on one thread of a 2-core CPU (MODEL_CARD.md).
RECIPES = {
    "demo": Recipe(
        phantoms=1000,
        test_phantoms=170,
        phase1=Phase("phase1", 16, 1e-3, 0.4, False, 7, 0.0),
        phase2=Phase("phase2", 8, 5e-4, 0.6, True, None, 0.6),
    )
}


def class_weights(subtype_targets: np.ndarray, n: int = 6) -> torch.Tensor:
    """w_c = Z / freq(c) over the fracture subtypes, Z so that the weights average to 1."""
    valid = subtype_targets[subtype_targets >= 0]
    freq = np.bincount(valid, minlength=n).astype(np.float64) / max(len(valid), 1)
    w = np.where(freq > 0, 1.0 / np.maximum(freq, 1e-12), 0.0)
    w = w * (np.count_nonzero(w) / w.sum()) if w.sum() > 0 else np.ones(n)
    return torch.tensor(w, dtype=torch.float32)


def scenario_loss(logits: torch.Tensor, tgt: dict[str, torch.Tensor], w6: torch.Tensor | None):
    loss = logits.new_zeros(())
    for group, sl in GROUP_SLICES.items():
        t = tgt[group]
        if (t >= 0).any():
            weight = w6 if group == "subtype" else None
            loss = loss + F.cross_entropy(logits[:, sl], t, weight=weight, ignore_index=-100)
    return loss


def augment(x: torch.Tensor, gen: torch.Generator, noise: float = 0.0) -> torch.Tensor:
    """Small random zoom, rotation and shift (the paper's augmentation, milder) and gamma."""
    b = x.shape[0]
    s = 1.0 + (torch.rand(b, generator=gen) - 0.5) * 0.2
    a = (torch.rand(b, generator=gen) - 0.5) * math.radians(12)
    t = (torch.rand(b, 2, generator=gen) - 0.5) * 0.12
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = s * torch.cos(a), -s * torch.sin(a)
    theta[:, 1, 0], theta[:, 1, 1] = s * torch.sin(a), s * torch.cos(a)
    theta[:, :, 2] = t
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    gain = 1.0 + (torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 0.3
    x = x * gain + (torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 0.3
    if noise > 0:  # pixel noise of a random strength per image (robustness to noisier films)
        sigma = torch.rand(b, 1, 1, 1, generator=gen) * noise
        x = x + sigma * torch.randn(x.shape, generator=gen)
    return x


def load_data(
    data: str,
    input_size: int,
    seed: int,
    n_phantoms: int,
    out: Path,
    workers: int,
    n_test: int | None = None,
):
    """(train, validation, test) sets. Phantoms: disjoint seed ranges, rendered once and cached
    in ``out``; a folder: 70/10/20 split."""
    if data == "phantom":
        n_test = n_test if n_test is not None else max(n_phantoms // 6, 20)
        parts = []
        for name, seeds in (
            ("train", range(seed * 100_000, seed * 100_000 + n_phantoms)),
            ("test", range(seed * 100_000 + 50_000, seed * 100_000 + 50_000 + n_test)),
        ):
            path = out / f"phantoms_{input_size}_{seed}_{len(seeds)}_{name}.npz"
            if path.is_file():
                parts.append(FemurSet.load(path))
            else:
                t0 = time.perf_counter()
                ds = phantom_set(seeds, input_size, workers=workers)
                ds.save(path)
                print(
                    f"rendered {len(ds)} {name} femurs in {time.perf_counter() - t0:.0f} s",
                    flush=True,
                )
                parts.append(ds)
        train_all, test = parts
        n_val = max(len(train_all) // 10, 1)
        return _subset(train_all, slice(n_val, None)), _subset(train_all, slice(0, n_val)), test
    full = folder_set(Path(data), input_size)
    order = np.random.default_rng(seed).permutation(len(full))
    n_te, n_val = int(0.2 * len(full)), int(0.1 * len(full))
    return (
        _subset(full, order[n_te + n_val :]),
        _subset(full, order[n_te : n_te + n_val]),
        _subset(full, order[:n_te]),
    )


def _subset(ds: FemurSet, idx) -> FemurSet:
    return FemurSet(ds.x[idx], ds.y[idx], ds.boxes[idx], ds.sides[idx])


def evaluate(net, ds: FemurSet, batch: int = 64) -> dict:
    """Validation loss and raw outputs (probabilities per scenario, CAMs, theta)."""
    net.eval()
    outs = {"logits": [], "cams": [], "theta": []}
    with torch.no_grad():
        for i in range(0, len(ds), batch):
            x = torch.from_numpy(ds.x[i : i + batch].astype(np.float32))[:, None]
            o = net(x)
            for k in outs:
                outs[k].append(o[k])
    logits = torch.cat(outs["logits"])
    tgt = {k: torch.from_numpy(v) for k, v in targets(ds.y).items()}
    loss = float(scenario_loss(logits, tgt, None))
    probs = {g: torch.softmax(logits[:, sl], 1).numpy() for g, sl in GROUP_SLICES.items()}
    return {
        "loss": loss,
        "probs": probs,
        "cams": torch.cat(outs["cams"]).numpy(),
        "theta": torch.cat(outs["theta"]).numpy(),
    }


def train_phase(
    net: torch.nn.Module,
    train: FemurSet,
    val: FemurSet,
    phase: Phase,
    best_path: Path,
    gen: torch.Generator,
    batch: int,
    minutes: float | None = None,
) -> dict:
    """Train ``phase.epochs`` epochs, keep the best by validation loss in ``best_path`` and
    load it back into ``net``. Returns the phase's history and how it stopped."""
    tgt_train = targets(train.y)
    w6 = class_weights(tgt_train["subtype"])
    print(f"[{phase.name}] 6-class weights w_c = Z/freq(c):", [round(float(v), 3) for v in w6])
    loc_params = list(net.localiser.parameters()) if net.localiser is not None else []
    loc_ids = {id(p) for p in loc_params}
    groups = [{"params": [p for p in net.parameters() if id(p) not in loc_ids], "lr": phase.lr}]
    if loc_params:  # layer-wise learning rate for the localiser (the paper's remedy for STN)
        groups.append({"params": loc_params, "lr": phase.lr * 0.1})
    opt = torch.optim.AdamW(groups, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    alpha, switched, best, stale = phase.alpha, phase.switched, math.inf, 0
    history, stopped_by, best_epoch = [], "epochs", -1
    t_start = time.perf_counter()
    x_all = torch.from_numpy(train.x.astype(np.float32))[:, None]
    t_all = {k: torch.from_numpy(v) for k, v in tgt_train.items()}
    for epoch in range(phase.epochs):
        net.train()
        order = torch.randperm(len(train), generator=gen)
        total, n = 0.0, 0
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            x = augment(x_all[idx], gen, phase.noise_aug)
            t = {k: v[idx] for k, v in t_all.items()}
            out = net(x)
            l_class = scenario_loss(out["logits"], t, w6)
            l_loc = scenario_loss(out["loc_logits"], t, None)
            loss = (1 - alpha) * l_class + alpha * l_loc
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            n += len(idx)
        sched.step()
        ev = evaluate(net, val)
        acc = float((ev["probs"]["type"].argmax(1) == targets(val.y)["type"]).mean())
        elapsed = (time.perf_counter() - t_start) / 60
        history.append(
            {
                "phase": phase.name,
                "epoch": epoch,
                "train_loss": total / n,
                "val_loss": ev["loss"],
                "alpha": alpha,
            }
        )
        print(
            f"[{phase.name}] epoch {epoch:3d} train {total / n:.4f} val {ev['loss']:.4f} "
            f"3-class acc {acc:.3f} alpha {alpha:.2f} "
            f"scale {float(np.mean(ev['theta'][:, 0, 0])):.3f} {elapsed:.1f} min",
            flush=True,
        )
        if ev["loss"] < best - 1e-4 or best_epoch < 0:
            best, stale, best_epoch = ev["loss"], 0, epoch
            torch.save(net.state_dict(), best_path)
        else:
            stale += 1
        plateau = phase.switch_epoch is None and stale >= 3
        if not switched and (plateau or epoch == phase.switch_epoch):
            alpha, switched, stale = 1 - alpha, True, 0  # the paper's alpha -> 1 - alpha
            print(f"[{phase.name}] alpha complemented to {alpha:.2f}", flush=True)
        if minutes is not None and elapsed > minutes and epoch < phase.epochs - 1:
            stopped_by = f"safety cap of {minutes} min (not reproducible from the seed)"
            print(f"[{phase.name}] stopped by the {minutes} min safety cap", flush=True)
            break
    net.load_state_dict(torch.load(best_path, weights_only=True))
    return {
        "phase": asdict(phase),
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "best_val_loss": best,
        "minutes": (time.perf_counter() - t_start) / 60,
        "stopped_by": stopped_by,
        "history": history,
    }


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="'phantom' or a folder with labels.csv")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--recipe", choices=sorted(RECIPES), help="the whole two-phase recipe")
    ap.add_argument("--config", default="demo", choices=sorted(CONFIGS))
    ap.add_argument("--pooling", default=None, choices=["avg", "max", "lse"])
    ap.add_argument("--stn", default=None, choices=["a-stn", "aff-stn", "none"])
    ap.add_argument("--epochs", type=int, default=40, help="epochs (single-phase mode)")
    ap.add_argument("--phase1-epochs", type=int, help="recipe: override phase 1's epochs")
    ap.add_argument("--phase2-epochs", type=int, help="recipe: override phase 2's epochs")
    ap.add_argument("--switch-epoch", type=int, help="complement alpha after this epoch")
    ap.add_argument(
        "--minutes", type=float, default=None, help="optional safety cap per phase (default off)"
    )
    ap.add_argument("--phantoms", type=int, help="bilateral phantoms to render (default 1500)")
    ap.add_argument("--test-phantoms", type=int, help="held-out phantoms (default phantoms/6)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--alpha", type=float, default=0.4, help="initial STL alpha")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2, help="processes rendering phantoms")
    ap.add_argument("--init", type=Path, help="state dict to start from (continue a run)")
    ap.add_argument("--noise-aug", type=float, default=0.0, help="max added noise std (inputs)")
    ap.add_argument(
        "--alpha-switched", action="store_true", help="alpha already complemented (a continued run)"
    )
    ap.add_argument("--export", type=Path, help="recipe: ONNX + manifest folder (DIR/export)")
    return ap


def _phases(args) -> tuple[list[Phase], int, int | None]:
    """The phases to run, the phantom count and the held-out phantom count."""
    if args.recipe:
        r = RECIPES[args.recipe]
        p1, p2 = r.phase1, r.phase2
        if args.phase1_epochs is not None:
            p1 = replace(p1, epochs=args.phase1_epochs)
        if args.switch_epoch is not None:
            p1 = replace(p1, switch_epoch=args.switch_epoch)
        elif p1.switch_epoch is not None and p1.switch_epoch >= p1.epochs:
            p1 = replace(p1, switch_epoch=max(p1.epochs // 2 - 1, 0))
        if args.phase2_epochs is not None:
            p2 = replace(p2, epochs=args.phase2_epochs)
        n = args.phantoms if args.phantoms is not None else r.phantoms
        n_test = args.test_phantoms if args.test_phantoms is not None else r.test_phantoms
        return [p1, p2], n, n_test
    single = Phase(
        "train",
        args.epochs,
        args.lr,
        args.alpha,
        args.alpha_switched,
        args.switch_epoch,
        args.noise_aug,
    )
    return [single], args.phantoms if args.phantoms is not None else 1500, args.test_phantoms


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    t_run = time.perf_counter()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = CONFIGS[args.config]
    overrides = {k: v for k, v in (("pooling", args.pooling), ("stn", args.stn)) if v}
    if overrides:
        cfg = replace(cfg, **overrides)
    phases, n_phantoms, n_test = _phases(args)
    train, val, test = load_data(
        args.data, cfg.input_size, args.seed, n_phantoms, args.out, args.workers, n_test
    )
    print(f"femurs: train {len(train)}, validation {len(val)}, test {len(test)}", flush=True)

    net = build(cfg)
    if args.init:
        net.load_state_dict(torch.load(args.init, weights_only=True))
    print(f"{cfg.name}: {count_parameters(net):,} parameters", flush=True)
    gen = torch.Generator().manual_seed(args.seed)
    runs = []
    for phase in phases:
        # Each phase starts from the previous phase's best epoch (loaded by train_phase).
        best_path = args.out / ("best.pt" if phase is phases[-1] else f"best_{phase.name}.pt")
        runs.append(train_phase(net, train, val, phase, best_path, gen, args.batch, args.minutes))
    from models.femur_ao.metrics import held_out_report

    report = held_out_report(net, test, evaluate(net, test), cfg)
    report.update(
        {
            "config": cfg.to_json(),
            "seed": args.seed,
            "data": args.data,
            "recipe": args.recipe,
            "phantoms": n_phantoms if args.data == "phantom" else None,
            "phases": [{k: v for k, v in r.items() if k != "history"} for r in runs],
            "history": [h for r in runs for h in r["history"]],
        }
    )
    (args.out / "config.json").write_text(json.dumps(cfg.to_json(), indent=2))
    if args.recipe:
        from models.femur_ao.export import export_trained

        report["train_minutes"] = (time.perf_counter() - t_run) / 60
        (args.out / "metrics.json").write_text(json.dumps(report, indent=2))
        export_dir = args.export or args.out / "export"
        command = (
            f"python -m models.femur_ao.train --data {args.data} --recipe {args.recipe} "
            f"--out DIR --seed {args.seed}"
        )
        export_trained(net, cfg, export_dir, report, test.x[:16, None].astype(np.float32), command)
    report["run_minutes"] = (time.perf_counter() - t_run) / 60
    (args.out / "metrics.json").write_text(json.dumps(report, indent=2))
    print(
        json.dumps(
            {k: v for k, v in report.items() if k not in ("history", "config", "phases")},
            indent=2,
        )
    )
    print(f"run took {report['run_minutes']:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
