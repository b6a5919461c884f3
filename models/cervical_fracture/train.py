"""Train both stages with one seeded command, on phantoms or on an RSNA 2022 layout folder.

    python -m models.cervical_fracture.train --data phantom --out runs/cervical --seed 0
    python -m models.cervical_fracture.train --data /data/rsna2022 --out runs/rsna --seed 0

Stage 1 learns 2.5D segmentation from the studies that have a label map; stage 2 learns fracture
per vertebra from 24-slice crops. Studies without a label map (most of RSNA 2022) get their
vertebra regions from the trained stage-1 network (pseudo-labels, as the paper does).
Writes ``stage1.pt`` / ``stage2.pt`` (state dicts; read back with ``weights_only=True``),
``config.json`` and ``train_log.jsonl`` into ``--out``.

``--stage1-onnx weights/stage1.onnx`` trains stage 2 alone on top of a shipped stage 1 (no torch
checkpoints are shipped; the ONNX file's initializers are the state dict); ``--n-thin N`` adds N
phantoms with thin, barely displaced fractures (``fracture.THIN_TRAIN``) to stage 2's data.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from monai.losses import DiceCELoss

from models.cervical_fracture import pipeline as P
from models.cervical_fracture.data import (
    StudyRecord,
    VertebraSample,
    records_from,
    stage1_study,
    vertebra_samples,
)
from models.cervical_fracture.fracture import THIN_TRAIN
from models.cervical_fracture.networks import DEMO, PAPER, ModelConfig, build_stage1, build_stage2

TRAIN_SEED_BASE = 10_000  # phantom seeds for training: base + seed * 1000 + n
VAL_SEED_BASE = 500_000  # stage-2 early stopping (model selection), never for the gradient
HELDOUT_SEED_BASE = 900_000  # never used for training; evaluation draws from here
HELDOUT_THIN_SEED_BASE = 950_000  # held-out thin-fracture slice (evaluate --thin-n), never trained
TRAIN_THIN_SEED_BASE = 200_000  # extra thin-fracture phantoms for stage 2 (--n-thin)
MAX_SEED = 190  # --seed below this: the four seed ranges above then never overlap


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def log(out: Path, **entry) -> None:
    entry["time"] = round(time.time(), 1)
    with (out / "train_log.jsonl").open("a") as f:
        f.write(json.dumps(entry) + "\n")
    print(json.dumps(entry), flush=True)


def _cosine_lr(opt, base: float, it: int, iters: int, elapsed: float, minutes: float) -> None:
    """Cosine annealing over whichever budget (iterations or minutes) runs out first."""
    frac = (it + 1) / max(1, iters)
    if minutes:
        frac = max(frac, elapsed / (60 * minutes))
    for g in opt.param_groups:
        g["lr"] = base * 0.5 * (1 + np.cos(np.pi * min(1.0, frac)))


def _augment_stage1(x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
    if rng.uniform() < 0.5:  # left-right flip (paper: HorizontalFlip); labels are level names
        x, y = x[..., ::-1], y[..., ::-1]
    dj, di = rng.integers(-6, 7, size=2)
    x = np.roll(x, (dj, di), axis=(-2, -1))
    y = np.roll(y, (dj, di), axis=(-2, -1))
    x = x * rng.uniform(0.9, 1.1) + rng.uniform(-0.05, 0.05)
    x = x + rng.normal(0, rng.uniform(0, 0.02), size=x.shape)
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)


def train_stage1(
    studies, cfg: ModelConfig, iters: int, batch: int, lr: float, rng, out: Path, minutes: float = 0
):
    net = build_stage1(cfg.stage1)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False)
    inputs = [P.stage1_inputs(s.work.astype(np.float32)).astype(np.float16) for s in studies]
    # sample slices that show spine three times as often as empty ones
    weights = []
    for s in studies:
        w = np.where((s.labels > 0).any(axis=(1, 2)), 3.0, 1.0)
        weights.append(w / w.sum())
    net.train()
    t0 = time.time()
    for it in range(iters):
        xs, ys = [], []
        for _ in range(batch):
            n = int(rng.integers(len(studies)))
            k = int(rng.choice(len(weights[n]), p=weights[n]))
            x, y = _augment_stage1(inputs[n][k].astype(np.float32), studies[n].labels[k], rng)
            xs.append(x)
            ys.append(y)
        x = torch.from_numpy(np.stack(xs))
        y = torch.from_numpy(np.stack(ys).astype(np.int64))[:, None]
        loss = loss_fn(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        _cosine_lr(opt, lr, it, iters, time.time() - t0, minutes)
        last = it == iters - 1 or (minutes and time.time() - t0 > 60 * minutes)
        if it % 25 == 0 or last:
            log(
                out, stage=1, iter=it, loss=round(loss.item(), 4), elapsed_s=round(time.time() - t0)
            )
        if last:
            break
    return net, it + 1


def _augment_stage2(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = crops.astype(np.float32)
    if rng.uniform() < 0.5:
        x = x[..., ::-1]
    if rng.uniform() < 0.5:  # studies run head-first or feet-first: order must not matter
        x = x[::-1]
    dj, di = rng.integers(-3, 4, size=2)
    x = np.roll(x, (dj, di), axis=(-2, -1))
    x = x * rng.uniform(0.9, 1.1) + rng.uniform(-0.04, 0.04)
    return P.stage2_sequence(np.ascontiguousarray(x))


@torch.no_grad()
def _validate(net, val: list[VertebraSample]) -> dict:
    """RSNA-weighted vertebra log loss and AUC on validation samples (eval mode)."""
    from models.cervical_fracture.evaluate import auc

    net.eval()
    probs = []
    for b in range(0, len(val), 16):
        x = np.stack([P.stage2_sequence(v.crops.astype(np.float32)) for v in val[b : b + 16]])
        probs.append(torch.sigmoid(net(torch.from_numpy(x))).numpy())
    net.train()
    p = np.clip(np.concatenate(probs), 1e-6, 1 - 1e-6)
    y = np.array([v.target for v in val], dtype=np.float64)
    w = np.where(y > 0.5, 2.0, 1.0)
    loss = float((w * -(y * np.log(p) + (1 - y) * np.log(1 - p))).sum() / w.sum())
    return {"val_loss": round(loss, 4), "val_auc": round(auc(y, p), 4)}


def train_stage2(
    samples: list[VertebraSample],
    cfg,
    iters,
    batch,
    lr,
    rng,
    out: Path,
    minutes=0.0,
    val: list[VertebraSample] | None = None,
    val_every: int = 100,
):
    """With ``val``, keeps the weights of the best validation loss (early stopping)."""
    net = build_stage2(cfg.stage2)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-2)
    best = (np.inf, None, -1)
    targets = np.array([s.target for s in samples])
    pos = np.nonzero(targets == 1)[0]
    neg = np.nonzero(targets == 0)[0]
    net.train()
    t0 = time.time()
    for it in range(iters):
        # balanced batches: fractures are rare; the RSNA weights (2 / 1) then weight the loss
        n_pos = batch // 2 if len(pos) else 0
        idx = np.concatenate(
            [rng.choice(pos, n_pos), rng.choice(neg, batch - n_pos)]
            if n_pos
            else [rng.choice(neg, batch)]
        )
        x = torch.from_numpy(np.stack([_augment_stage2(samples[i].crops, rng) for i in idx]))
        y = torch.from_numpy(targets[idx].astype(np.float32))
        w = torch.where(y > 0.5, 2.0, 1.0)
        logits = net(x)
        loss = (
            w * torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
        ).sum() / w.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        _cosine_lr(opt, lr, it, iters, time.time() - t0, minutes)
        last = it == iters - 1 or (minutes and time.time() - t0 > 60 * minutes)
        if it % 25 == 0 or last:
            log(
                out, stage=2, iter=it, loss=round(loss.item(), 4), elapsed_s=round(time.time() - t0)
            )
        if val and (it % val_every == val_every - 1 or last):
            m = _validate(net, val)
            log(out, stage=2, iter=it, **m)
            if m["val_loss"] < best[0]:
                best = (m["val_loss"], {k: v.clone() for k, v in net.state_dict().items()}, it)
        if last:
            break
    if best[1] is not None:
        net.load_state_dict(best[1])
        log(out, event="stage2-best", iter=best[2], val_loss=best[0])
    return net, it + 1


def stage1_from_onnx(path: Path, cfg: ModelConfig) -> torch.nn.Module:
    """The stage-1 network with the weights of an exported ``stage1.onnx``.

    ``export.py`` wraps the network as ``net`` (softmax on top), so each parameter is the
    initializer ``net.<state-dict key>``; the result is checked against ONNX Runtime."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    if not Path(path).is_file():
        raise SystemExit(f"{path}: no such file (--stage1-onnx wants an exported stage1.onnx)")
    inits = {i.name: i for i in onnx.load(str(path)).graph.initializer}
    net = build_stage1(cfg.stage1)
    state = net.state_dict()
    missing = [k for k in state if f"net.{k}" not in inits]
    if missing:
        raise SystemExit(f"{path}: not a stage-1 export of this config (missing {missing[:3]})")
    net.load_state_dict(
        {k: torch.from_numpy(numpy_helper.to_array(inits[f"net.{k}"]).copy()) for k in state}
    )
    net.eval()
    x = np.random.default_rng(0).random((2, 3, P.WORK_SIZE, P.WORK_SIZE), np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        got = torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()
    if float(np.abs(got - want).max()) > 1e-4:
        raise SystemExit(f"{path}: weights read back differ from ONNX Runtime's output")
    return net


@torch.no_grad()
def predict_work_labels(net, work: np.ndarray, superior_high: bool) -> np.ndarray:
    """Stage-1 label map on the working grid with a torch network (pseudo-labels)."""
    net.eval()
    x = P.stage1_inputs(work.astype(np.float32))
    probs = []
    for b in range(0, len(x), 32):
        probs.append(torch.softmax(net(torch.from_numpy(x[b : b + 32])), dim=1).numpy())
    return P.labels_from_probs(np.concatenate(probs), superior_high)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="'phantom' or an RSNA 2022 layout folder")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", choices=("demo", "paper"), default="demo")
    ap.add_argument("--n-train", type=int, default=100, help="phantoms to generate")
    ap.add_argument("--phantom-shape", type=int, default=128)
    ap.add_argument("--fracture-prob", type=float, default=0.7, help="phantoms only")
    ap.add_argument("--max-fractures", type=int, default=3, help="phantoms only")
    ap.add_argument("--stage1-iters", type=int, default=1200)
    ap.add_argument("--stage2-iters", type=int, default=600)
    ap.add_argument(
        "--stage1-minutes", type=float, default=0, help="stop stage 1 after (0: no limit)"
    )
    ap.add_argument(
        "--stage2-minutes", type=float, default=0, help="stop stage 2 after (0: no limit)"
    )
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr1", type=float, default=3e-3)
    ap.add_argument("--lr2", type=float, default=1e-3)
    # one thread: on a shared 2-core machine two OpenMP threads ran 6x slower than one
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-studies", type=int, default=0, help="RSNA: use at most this many")
    ap.add_argument("--val-n", type=int, default=0, help="phantoms: validation studies for stage 2")
    ap.add_argument("--stage1-from", type=Path, help="reuse stage1.pt from this run folder")
    ap.add_argument(
        "--stage1-onnx", type=Path, help="reuse an exported stage1.onnx (train stage 2 only)"
    )
    ap.add_argument(
        "--n-thin", type=int, default=0, help="phantoms: extra thin-fracture studies for stage 2"
    )
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    rng = np.random.default_rng(args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_log.jsonl").unlink(missing_ok=True)
    cfg = DEMO if args.config == "demo" else PAPER
    command = "python -m models.cervical_fracture.train " + " ".join(
        sys.argv[1:] if argv is None else argv
    )

    if args.n_train > 1000 or args.n_thin > 1000:
        raise SystemExit("at most 1000 phantoms per kind: more would reuse another seed's seeds")
    if args.stage1_onnx and not args.stage1_onnx.is_file():  # before minutes of phantoms
        raise SystemExit(f"{args.stage1_onnx}: no such file (--stage1-onnx wants a stage1.onnx)")
    if not 0 <= args.seed < MAX_SEED:
        raise SystemExit(f"--seed must be 0..{MAX_SEED - 1}: others reach held-out phantom seeds")
    seeds = [TRAIN_SEED_BASE + args.seed * 1000 + n for n in range(args.n_train)]
    t0 = time.time()
    records: list[StudyRecord] = []
    opts = {}
    if args.data == "phantom":
        opts = dict(
            shape=args.phantom_shape,
            fracture_prob=args.fracture_prob,
            max_fractures=args.max_fractures,
        )
    for rec in records_from(args.data, seeds, **opts):
        records.append(rec)
        if args.max_studies and len(records) >= args.max_studies:
            break
    if not records:
        raise SystemExit(f"{args.data}: no training studies found")
    log(out, event="data", studies=len(records), seconds=round(time.time() - t0, 1))

    reuse1 = args.stage1_from or args.stage1_onnx
    studies = [] if reuse1 else [s for s in (stage1_study(r) for r in records) if s]
    if not studies and not reuse1:
        raise SystemExit(f"{args.data}: no study has a segmentation; stage 1 cannot train")
    if args.stage1_onnx:
        net1, done1 = stage1_from_onnx(args.stage1_onnx, cfg), 0
        log(out, event="stage1-from-onnx", file=str(args.stage1_onnx))
    elif args.stage1_from:
        net1 = build_stage1(cfg.stage1)
        net1.load_state_dict(torch.load(args.stage1_from / "stage1.pt", weights_only=True))
        prev = json.loads((args.stage1_from / "config.json").read_text())
        done1 = prev.get("iterations_done", {}).get("stage1", 0)
        log(out, event="stage1-reused", run=str(args.stage1_from), iterations=done1)
    else:
        net1, done1 = train_stage1(
            studies, cfg, args.stage1_iters, args.batch, args.lr1, rng, out, args.stage1_minutes
        )
    torch.save(net1.state_dict(), out / "stage1.pt")

    samples: list[VertebraSample] = []
    records_uids = [r.uid for r in records]
    for rec in records:
        work_labels = None
        if rec.labels is None:  # pseudo-labels from stage 1 (paper: infer on all studies)
            grid = P.make_working_grid(rec.ct)
            work = P.to_working(rec.ct, grid)
            work_labels = predict_work_labels(net1, work, P.superior_is_high_k(rec.ct))
        samples += vertebra_samples(rec, work_labels, rng=rng, jitter=0.05)
    if args.n_thin and args.data == "phantom":  # stage 2 only: they add thin fractures
        thin_seeds = [TRAIN_THIN_SEED_BASE + args.seed * 1000 + n for n in range(args.n_thin)]
        thin_opts = {**opts, **THIN_TRAIN}
        for rec in records_from("phantom", thin_seeds, **thin_opts):
            samples += vertebra_samples(rec, rng=rng, jitter=0.05)
            records_uids.append(rec.uid)
    n_pos = sum(s.target for s in samples)
    log(out, event="stage2-data", samples=len(samples), positives=n_pos)
    val: list[VertebraSample] = []
    if args.val_n and args.data == "phantom":
        val_seeds = [VAL_SEED_BASE + args.seed * 1000 + n for n in range(args.val_n)]
        for rec in records_from("phantom", val_seeds, **opts):
            val += vertebra_samples(rec)
        log(out, event="stage2-val", samples=len(val), positives=sum(v.target for v in val))
    net2, done2 = train_stage2(
        samples, cfg, args.stage2_iters, args.batch, args.lr2, rng, out, args.stage2_minutes, val
    )
    torch.save(net2.state_dict(), out / "stage2.pt")

    meta = {
        "config": cfg.to_json(),
        "config_name": args.config,
        "seed": args.seed,
        "data": args.data,
        "train_studies": records_uids,
        "command": command,
        "seconds": round(time.time() - t0, 1),
        "iterations_done": {"stage1": done1, "stage2": done2},
        "notes": [n for r in records for n in r.notes],
    }
    (out / "config.json").write_text(json.dumps(meta, indent=2))
    log(out, event="done", seconds=meta["seconds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
