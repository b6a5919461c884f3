"""Training samples from three sources through one code path: a labelled sagittal slice
(``slices.sagittal_slice``, the adapter's own orientation code) with eleven points and labels.

- ``phantom``: ``phantom.generate`` (the mid-sagittal slice, the one the truth labels);
- ``tianchi PATH``: the Tianchi spinal-disease layout: ``*.json`` annotation files anywhere under
  PATH (a list of {"studyUid", "data": [{"seriesUid", "instanceUid", "annotation": [{"data":
  {"point": [{"coord": [x, y], "tag": {"identification": "L1", "vertebra": "v2"}}, ...]}}]}]})
  and the DICOM files anywhere under PATH. Disease: vertebra v1 normal, v2 degenerated; disc v1
  normal, v2..v5 (bulge, protrusion, extrusion, Schmorl node) diseased; "v2,v5" lists several;
- ``rsna2024 PATH``: the RSNA 2024 lumbar layout: ``train.csv`` (severity per study),
  ``train_series_descriptions.csv`` (Sagittal T2/STIR series), ``train_label_coordinates.csv``
  (Spinal Canal Stenosis points, x, y on an instance) and
  ``train_images/<study>/<series>/<instance>.dcm``. It labels the five discs L1-L2..L5-S1 only;
  the vertebrae and T12-L1 are left unannotated (masked out of the loss). Moderate or severe
  stenosis counts as diseased.

Pixels and geometry are read only through ``app.study.load``. The Tianchi JSON names the
annotated image by SOPInstanceUID, which the loader does not report per slice; the UIDs are
indexed with the loader's own header reader (``app.study.dicom_frames.read_header``), and the
chosen file is then loaded with ``app.study.load``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.study import load
from app.study.geometry import ImageVolume
from models.lumbar_ccfnet.anatomy import OBJECTS
from models.lumbar_ccfnet.coding import InputFrame, normalise
from models.lumbar_ccfnet.phantom import generate
from models.lumbar_ccfnet.slices import sagittal_slice

SOURCES = ("phantom", "tianchi", "rsna2024")
RSNA_LEVELS = {"L1/L2": "L1-L2", "L2/L3": "L2-L3", "L3/L4": "L3-L4", "L4/L5": "L4-L5",
               "L5/S1": "L5-S1"}  # fmt: skip
RSNA_DISEASED = ("moderate", "severe")


@dataclass
class Sample:
    """One labelled slice, canonical orientation (front left, head up)."""

    pixels: np.ndarray  # (rows, cols) float32
    spacing: tuple[float, float]  # (row, column) mm
    points: np.ndarray  # (11, 2) x, y = column, row; NaN where not annotated
    labels: np.ndarray  # (11,) 1 diseased, 0 normal, -1 unknown
    source: str


def from_volume(image: ImageVolume, k: int, points_ij: dict, labels: dict, source: str) -> Sample:
    """The shared step: slice ``k`` oriented like the adapter's input, points (series i, j)
    mapped with it. ``points_ij``/``labels``: object name -> (i, j) / 0, 1."""
    sl = sagittal_slice(image, k)
    pts = np.full((len(OBJECTS), 2), np.nan)
    lab = np.full(len(OBJECTS), -1.0, np.float32)
    for n, name in enumerate(OBJECTS):
        if name in points_ij:
            pts[n] = sl.from_index(np.asarray(points_ij[name], np.float64))
        if name in labels and labels[name] is not None:
            lab[n] = float(labels[name])
    return Sample(sl.pixels, sl.spacing, pts, lab, source)


def phantom_samples(seeds, rng: np.random.Generator | None = None) -> list[Sample]:
    """Mid-sagittal phantom slices with varied matrix and pixel size (fields of view 200-340 mm)."""
    rng = rng or np.random.default_rng(0)
    out = []
    for seed in seeds:
        size = int(rng.choice([288, 320, 384]))
        pixel = float(rng.uniform(0.62, 0.9))
        s = generate(int(seed), rows=size, cols=size, pixel_mm=pixel, n_slices=1)
        status = {n: int(v == "diseased") for n, v in s.status.items()}
        out.append(from_volume(s.image_volume(), 0, s.landmarks_px, status, f"phantom:{seed}"))
    return out


# ---- Tianchi ----------------------------------------------------------------------------------
def _tianchi_status(tag: dict) -> int | None:
    code = str(tag.get("vertebra") or tag.get("disc") or "").replace(" ", "")
    if not code:
        return None
    return int(any(c and c != "v1" for c in code.split(",")))


def _uid_index(root: Path) -> dict[str, Path]:
    from app.study.dicom_frames import read_header

    index = {}
    for path in sorted(root.rglob("*.dcm")):
        try:
            uid = str(read_header(str(path)).values.get("SOPInstanceUID", ""))
        except Exception:  # noqa: BLE001 - an unreadable file is skipped, like the loader does
            continue
        if uid:
            index[uid] = path
    return index


def tianchi_samples(root: Path) -> list[Sample]:
    root = Path(root)
    index = _uid_index(root)
    out = []
    for jf in sorted(root.rglob("*.json")):
        doc = json.loads(jf.read_text())
        if not isinstance(doc, list):  # other JSON (a phantom's truth.json), not annotations
            continue
        for study in doc:
            for item in study.get("data", []):
                path = index.get(str(item.get("instanceUid", "")))
                if path is None:
                    continue
                pts, lab = {}, {}
                for ann in item.get("annotation", []):
                    for p in ann.get("data", {}).get("point", []):
                        name = str(p.get("tag", {}).get("identification", ""))
                        if name in OBJECTS:
                            pts[name] = [float(v) for v in p["coord"][:2]]
                            lab[name] = _tianchi_status(p.get("tag", {}))
                series = load(path).all_series()
                if series and pts:
                    src = f"tianchi:{study.get('studyUid', '')}"
                    out.append(from_volume(series[0].image, 0, pts, lab, src))
    return out


# ---- RSNA 2024 --------------------------------------------------------------------------------
def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def rsna_samples(root: Path) -> list[Sample]:
    root = Path(root)
    sagittal_t2 = {
        (r["study_id"], r["series_id"])
        for r in _csv(root / "train_series_descriptions.csv")
        if "sagittal t2" in r["series_description"].lower()
    }
    severity = {r["study_id"]: r for r in _csv(root / "train.csv")}
    points: dict[tuple[str, str], list[dict]] = {}
    for r in _csv(root / "train_label_coordinates.csv"):
        key = (r["study_id"], r["series_id"])
        if key in sagittal_t2 and r["condition"].lower() == "spinal canal stenosis":
            points.setdefault(key, []).append(r)
    out = []
    for (study, series_id), rows in sorted(points.items()):
        # The slice holding most points; the others of the series lie on nearby parasagittal
        # slices, and their in-plane positions are kept.
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["instance_number"]] = counts.get(r["instance_number"], 0) + 1
        instance = max(counts, key=lambda k: (counts[k], -int(k)))
        path = root / "train_images" / study / series_id / f"{instance}.dcm"
        if not path.is_file():
            continue
        pts, lab = {}, {}
        for r in rows:
            name = RSNA_LEVELS.get(r["level"].strip())
            if name is None:
                continue
            pts[name] = [float(r["x"]), float(r["y"])]
            col = "spinal_canal_stenosis_" + name.lower().replace("-", "_")
            value = severity.get(study, {}).get(col, "").lower()
            lab[name] = int(any(w in value for w in RSNA_DISEASED)) if value else None
        series = load(path).all_series()
        if series and pts:
            out.append(from_volume(series[0].image, 0, pts, lab, f"rsna2024:{study}"))
    return out


def load_samples(source: str, path: Path | None = None, seeds=None) -> list[Sample]:
    if source == "phantom":
        return phantom_samples(seeds if seeds is not None else range(200))
    if path is None:
        raise ValueError(f"--data {source} needs a PATH")
    samples = tianchi_samples(path) if source == "tianchi" else rsna_samples(path)
    if not samples:
        raise ValueError(f"{path}: no labelled sagittal slices found in the {source} layout")
    return samples


# ---- network inputs ---------------------------------------------------------------------------
def to_arrays(samples: list[Sample], size: int) -> dict[str, np.ndarray]:
    """Inputs (N, 1, S, S) float16, points in input pixels (N, 11, 2), labels (N, 11), mm per
    input pixel (N,): the same framing and normalisation as the adapter."""
    x = np.zeros((len(samples), 1, size, size), np.float16)
    pts = np.zeros((len(samples), len(OBJECTS), 2), np.float32)
    mm = np.zeros(len(samples), np.float32)
    for n, s in enumerate(samples):
        frame = InputFrame.fit(s.pixels.shape, s.spacing, size)
        x[n, 0] = frame.resample(normalise(s.pixels))
        pts[n] = frame.to_input(s.points)
        mm[n] = frame.mm_per_px
    labels = np.stack([s.labels for s in samples]).astype(np.float32)
    return {"x": x, "points": pts, "labels": labels, "mm_per_px": mm}
