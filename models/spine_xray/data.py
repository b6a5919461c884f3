"""Training data for both views: network inputs, per-structure masks and the class, from phantoms
or from a folder in the paper's layout, through the same preprocessing as the adapter.

Folder layout (``--data PATH``), the paper's data set (AP and LAT .jpg images, one one-channel
binary .png per structure, the class Normal or Damaged) arranged one folder per case::

    PATH/Normal/<case>/AP/<image>.jpg          (also .jpeg, .png, or .dcm read by app.study.load)
    PATH/Normal/<case>/AP/masks/AP_Pedicle.png  AP_Spinous_Process.png  AP_Vertebra.png
    PATH/Normal/<case>/LAT/<image>.jpg
    PATH/Normal/<case>/LAT/masks/LAT_Anterior_Vertebral_Line.png  LAT_Disk_Height.png
                                  LAT_Posterior_Vertebral_Line.png  LAT_Spinous_Process.png
                                  LAT_Vertebra.png
    PATH/Damaged/<case>/...

Mask files are named as the paper names the masks, spaces as underscores (what
``phantom.write_study(..., fmt="jpeg")`` writes); a pixel above 127 is inside. A case whose
masks are missing still trains the classifier (its masks are flagged absent).
"""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from models.spine_xray.phantom import AP_MASKS, CLASSES, LAT_MASKS, generate
from models.spine_xray.preprocess import network_input

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".dcm")
VIEW_DIRS = {"ap": "AP", "lateral": "LAT"}
# Phantoms for training are rendered at half the demo studies' resolution (4x cheaper) over the
# same field of view; the pixel size varies by +-6% so the spine's size in the input varies.
TRAIN_ROWS, TRAIN_COLS, TRAIN_PIXEL_MM = 320, 256, 0.9


@dataclass
class SpineSet:
    ap: np.ndarray  # (N, S, S) float16 segmentation inputs
    lateral: np.ndarray
    ap_masks: np.ndarray  # (N, 3, S, S) uint8 0/1
    lateral_masks: np.ndarray  # (N, 5, S, S)
    has_masks: np.ndarray  # (N,) bool
    ap_cls: np.ndarray  # (N, C, C) float16 classifier inputs
    lateral_cls: np.ndarray
    y: np.ndarray  # (N,) int64: 0 Normal, 1 Damaged

    FIELDS = (
        "ap",
        "lateral",
        "ap_masks",
        "lateral_masks",
        "has_masks",
        "ap_cls",
        "lateral_cls",
        "y",
    )

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx) -> SpineSet:
        return SpineSet(*(getattr(self, f)[idx] for f in self.FIELDS))

    def save(self, path: Path) -> None:
        np.savez_compressed(path, **{f: getattr(self, f) for f in self.FIELDS})

    @classmethod
    def load(cls, path: Path) -> SpineSet:
        with np.load(path, allow_pickle=False) as z:
            return cls(*(z[f] for f in cls.FIELDS))

    @classmethod
    def concat(cls, *parts: SpineSet) -> SpineSet:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.FIELDS))

    @classmethod
    def from_items(cls, items: list[dict]) -> SpineSet:
        return cls(
            np.stack([i["ap"] for i in items]).astype(np.float16),
            np.stack([i["lateral"] for i in items]).astype(np.float16),
            np.stack([i["ap_masks"] for i in items]).astype(np.uint8),
            np.stack([i["lateral_masks"] for i in items]).astype(np.uint8),
            np.array([i["has_masks"] for i in items], bool),
            np.stack([i["ap_cls"] for i in items]).astype(np.float16),
            np.stack([i["lateral_cls"] for i in items]).astype(np.float16),
            np.array([i["y"] for i in items], np.int64),
        )


def make_item(views: dict[str, tuple[np.ndarray, np.ndarray | None, tuple[float, float]]],
              label: str, seg_size: int, cls_size: int) -> dict:  # fmt: skip
    """One case's network inputs: ``views`` maps "ap"/"lateral" to (bone-bright pixels,
    (K, rows, cols) bool masks or None, (row, col) spacing mm)."""
    if label not in CLASSES:
        raise ValueError(f"class {label!r} is not one of {CLASSES}")
    item: dict = {"y": CLASSES.index(label), "has_masks": True}
    for view, (pixels, masks, spacing) in views.items():
        x, box = network_input(pixels, seg_size, spacing)
        item[view] = x
        n = len(AP_MASKS if view == "ap" else LAT_MASKS)
        if masks is None:
            item["has_masks"] = False
            item[f"{view}_masks"] = np.zeros((n, seg_size, seg_size), np.uint8)
        else:
            item[f"{view}_masks"] = (box.to_input(masks.astype(np.float32)) >= 0.5).astype(np.uint8)
        item[f"{view}_cls"] = network_input(pixels, cls_size, spacing)[0]
    return item


