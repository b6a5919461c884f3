"""The two-stage pipeline on one CT, with the networks passed in as functions (numpy only).

The adapter passes ONNX Runtime sessions, the benchmark passes torch modules as well; the
pre/post-processing in between is the same code either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from app.engine.adapter import StageTimer
from app.study.geometry import ImageVolume
from models.cervical_fracture import pipeline as P

Stage1Fn = Callable[[np.ndarray], np.ndarray]  # (N, 3, H, W) -> (N, 9, H, W) probabilities
Stage2Fn = Callable[[np.ndarray], np.ndarray]  # (B, 8, 3, S, S) -> (B,) probabilities

STAGE1_BATCH = 16


@dataclass
class VertebraResult:
    name: str
    label: int
    probability: float
    voxels_work: int
    study_slices: list[int]  # the slices the paper's >50% share rule keeps, study indices
    picked_slices: list[int]  # the 24 fed to stage 2
    box_ji: tuple[float, float, float, float]  # (j0, i0, j1, i1) study voxel indices


@dataclass
class PipelineOutput:
    grid: P.WorkingGrid
    work_labels: np.ndarray
    study_labels: np.ndarray  # on the study's own voxel grid
    vertebrae: dict[str, VertebraResult] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    patient_probability: float | None = None


def run_stage1(
    ct: ImageVolume, stage1: Stage1Fn, timer: StageTimer, start: float = 0.0, span: float = 0.5
) -> tuple[P.WorkingGrid, np.ndarray]:
    """Working grid and label map (ordered levels) of a CT."""
    with timer.stage("preprocess", start):
        grid = P.make_working_grid(ct)
        work = P.to_working(ct, grid)
        x = P.stage1_inputs(work)
    with timer.stage("stage1_segmentation", start + 0.1 * span):
        probs = np.empty((len(x), P.N_CLASSES, *x.shape[2:]), dtype=np.float32)
        for b in range(0, len(x), STAGE1_BATCH):
            timer.check_cancel()
            probs[b : b + STAGE1_BATCH] = stage1(x[b : b + STAGE1_BATCH])
    with timer.stage("stage1_postprocess", start + 0.9 * span):
        labels = P.labels_from_probs(probs, P.superior_is_high_k(ct))
    return grid, labels


def run_pipeline(
    ct: ImageVolume,
    stage1: Stage1Fn,
    stage2: Stage2Fn,
    timer: StageTimer | None = None,
    top_n: int = P.TOP_N,
    require_all: bool = True,
    stage1_result: tuple[P.WorkingGrid, np.ndarray] | None = None,
) -> PipelineOutput:
    """Stage 1, regions, stage 2 per vertebra, patient aggregate. ``timer`` reports progress.

    ``stage1_result`` (grid, working label map) skips stage 1 when the caller already ran it.
    """
    timer = timer or StageTimer()
    if stage1_result is None:
        grid, work_labels = run_stage1(ct, stage1, timer)
    else:
        grid, work_labels = stage1_result
    with timer.stage("labelmap_to_study", 0.5):
        study_labels = P.labels_to_study(work_labels, grid)
        regions = P.vertebra_regions(work_labels)
    out = PipelineOutput(grid, work_labels, study_labels)
    out.missing = [v for v in P.VERTEBRAE if v not in regions]
    if out.missing and require_all:
        return out
    n = max(1, len(regions))
    for done, (name, region) in enumerate(regions.items()):
        with timer.stage("stage2_classification", 0.55 + 0.4 * done / n):
            slices = P.study_slices_for(region, grid)
            picked = P.pick_slices(slices)
            box = P.study_box_for(region, grid)
            crops = P.crop_slices(ct.array, picked, box)
            seq = P.stage2_sequence(crops)[None]
            prob = float(np.asarray(stage2(seq)).reshape(-1)[0])
        out.vertebrae[name] = VertebraResult(
            name,
            region.label,
            prob,
            region.voxels,
            [int(s) for s in slices],
            [int(s) for s in picked],
            tuple(float(b) for b in box),
        )
    with timer.stage("aggregate", 0.97):
        probs = [v.probability for v in out.vertebrae.values()]
        out.patient_probability = P.patient_probability(np.array(probs), top_n) if probs else None
    return out
