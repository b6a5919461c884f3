"""Training data: per-femur network inputs with class and femoral-head box, from phantoms or
from a folder of images with a labels CSV, through the adapter's own preprocessing
(``preprocess.py``); folder images are read by the project's one reader, ``app.study.load``.

Folder layout (``--data PATH``)::

    PATH/labels.csv   columns: file,label[,side][,x0,y0,x1,y1]
    PATH/<file>       DICOM, PNG, JPEG or TIFF; one femur per row (as in the paper's data set, where
                      each AP image was cut into single femurs); label is normal or A1..B3;
                      side is right/left (else detected); x0..y1 an optional femoral-head box
                      in image pixels (column, row).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from models.femur_ao.phantom import CLASSES, generate
from models.femur_ao.preprocess import bone_bright, network_inputs, read_radiograph
from models.femur_ao.sides import Layout, SideCrop, single_hip_side


@dataclass
class FemurSet:
    x: np.ndarray  # (N, S, S) float16 network inputs
    y: np.ndarray  # (N,) int64 index into CLASSES
    boxes: np.ndarray  # (N, 4) float32 (u0, v0, u1, v1) input pixels, NaN when unknown
    sides: np.ndarray  # (N,) str

    def __len__(self) -> int:
        return len(self.y)

    def save(self, path: Path) -> None:
        np.savez_compressed(path, x=self.x, y=self.y, boxes=self.boxes, sides=self.sides)

    @classmethod
    def load(cls, path: Path) -> FemurSet:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["x"], z["y"], z["boxes"], z["sides"])

    @classmethod
    def concat(cls, parts: list[FemurSet]) -> FemurSet:
        return cls(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.sides for p in parts]),
        )


def box_to_crop(box: tuple[float, float, float, float], crop: SideCrop, input_size: int):
    """Image-pixel box (i0, j0, i1, j1) -> network-input box (u0, v0, u1, v1)."""
    r0, c0, size = crop.window
    scale = input_size / size
    u0, u1 = (box[0] - c0) * scale, (box[2] - c0) * scale
    v0, v1 = (box[1] - r0) * scale, (box[3] - r0) * scale
    if crop.mirrored:
        u0, u1 = input_size - u1, input_size - u0
    return (u0, v0, u1, v1)


def _phantom_items(args: tuple[int, int, tuple[int, int]]):
    seed, input_size, shape = args
    sample = generate(seed, shape=shape)
    # The phantom's pixels are what write_study stores (MONOCHROME2, uint16), so these are the
    # inputs the adapter computes from the DICOM (tests/models/test_femur_preprocess.py).
    _, crops = network_inputs(bone_bright(sample.image), input_size)
    out = []
    for crop in crops:
        box = box_to_crop(sample.head_boxes[crop.side], crop, input_size)
        out.append((crop.pixels, CLASSES.index(sample.labels[crop.side]), box, crop.side))
    return out


def phantom_set(
    seeds: range | list[int], input_size: int, shape=(410, 500), workers: int = 1
) -> FemurSet:
    """Render bilateral phantoms and cut them into femurs (two items per phantom)."""
    jobs = [(int(s), input_size, tuple(shape)) for s in seeds]
    if workers > 1:
        with Pool(workers) as pool:
            results = pool.map(_phantom_items, jobs, chunksize=8)
    else:
        results = [_phantom_items(j) for j in jobs]
    items = [it for r in results for it in r]
    return FemurSet(
        np.stack([i[0] for i in items]).astype(np.float16),
        np.array([i[1] for i in items], np.int64),
        np.array([i[2] for i in items], np.float32),
        np.array([i[3] for i in items]),
    )


def folder_set(folder: Path, input_size: int) -> FemurSet:
    """Read ``folder/labels.csv`` and its images; every row is one femur."""
    folder = Path(folder)
    csv_path = folder / "labels.csv"
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"{csv_path}: labels CSV not found (columns file,label[,side][,x0,y0,x1,y1])"
        )
    xs, ys, boxes, sides = [], [], [], []
    with open(csv_path, newline="") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            label = (row.get("label") or "").strip()
            if label not in CLASSES:
                raise ValueError(f"{csv_path}:{n}: label {label!r} is not one of {CLASSES}")
            image, laterality = read_radiograph(folder / row["file"])
            side = (row.get("side") or "").strip().lower()
            if side in ("right", "left"):
                layout = Layout("single", (side,), "labels CSV")
            else:
                layout = None
            _, crops = network_inputs(
                image, input_size, laterality, layout=layout or _single(image, laterality)
            )
            crop = crops[0]
            box = (np.nan,) * 4
            if all((row.get(k) or "").strip() for k in ("x0", "y0", "x1", "y1")):
                box = box_to_crop(
                    tuple(float(row[k]) for k in ("x0", "y0", "x1", "y1")), crop, input_size
                )
            xs.append(crop.pixels)
            ys.append(CLASSES.index(label))
            boxes.append(box)
            sides.append(crop.side)
    if not ys:
        raise ValueError(f"{csv_path}: no rows")
    return FemurSet(
        np.stack(xs).astype(np.float16),
        np.array(ys, np.int64),
        np.array(boxes, np.float32),
        np.array(sides),
    )


def _single(image: np.ndarray, laterality: str) -> Layout:
    lat = (laterality or "").strip().upper()[:1]
    if lat in ("L", "R"):
        return Layout("single", ("left" if lat == "L" else "right",), "DICOM laterality tag")
    return Layout("single", (single_hip_side(image),), "medial bone-mass heuristic")


def targets(y: np.ndarray) -> dict[str, np.ndarray]:
    """Class index (CLASSES order) -> per-scenario targets; -100 where a scenario does not apply."""
    y = np.asarray(y)
    fracture = (y > 0).astype(np.int64)
    kind = np.where(y == 0, 0, np.where(y <= 3, 1, 2)).astype(np.int64)
    subtype = np.where(y == 0, -100, y - 1).astype(np.int64)
    return {"fracture": fracture, "type": kind, "subtype": subtype}
