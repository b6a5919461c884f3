"""Train CCF-Net in one seeded command and export the result.

    python -m models.lumbar_ccfnet.train --data phantom --out DIR --seed 0
    python -m models.lumbar_ccfnet.train --data tianchi PATH --out DIR --seed 0
    python -m models.lumbar_ccfnet.train --data rsna2024 PATH --out DIR --seed 0

The paper's recipe is AdamW (lr 3e-4, weight decay 5e-4), cosine annealing with warm restarts,
60 epochs, 512 px, random rotation / translation / crop / noise. The demo recipe (the defaults,
which made the shipped weights) keeps AdamW, the weight decay and the heatmap / offset weights
(1.0 / 2.0) and shortens the rest to fit minutes on one CPU thread: the quarter-width ``demo``
network at 256 px, 40 epochs of 480 phantoms, a higher peak learning rate with one cosine cycle
(one-cycle), rotation / scale / shift / contrast / noise augmentation on the fly. The category
weight is 0.1, not the paper's 1e-3: trained from scratch (no ImageNet start) for 24 epochs
with 1e-3 the category maps never left the prior (validation AUC 0.65); ``--loss-weights 1 2
0.001`` gives the paper's.
The epoch with the best validation score (localisation recall x AUC, then mean error) is kept
and exported to ``DIR/export`` (ONNX + sha256 manifest); metrics go to ``DIR/metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.lumbar_ccfnet.coding import decode, encode
from models.lumbar_ccfnet.data import SOURCES, load_samples, phantom_samples, to_arrays
from models.lumbar_ccfnet.loss import WEIGHTS, ccf_loss
from models.lumbar_ccfnet.metrics import score
from models.lumbar_ccfnet.networks import CONFIGS, STRIDE, build, count_parameters

DEMO_WEIGHTS = (1.0, 2.0, 0.1)  # w_h, w_f as in the paper; w_c raised (see above)
VAL_SEED0 = 500_000  # validation phantoms; evaluate.py's held-out seeds start elsewhere


def augment(
    x: torch.Tensor, pts: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random rotation (+-12 deg), scale (0.85-1.2), shift (+-10%), contrast, gamma and noise;
    points (B, K, 2) in pixels move with the image."""
    b, _, s, _ = x.shape

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=gen)

    ang, scale = u(-12, 12) * math.pi / 180, u(0.85, 1.2)
    tx, ty = u(-0.1, 0.1) * 2, u(-0.1, 0.1) * 2
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    # affine_grid maps output to input normalised coordinates: p_in = A p_out + t
    a = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
    t = torch.stack([tx, ty], 1)
    theta = torch.cat([a, t[:, :, None]], 2)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    pn = (2 * pts + 1) / s - 1  # pixel -> normalised
    q = torch.linalg.solve(a, (pn - t[:, None, :]).transpose(1, 2)).transpose(1, 2)
    new_pts = ((q + 1) * s - 1) / 2
    gamma = u(0.7, 1.4)[:, None, None, None]
    out = out.clamp(min=0) ** gamma * u(0.8, 1.2)[:, None, None, None]
    out = out + torch.randn(out.shape, generator=gen) * u(0.0, 0.06)[:, None, None, None]
    return out, new_pts


def targets(pts: np.ndarray, labels: np.ndarray, map_size: int, sigma: float) -> dict:
    enc = [encode(p, lab, map_size, sigma, STRIDE) for p, lab in zip(pts, labels, strict=True)]
    return {k: torch.from_numpy(np.stack([e[k] for e in enc])) for k in enc[0]}


