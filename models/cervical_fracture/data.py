"""Training data: phantoms or a folder in the RSNA 2022 layout, through one code path.

Both sources yield ``StudyRecord`` (CT in HU + optional label map on the CT's grid + the eight
targets); everything after that (working grid, 2.5D slices, vertebra crops) is the same numpy code
the adapter runs (``pipeline.py``).

RSNA 2022 layout::

    ROOT/train.csv                               StudyInstanceUID, patient_overall, C1..C7
    ROOT/train_images/<StudyInstanceUID>/*.dcm   one axial CT series per study
    ROOT/segmentations/<StudyInstanceUID>.nii    label map for some studies (1..7 = C1..C7,
                                                 8..  = thoracic, relabelled to 8 "other spine")

The RSNA segmentation NIfTIs are known to be stored flipped along the slice axis relative to the
DICOM series (their voxel order and affine do not agree with the DICOM positions). We load them
with ``app.study.nifti.read_nifti``, resample onto the CT grid through world coordinates, then test
whether the labels sit on bone; if a flip along the CT's slice axis fits the bone clearly better,
we apply that flip and record it in ``StudyRecord.notes``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.study import load
from app.study.geometry import ImageVolume
from app.study.nifti import read_nifti
from models.cervical_fracture import pipeline as P
from models.cervical_fracture.phantom import generate

TARGETS = (*P.VERTEBRAE, "patient_overall")


@dataclass
class StudyRecord:
    uid: str
    ct: ImageVolume
    labels: ImageVolume | None  # on the CT's grid, values 0..8
    targets: dict[str, int]
    notes: list[str] = field(default_factory=list)

    def target_vector(self) -> np.ndarray:
        return np.array([self.targets[t] for t in TARGETS], dtype=np.float32)


# ---- sources ----------------------------------------------------------------------------------
def phantom_records(seeds: list[int], **options) -> Iterator[StudyRecord]:
    for seed in seeds:
        s = generate(seed, **options)
        yield StudyRecord(f"phantom-{seed}", s.ct, s.labels, s.truth_labels())


def load_ct_folder(folder: Path) -> ImageVolume:
    """The largest CT volume in a DICOM folder, read by the project's one reader
    (``app.study.load``: sorts by position along the normal, handles gantry tilt), so a training
    study is read exactly as the viewer and the adapter read it."""
    result = load(Path(folder))
    vols = [s for s in result.all_series() if s.kind == "volume" and s.modality == "CT"]
    if not vols:
        reasons = "; ".join(f"{e.path}: {e.reason}" for e in result.errors[:3])
        raise ValueError(f"{folder}: no CT volume found" + (f" ({reasons})" if reasons else ""))
    return max(vols, key=lambda s: int(np.prod(s.shape))).image


def resample_labels_to(labels: ImageVolume, reference: ImageVolume) -> np.ndarray:
    """Nearest-neighbour label values at each reference voxel, through LPS world coordinates."""
    nk, nj, ni = reference.shape
    out = np.zeros(reference.shape, dtype=np.uint8)
    jj, ii = np.mgrid[0:nj, 0:ni]
    src = labels.array
    for k in range(nk):
        ijk = np.stack([ii, jj, np.full_like(ii, k)], axis=-1).astype(float)
        idx = np.round(labels.world_to_index(reference.index_to_world(ijk))).astype(np.int64)
        i, j, kk = idx[..., 0], idx[..., 1], idx[..., 2]
        ok = (
            (i >= 0)
            & (i < src.shape[2])
            & (j >= 0)
            & (j < src.shape[1])
            & (kk >= 0)
            & (kk < src.shape[0])
        )
        out[k][ok] = src[kk[ok], j[ok], i[ok]]
    return out


def relabel_rsna(arr: np.ndarray) -> np.ndarray:
    """RSNA values 1..7 = C1..C7, 8..19 = T1..T12 -> paper Table 4.1 (8 = other spine)."""
    out = np.asarray(arr).astype(np.int64)
    out = np.where(out > 8, 8, out)
    return np.clip(out, 0, 8).astype(np.uint8)


def fix_flip(ct: ImageVolume, labels: np.ndarray) -> tuple[np.ndarray, str]:
    """Flip the label map along the slice axis if that puts its labels clearly more on bone."""
    if not (labels > 0).any():
        return labels, ""
    flipped = labels[::-1]
    hu_as_is = float(ct.array[labels > 0].mean())
    hu_flipped = float(ct.array[flipped > 0].mean()) if (flipped > 0).any() else -1e9
    if hu_flipped > hu_as_is + 100:
        msg = (
            f"segmentation flipped along the slice axis (labels on bone: mean {hu_flipped:.0f} HU"
            f" flipped vs {hu_as_is:.0f} HU as stored)"
        )
        return np.ascontiguousarray(flipped), msg
    return labels, ""


def rsna_records(root: Path, uids: list[str] | None = None) -> Iterator[StudyRecord]:
    root = Path(root)
    table = root / "train.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table}: train.csv is missing (RSNA 2022 layout expected)")
    with table.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        uid = row["StudyInstanceUID"]
        if uids is not None and uid not in uids:
            continue
        folder = root / "train_images" / uid
        if not folder.is_dir():
            continue
        ct = load_ct_folder(folder)
        targets = {t: int(float(row[t])) for t in TARGETS}
        notes: list[str] = []
        labels = None
        seg = root / "segmentations" / f"{uid}.nii"
        if not seg.is_file():
            seg = seg.with_suffix(".nii.gz")
        if seg.is_file():
            raw = read_nifti(seg)
            raw = ImageVolume(relabel_rsna(raw.array), raw.spacing, raw.origin, raw.direction)
            arr, note = fix_flip(ct, resample_labels_to(raw, ct))
            if note:
                notes.append(note)
            labels = ct.with_array(arr)
        yield StudyRecord(uid, ct, labels, targets, notes)


def records_from(data: str, seeds: list[int] | None = None, **options) -> Iterator[StudyRecord]:
    """``phantom`` -> phantom records for ``seeds``; anything else is an RSNA-layout folder."""
    if data == "phantom":
        return phantom_records(seeds or [0], **options)
    return rsna_records(Path(data))


# ---- training samples (numpy, identical preprocessing to inference) ----------------------------
@dataclass
class Stage1Study:
    work: np.ndarray  # (K, H, W) float16 windowed
    labels: np.ndarray  # (K, H, W) uint8


@dataclass
class VertebraSample:
    study: str
    name: str
    crops: np.ndarray  # (24, S, S) float16
    target: int


def stage1_study(rec: StudyRecord) -> Stage1Study | None:
    if rec.labels is None:
        return None
    grid = P.make_working_grid(rec.ct)
    work = P.to_working(rec.ct, grid).astype(np.float16)
    labs = P.labels_to_working(rec.labels.array, grid).astype(np.uint8)
    return Stage1Study(work, labs)


def vertebra_samples(
    rec: StudyRecord,
    work_labels: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    jitter: float = 0.0,
) -> list[VertebraSample]:
    """Stage-2 samples: per vertebra, 24 crops picked as the adapter picks them.

    ``work_labels`` is a stage-1 label map on the working grid (pseudo-labels, as the paper does
    for the studies without segmentation); by default the record's own label map is used.
    """
    grid = P.make_working_grid(rec.ct)
    if work_labels is None:
        if rec.labels is None:
            return []
        work_labels = P.labels_to_working(rec.labels.array, grid)
    out = []
    for name, region in P.vertebra_regions(work_labels).items():
        box = P.study_box_for(region, grid)
        if rng is not None and jitter > 0:
            h, w = box[2] - box[0], box[3] - box[1]
            d = rng.uniform(-jitter, jitter, size=4) * np.array([h, w, h, w])
            box = tuple(float(b + x) for b, x in zip(box, d, strict=True))
        slices = P.pick_slices(P.study_slices_for(region, grid))
        crops = P.crop_slices(rec.ct.array, slices, box)
        out.append(VertebraSample(rec.uid, name, crops.astype(np.float16), rec.targets[name]))
    return out
