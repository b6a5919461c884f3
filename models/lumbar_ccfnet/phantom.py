"""Synthetic sagittal T2-weighted lumbar MR: a few slices, 11 landmarks, per-object labels.

The CCF-Net paper (Zhang et al.) localises and classifies eleven objects on one sagittal T2
slice: the vertebrae L1-L5 and the discs T12-L1, L1-L2, L2-L3, L3-L4, L4-L5, L5-S1 (the
Tianchi spinal disease dataset's labels), each normal or diseased. This generator draws the
mid-sagittal slice (the labelled one) and its neighbours: vertebral bodies with marrow signal
and dark cortical endplates, discs with a bright nucleus, the CSF-filled thecal sac with conus
and cauda equina, posterior elements, paraspinal fat and muscle, abdominal contents; then a
surface-coil bias field and Rician noise.

Disease: a degenerated disc is darker (dehydrated nucleus), thinner and may bulge into the
canal; a diseased vertebra has endplate (Modic-like) signal change and small osteophytes.
Adjacent objects tend to share disease, as the paper's context module assumes.

Geometry: standard sagittal DICOM orientation (rows toward the feet, columns toward the back:
ImageOrientationPatient 0\\1\\0\\0\\0\\-1), slices stacked toward the patient's right.

The column and the object names are in ``anatomy.py``, which objects are diseased is drawn in
``disease.py``, a slice's signal is painted in ``t2_signal.py``; this module stacks the slices,
adds noise, and writes a sample as a study.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.common import xray_grid as xg
from models.lumbar_ccfnet.anatomy import OBJECTS, VERTEBRAE, build_column
from models.lumbar_ccfnet.disease import DEFAULT_DISC_PROBS, DEFAULT_VERTEBRA_PROB, choose_status
from models.lumbar_ccfnet.t2_signal import bias_field, render_slice

TASK_ID = "lumbar-mri"


@dataclass
class LumbarSample:
    """A small sagittal T2 series with landmark and disease truth."""

    volume: np.ndarray  # (slices, rows, cols) uint16
    spacing: tuple[float, float, float]  # (slice, row, column) mm
    origin: np.ndarray  # LPS of voxel (0, 0, 0)
    direction: np.ndarray  # columns: LPS directions of i, j, k
    mid_slice: int  # index of the labelled (mid-sagittal) slice
    landmarks_px: dict[str, tuple[float, float]]  # name -> (i, j) on the mid slice
    status: dict[str, str]  # name -> "normal" / "diseased"
    objects: np.ndarray  # uint8 (slices, rows, cols), n = OBJECTS[n - 1]
    seed: int
    window: tuple[float, float]
    params: dict = field(default_factory=dict)

    def image_volume(self, array: np.ndarray | None = None):
        from app.study.geometry import ImageVolume

        arr = self.volume if array is None else array
        return ImageVolume(arr, self.spacing, self.origin.copy(), self.direction.copy())

    @property
    def landmarks_lps(self) -> dict[str, np.ndarray]:
        vol = self.image_volume()
        return {
            n: vol.index_to_world(np.array([i, j, float(self.mid_slice)]))
            for n, (i, j) in self.landmarks_px.items()
        }

    def label_vector(self) -> np.ndarray:
        return np.array([float(self.status[n] == "diseased") for n in OBJECTS], dtype=np.float32)


def generate(
    seed: int,
    rows: int = 384,
    cols: int = 384,
    pixel_mm: float = 0.7,
    n_slices: int = 5,
    slice_mm: float = 4.0,
    disc_probs: tuple[float, ...] | None = None,
    vertebra_prob: float = DEFAULT_VERTEBRA_PROB,
    status: dict[str, str] | None = None,
    noise: float = 0.03,
) -> LumbarSample:
    """Render one sagittal T2 lumbar series for ``seed``.

    ``status`` forces objects' labels (names from ``OBJECTS``; missing ones are normal). The
    labelled slice is the middle one (``n_slices // 2``).
    """
    if n_slices < 1:
        raise ValueError("n_slices must be at least 1")
    rng = np.random.default_rng(seed)
    grid = xg.Grid(rows, cols, pixel_mm, pixel_mm)
    st = choose_status(rng, disc_probs or DEFAULT_DISC_PROBS, vertebra_prob, status)
    size = rng.uniform(0.92, 1.08)
    spine = build_column(rng, grid, size, st)
    mid = n_slices // 2
    offsets = (np.arange(n_slices) - mid) * slice_mm
    vol = np.zeros((n_slices, rows, cols), dtype=np.float32)
    objects = np.zeros((n_slices, rows, cols), dtype=np.uint8)
    bias = bias_field(rng, grid)
    for k, dx in enumerate(offsets):
        # Each slice gets its own texture draws, seeded from the sample's generator.
        img, obj = render_slice(np.random.default_rng(rng.integers(1 << 31)), grid, spine, st,
                                 float(dx), size)  # fmt: skip
        img = img * bias
        n1 = rng.standard_normal(img.shape).astype(np.float32) * noise
        n2 = rng.standard_normal(img.shape).astype(np.float32) * noise
        vol[k] = np.sqrt((img + n1) ** 2 + n2**2)  # magnitude image: Rician noise
        objects[k] = obj
    pixels = np.round(np.clip(vol, 0, None) * 1000).astype(np.uint16)
    # Sagittal: i toward posterior, j toward inferior, k toward the patient's right.
    direction = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    origin = np.array([mid * slice_mm, -0.45 * grid.width_mm, 0.5 * grid.height_mm])
    lo, hi = np.percentile(pixels[mid], [1, 99.5])
    return LumbarSample(
        volume=pixels,
        spacing=(slice_mm, pixel_mm, pixel_mm),
        origin=origin,
        direction=direction,
        mid_slice=mid,
        landmarks_px={
            n: (float(p[0] / pixel_mm), float(p[1] / pixel_mm))
            for n, p in spine["landmarks"].items()
        },  # fmt: skip
        status=st,
        objects=objects,
        seed=seed,
        window=(float((lo + hi) / 2), float(max(hi - lo, 1))),
        params={"size": float(size)},
    )


# ---- writing -------------------------------------------------------------------------------


def write_study(sample: LumbarSample, out_dir: Path) -> Path:
    """Write the series as MR DICOM (one file per slice) plus truth.json; returns ``out_dir``."""
    from app.findings.truth import write_truth
    from models.common.study_writer import phantom_patient, phantom_source, write_phantom_series

    out_dir = Path(out_dir)
    patient = phantom_patient(
        f"PHANTOM^LSPINE^{sample.seed}", f"PH-LMR-{sample.seed:05d}",
        "Synthetic lumbar spine MR (phantom, not a patient)", "LSPINE",
    )  # fmt: skip
    write_phantom_series(
        sample.image_volume(), out_dir, patient=patient, modality="MR",
        series_description="SAG T2 TSE (synthetic)", window=sample.window,
        file_names=[f"sag_t2_{k:03d}.dcm" for k in range(sample.volume.shape[0])], tags=MR_TAGS,
    )  # fmt: skip
    colors = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48)]
    table = {n + 1: (name, colors[n % 5] if name in VERTEBRAE else (70, 240, 240))
             for n, name in enumerate(OBJECTS)}  # fmt: skip
    write_truth(
        out_dir,
        TASK_ID,
        labels={
            "objects": dict(sample.status),
            "diseased": [n for n in OBJECTS if sample.status[n] == "diseased"],
            "labelled_slice_index": sample.mid_slice,
            "landmarks_px": {n: [round(i, 2), round(j, 2)] for n, (i, j) in
                             sample.landmarks_px.items()},  # fmt: skip
        },
        source=phantom_source(sample.seed, "models.lumbar_ccfnet.phantom"),
        labelmaps=[("Vertebrae and discs (truth)", sample.image_volume(sample.objects), table)],
        landmarks=[{"name": n, "position_lps": [round(float(c), 3) for c in p],
                    "status": sample.status[n]} for n, p in sample.landmarks_lps.items()],
    )  # fmt: skip
    return out_dir


# MR acquisition tags a reader expects on a sagittal T2 TSE (the writer is generic).
MR_TAGS = {
    "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"],
    "ScanningSequence": "SE",
    "SequenceVariant": "SK",
    "MRAcquisitionType": "2D",
    "RepetitionTime": "3200",
    "EchoTime": "105",
    "EchoTrainLength": "17",
    "MagneticFieldStrength": "1.5",
    "ProtocolName": "L-SPINE SAG T2 (synthetic)",
}


def write_demo(out_dir: Path, seed: int = 0, rows: int = 320, cols: int = 320,
               pixel_mm: float = 0.84, n_slices: int = 5) -> list[Path]:  # fmt: skip
    """A normal lumbar spine and one with lower-disc degeneration and an L5 endplate change."""
    base = Path(out_dir) / TASK_ID
    cases = [
        ("normal", {}),
        ("degenerated_L4-S1", {"L4-L5": "diseased", "L5-S1": "diseased", "L5": "diseased"}),
    ]
    out = []
    for n, (name, status) in enumerate(cases):
        sample = generate(seed * 100 + n, rows=rows, cols=cols, pixel_mm=pixel_mm,
                          n_slices=n_slices, status=status)  # fmt: skip
        out.append(write_study(sample, base / f"{n + 1:02d}_{name}"))
    return out