def predict(net, x: np.ndarray, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Decoded points (N, 11, 2) in input pixels and disease probabilities (N, 11)."""
    net.eval()
    pts, probs = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            h, fx, fy, c = net(torch.from_numpy(x[i : i + batch].astype(np.float32)))
            c = torch.sigmoid(c)
            for n in range(h.shape[0]):
                p, pr, _ = decode(h[n].numpy(), fx[n].numpy(), fy[n].numpy(), c[n].numpy())
                pts.append(p)
                probs.append(pr)
    return np.stack(pts), np.stack(probs)


def validate(net, arrays: dict) -> dict:
    pts, prob = predict(net, arrays["x"])
    dist = np.linalg.norm(pts - arrays["points"], axis=-1) * arrays["mm_per_px"][:, None]
    return score(dist, prob, arrays["labels"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", required=True, metavar=("SOURCE", "PATH"),
                    help=f"one of {SOURCES}, then PATH for the public layouts")  # fmt: skip
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default="demo", choices=sorted(CONFIGS))
    ap.add_argument("--train-phantoms", type=int, default=480)
    ap.add_argument("--val-phantoms", type=int, default=48)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--loss-weights", type=float, nargs=3, default=list(DEMO_WEIGHTS),
                    metavar=("W_H", "W_F", "W_C"), help=f"paper: {WEIGHTS}")  # fmt: skip
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=0, help="optional safety cap (0: none)")
    ap.add_argument("--no-export", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cfg = CONFIGS[args.config]
    source = args.data[0]
    if source not in SOURCES:
        ap.error(f"--data: unknown source {source}; one of {SOURCES}")
    t0 = time.time()
    n_train = args.train_phantoms
    if source == "phantom":
        train = load_samples(
            "phantom", seeds=range(args.seed * 100_000, args.seed * 100_000 + n_train)
        )
        val = phantom_samples(range(VAL_SEED0, VAL_SEED0 + args.val_phantoms))
    else:
        samples = load_samples(source, Path(args.data[1]))
        order = rng.permutation(len(samples))
        n_val = max(1, len(samples) // 5)
        val = [samples[i] for i in order[:n_val]]
        train = [samples[i] for i in order[n_val:]] or val
    tr, va = to_arrays(train, cfg.input_size), to_arrays(val, cfg.input_size)
    print(f"data: {len(train)} train, {len(val)} val slices ({time.time() - t0:.0f} s)")
    net = build(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = args.epochs * math.ceil(len(train) / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps, pct_start=0.1)
    map_size = cfg.input_size // STRIDE
    best, best_key, history, cut = None, None, [], False
    args.out.mkdir(parents=True, exist_ok=True)
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(train), generator=gen).numpy()
        sums: dict[str, float] = {}
        for i in range(0, len(order), args.batch):
            idx = order[i : i + args.batch]
            x = torch.from_numpy(tr["x"][idx].astype(np.float32))
            x, pts = augment(x, torch.from_numpy(tr["points"][idx]), gen)
            tgt = targets(pts.numpy(), tr["labels"][idx], map_size, cfg.sigma)
            loss, parts = ccf_loss(net(x), tgt, tuple(args.loss_weights))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v * len(idx) / len(order)
        m = validate(net, va)
        key = (round(float(np.nan_to_num(m["score"])), 3), -m["mean_error_mm_all"])
        history.append({"epoch": epoch + 1, **{k: round(v, 5) for k, v in sums.items()},
                        **{k: round(v, 4) for k, v in m.items()}})  # fmt: skip
        print(json.dumps(history[-1]), f"{time.time() - t0:.0f}s", flush=True)
        if best_key is None or key > best_key:
            best_key, best = key, {k: v.clone() for k, v in net.state_dict().items()}
            torch.save(best, args.out / "best.pt")
        if args.minutes and time.time() - t0 > args.minutes * 60:
            cut = True
            break
    net.load_state_dict(best)
    metrics = {
        "validation": validate(net, va),
        "history": history,
        "config": cfg.to_json(),
        "parameters": count_parameters(net),
        "seconds": round(time.time() - t0, 1),
        "seed": args.seed,
        "cut_short_by_minutes": cut,
        "command": "python -m models.lumbar_ccfnet.train "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "data": {"source": source, "train": len(train), "val": len(val)},
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (args.out / "config.json").write_text(json.dumps(cfg.to_json(), indent=2))
    if not args.no_export:
        from models.lumbar_ccfnet.export import export_trained

        export_trained(net, cfg, args.out / "export", metrics, va["x"][:2].astype(np.float32))
    print("best validation:", json.dumps(metrics["validation"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
