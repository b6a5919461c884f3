"""Training data (phantoms or a folder), GridDropIn&Out, and realistic mask errors.

Folder layout (``--data PATH``)::

    PATH/labels.csv   columns: image,mask,calcaneal_tuberosity,primary_line,
                      collapse_fracture_block,calcaneal_body,posterior_articular_surface,
                      tongue_fracture_block   (labels 0/1)
    PATH/<image>      the lateral radiograph: DICOM, PNG, JPEG or NIfTI (read by app.study.load)
    PATH/<mask>       its rough fracture mask on the same grid (non-zero = fracture region)

Both sources go through ``preprocess.image_input`` / ``mask_input``, as the adapter does.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from models.calcaneus_msrt.labels import LABELS
from models.calcaneus_msrt.phantom import generate
from models.calcaneus_msrt.preprocess import image_input, mask_input

LABEL_KEYS = tuple(n.lower().replace(" ", "_") for n in LABELS)
# Phantoms for training: 256 px at 0.6 mm (the same 154 mm field as the 512 px demo studies).
PHANTOM_ROWS, PHANTOM_MM = 256, 0.6


@dataclass
class CalcSet:
    x: np.ndarray  # (N, S, S) float16 image in [0, 1]
    m: np.ndarray  # (N, S, S) float16 rough mask (cell fraction)
    y: np.ndarray  # (N, 6) float32 labels

    def __len__(self) -> int:
        return len(self.y)

    def save(self, path: Path) -> None:
        np.savez_compressed(path, x=self.x, m=self.m, y=self.y)

    @classmethod
    def load(cls, path: Path) -> CalcSet:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["x"], z["m"], z["y"])

    def subset(self, idx) -> CalcSet:
        return CalcSet(self.x[idx], self.m[idx], self.y[idx])


def _phantom_item(args: tuple[int, int]):
    seed, size = args
    s = generate(seed, rows=PHANTOM_ROWS, cols=PHANTOM_ROWS, pixel_mm=PHANTOM_MM)
    return image_input(s.image, size), mask_input(s.rough_mask, size), s.label_vector()


def phantom_set(seeds, size: int, workers: int = 1) -> CalcSet:
    jobs = [(int(s), size) for s in seeds]
    if workers > 1:
        with Pool(workers) as pool:
            items = pool.map(_phantom_item, jobs, chunksize=16)
    else:
        items = [_phantom_item(j) for j in jobs]
    return CalcSet(
        np.stack([i[0] for i in items]).astype(np.float16),
        np.stack([i[1] for i in items]).astype(np.float16),
        np.stack([i[2] for i in items]).astype(np.float32),
    )


def _read_2d(path: Path) -> np.ndarray:
    """The first series of a file as a 2-D array (bone bright for radiographs)."""
    from app.study import load

    series = load(path).all_series()
    if not series:
        raise ValueError(f"{path}: no image in it")
    s = series[0]
    arr = np.asarray(s.image.array[0], np.float32)
    if arr.ndim == 3:  # RGB: luminance
        arr = arr[..., :3].mean(-1)
    if s.invert:  # MONOCHROME1
        arr = float(arr.max()) - arr
    return arr


def folder_set(folder: Path, size: int) -> CalcSet:
    folder = Path(folder)
    csv_path = folder / "labels.csv"
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"{csv_path}: not found (columns image,mask,{','.join(LABEL_KEYS)})"
        )
    xs, ms, ys = [], [], []
    with open(csv_path, newline="") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            missing = [k for k in ("image", "mask", *LABEL_KEYS) if not (row.get(k) or "").strip()]
            if missing:
                raise ValueError(f"{csv_path}:{n}: missing {', '.join(missing)}")
            image = _read_2d(folder / row["image"].strip())
            mask = _read_2d(folder / row["mask"].strip())
            if mask.shape != image.shape:
                raise ValueError(
                    f"{csv_path}:{n}: mask {mask.shape} is not on the image's grid {image.shape}"
                )
            xs.append(image_input(image, size))
            ms.append(mask_input(mask > 0, size))
            ys.append([float(int(row[k])) for k in LABEL_KEYS])
    if not ys:
        raise ValueError(f"{csv_path}: no rows")
    return CalcSet(
        np.stack(xs).astype(np.float16), np.stack(ms).astype(np.float16), np.array(ys, np.float32)
    )


# ---- augmentation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GDIO:
    """GridDropIn&Out: ``n`` random patches of ``patch`` x ``patch`` pixels, each set to 1
    (DropIn: a region gained) or 0 (DropOut: a region lost) with equal chance, applied to a
    mask with probability ``p``. Patches fall within ``margin`` patches of the mask's bounding
    box (anywhere when the mask is empty), where a segmenter's errors are."""

    patch: int = 12
    n_max: int = 4
    p: float = 0.8
    margin: float = 1.5