def _phantom_item(args: tuple[int, int, int, dict]) -> dict:
    seed, seg_size, cls_size, options = args
    pixel_mm = TRAIN_PIXEL_MM * float(np.random.default_rng([seed, 7]).uniform(0.94, 1.06))
    s = generate(seed, rows=TRAIN_ROWS, cols=TRAIN_COLS, pixel_mm=pixel_mm, **options)
    sp = s.pixel_spacing_mm
    return make_item(
        {
            "ap": (s.ap, np.stack([s.ap_masks[m] for m in AP_MASKS]), sp),
            "lateral": (s.lat, np.stack([s.lat_masks[m] for m in LAT_MASKS]), sp),
        },
        s.label,
        seg_size,
        cls_size,
    )


def phantom_set(seeds, seg_size: int, cls_size: int, workers: int = 1, **options) -> SpineSet:
    """Phantoms for ``seeds``; ``options`` go to ``phantom.generate`` (none: its defaults, so a
    seed draws the same phantom as it always has)."""
    jobs = [(int(s), seg_size, cls_size, options) for s in seeds]
    if workers > 1:
        with Pool(workers) as pool:
            items = pool.map(_phantom_item, jobs, chunksize=8)
    else:
        items = [_phantom_item(j) for j in jobs]
    return SpineSet.from_items(items)


def read_image(path: Path) -> tuple[np.ndarray, tuple[float, float]]:
    """Bone-bright 2-D pixels and (row, col) spacing in mm (1, 1 for a plain image file)."""
    if path.suffix.lower() == ".dcm":
        from app.study import load

        series = load(path).all_series()[0]
        arr = np.asarray(series.image.array[0], np.float32)
        if arr.ndim == 3:
            arr = arr[..., :3].mean(-1)
        if series.invert:
            arr = float(arr.max()) - arr
        return arr, (float(series.image.spacing[1]), float(series.image.spacing[2]))
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), np.float32), (1.0, 1.0)


def _view_image(view_dir: Path) -> Path:
    found = sorted(p for p in view_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(found) != 1:
        raise ValueError(f"{view_dir}: expected one image ({', '.join(IMAGE_SUFFIXES)}), "
                         f"found {len(found)}")  # fmt: skip
    return found[0]


def read_case(case_dir: Path, label: str) -> dict[str, tuple]:
    """One case of the folder layout: per view (pixels, masks or None, spacing)."""
    missing = [sub for sub in VIEW_DIRS.values() if not (case_dir / sub).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"{case_dir}: no {' or '.join(missing)} folder; each case has AP/ and LAT/ "
            "(models/spine_xray/data.py)"
        )
    views = {}
    for view, sub in VIEW_DIRS.items():
        vdir = case_dir / sub
        pixels, spacing = read_image(_view_image(vdir))
        names = AP_MASKS if view == "ap" else LAT_MASKS
        files = [vdir / "masks" / f"{n.replace(' ', '_')}.png" for n in names]
        masks = None
        if all(f.is_file() for f in files):
            from PIL import Image

            stack = []
            for f in files:
                with Image.open(f) as im:
                    m = np.asarray(im.convert("L")) > 127
                if m.shape != pixels.shape:
                    raise ValueError(f"{f}: mask {m.shape} does not match its image {pixels.shape}")
                stack.append(m)
            masks = np.stack(stack)
        views[view] = (pixels, masks, spacing)
    return views


def folder_cases(folder: Path) -> list[tuple[Path, str]]:
    folder = Path(folder)
    cases = []
    for label in CLASSES:
        d = folder / label
        if d.is_dir():
            cases += [(c, label) for c in sorted(d.iterdir()) if c.is_dir()]
    if not cases:
        raise FileNotFoundError(
            f"{folder}: no cases; expected {folder}/Normal/<case>/{{AP,LAT}}/ and "
            f"{folder}/Damaged/<case>/{{AP,LAT}}/ (see models/spine_xray/data.py)"
        )
    return cases


def folder_set(folder: Path, seg_size: int, cls_size: int) -> SpineSet:
    """Every case of a folder in the paper's layout."""
    items = [make_item(read_case(c, label), label, seg_size, cls_size)
             for c, label in folder_cases(folder)]  # fmt: skip
    return SpineSet.from_items(items)