def grid_drop_in_out(m: torch.Tensor, gen: torch.Generator, cfg: GDIO = GDIO()) -> torch.Tensor:
    """GDIO on a batch of masks (B, 1, S, S); returns a new tensor."""
    out = m.clone()
    b, _, s, _ = m.shape
    ps = cfg.patch
    for k in range(b):
        if float(torch.rand(1, generator=gen)) >= cfg.p:
            continue
        rows = torch.nonzero(m[k, 0].sum(1) > 0).flatten()
        cols = torch.nonzero(m[k, 0].sum(0) > 0).flatten()
        pad = int(cfg.margin * ps)
        if len(rows):
            r_lo, r_hi = max(int(rows[0]) - pad, 0), min(int(rows[-1]) + pad, s - ps)
            c_lo, c_hi = max(int(cols[0]) - pad, 0), min(int(cols[-1]) + pad, s - ps)
        else:
            r_lo, r_hi, c_lo, c_hi = 0, s - ps, 0, s - ps
        r_hi, c_hi = max(r_hi, r_lo), max(c_hi, c_lo)
        n = int(torch.randint(1, cfg.n_max + 1, (1,), generator=gen))
        for _ in range(n):
            r = int(torch.randint(r_lo, r_hi + 1, (1,), generator=gen))
            c = int(torch.randint(c_lo, c_hi + 1, (1,), generator=gen))
            fill = float(torch.rand(1, generator=gen) < 0.5)
            out[k, 0, r : r + ps, c : c + ps] = fill
    return out


def geometric(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The plain augmentation both arms of the ablation share: small zoom, rotation and shift
    applied alike to every channel (image and mask), then gain and offset on the image."""
    import math

    import torch.nn.functional as F

    b = x.shape[0]
    s = 1.0 + (torch.rand(b, generator=gen) - 0.5) * 0.16
    a = (torch.rand(b, generator=gen) - 0.5) * math.radians(10)
    t = (torch.rand(b, 2, generator=gen) - 0.5) * 0.1
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = s * torch.cos(a), -s * torch.sin(a)
    theta[:, 1, 0], theta[:, 1, 1] = s * torch.sin(a), s * torch.cos(a)
    theta[:, :, 2] = t
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
    gain = 1.0 + (torch.rand(b, 1, 1, generator=gen) - 0.5) * 0.3
    offset = (torch.rand(b, 1, 1, generator=gen) - 0.5) * 0.2
    x[:, 0] = x[:, 0] * gain + offset
    return x


# ---- realistic mask errors (held-out evaluation) -------------------------------------------


def corrupt_mask(
    fine: np.ndarray, bone: np.ndarray, rng: np.random.Generator, pixel_mm: float
) -> np.ndarray:
    """A segmenter-like rough mask from the fine fracture mask: grown by 2-4 mm with zigzag
    edges, one or two blobs missing and one or two extra blobs inside the bone (the errors the
    paper's section 2.2 lists). Independent of the phantom's own rough mask."""
    if not fine.any():
        return np.zeros(fine.shape, bool)
    px = 1.0 / pixel_mm
    grown = ndimage.distance_transform_edt(~fine) * pixel_mm < rng.uniform(2.0, 4.0)
    # Zigzag edges: threshold a smoothed mask against noise of a few millimetres' grain.
    field = ndimage.gaussian_filter(grown.astype(np.float32), 1.0 * px)
    noise = ndimage.gaussian_filter(rng.normal(size=fine.shape).astype(np.float32), 0.8 * px)
    noise /= max(float(noise.std()), 1e-6)
    mask = field + 0.18 * noise > 0.5
    yy, xx = np.indices(fine.shape)

    def disk(cy: float, cx: float, r_mm: float) -> np.ndarray:
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= (r_mm * px) ** 2

    on = np.argwhere(mask)
    for _ in range(int(rng.integers(1, 3))):  # missing blobs
        cy, cx = on[int(rng.integers(len(on)))]
        mask &= ~disk(cy, cx, rng.uniform(3.0, 6.0))
    near = np.argwhere(bone & ~mask)
    for _ in range(int(rng.integers(1, 3))):  # extra blobs in the bone
        if len(near):
            cy, cx = near[int(rng.integers(len(near)))]
            mask |= disk(cy, cx, rng.uniform(2.5, 5.0)) & bone
    return mask
