"""SHAP for a vertebra's stage-2 probability, put back on the CT's slices (numpy + ONNX Runtime).

Stage 2 reads 24 crops of one vertebra (``pipeline.crop_slices``: the vertebra's box plus a
margin, resized to 64 x 64, at 24 slices picked from its slice list). The explanation masks that
input as a (64, 64, 24) image whose coalitions are blocks across rows, columns and slices (the
slice axis is split like the others, see ``app.engine.shap_maps.partition_tree``), so the map
says where in the vertebra and at which level the evidence lies. Each crop's map is then placed
on its study slice through the crop's own geometry; slices between two picked ones (a vertebra
taller than 24 slices) get the map interpolated between them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from app.engine.adapter import ExplainUnavailable, StageTimer
from app.engine.shap_maps import DEFAULT_BATCH, DEFAULT_MASKER, shap_map, signed_overlay
from app.findings import AnalysisResult, Finding, HeatmapOverlay
from app.study.geometry import ImageVolume
from models.cervical_fracture import pipeline as P


def vertebra_for(result: AnalysisResult, finding: Finding) -> str:
    """The vertebra a finding is about; patient_overall is explained by its most probable
    vertebra (the one that weighs most in 1 - prod(1 - p))."""
    if finding.label in P.VERTEBRAE:
        return finding.label
    if finding.label == "patient_overall":
        per = [f for f in result.findings if f.label in P.VERTEBRAE]
        if per:
            return max(per, key=lambda f: f.probability).label
    raise ExplainUnavailable(f"cervical-fracture cannot explain '{finding.label}'")


def stage2_input(
    ct: ImageVolume, result: AnalysisResult, name: str
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """(24, 64, 64) crops the run fed stage 2 for ``name``, their study slices, the box."""
    boxes = result.extra.get("vertebra_boxes", {})
    picked = result.extra.get("stage2_slices", {}).get(name)
    if name not in boxes or not picked:
        raise ExplainUnavailable(f"the run has no stage-2 input recorded for {name}")
    b = boxes[name]
    box = _exact_box(ct, (float(b["j0"]), float(b["i0"]), float(b["j1"]), float(b["i1"])))
    slices = np.asarray(picked, np.int64)
    return P.crop_slices(ct.array, slices, box), slices, box


def _exact_box(
    ct: ImageVolume, rounded: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """The box the run cropped, from the 2-decimal copy in ``result.extra``.

    Its edges lie on the working grid's cell edges (``pipeline.study_box_for``), and the working
    grid is a cheap, deterministic function of the CT, so each edge snaps back exactly. Stage 2
    is sensitive enough that the rounded box moved C2's probability by 0.002 on the demo study.
    """
    grid = P.make_working_grid(ct)
    out = []
    for value, axis in zip(rounded, (grid.axes[1], grid.axes[2]) * 2, strict=True):
        n = round((value - axis.start) / axis.step + 0.5)
        exact = axis.start + (n - 0.5) * axis.step
        out.append(exact if abs(exact - value) <= 0.006 else value)  # 0.005: the rounding
    return out[0], out[1], out[2], out[3]


def stage2_predict(sess) -> Callable[[np.ndarray], np.ndarray]:
    """(N, 64, 64, 24) channels-last crops -> (N,) stage-2 probabilities."""
    meta = sess.get_inputs()[0]
    dtype = np.float16 if meta.type == "tensor(float16)" else np.float32

    def predict(x: np.ndarray) -> np.ndarray:
        crops = np.moveaxis(np.asarray(x), -1, 1)  # (N, 24, 64, 64)
        seq = crops.reshape(len(crops), -1, 3, *crops.shape[2:])  # consecutive triplets
        out = sess.run(None, {meta.name: np.ascontiguousarray(seq, dtype=dtype)})[0]
        return np.asarray(out, np.float64).reshape(len(x))

    return predict


def crop_grid(
    ct: ImageVolume, box: tuple[float, float, float, float], k0: int, nk: int
) -> ImageVolume:
    """The crops' pixels as a grid in the CT's geometry: crop pixel n sits at study index
    start + n * step on each in-plane axis, exactly as ``crop_slices`` samples it; k runs over
    the study slices k0 .. k0 + nk - 1."""
    j0, i0, j1, i1 = box
    hj, hi = (j1 - j0) * P.BOX_MARGIN, (i1 - i0) * P.BOX_MARGIN
    j0, j1, i0, i1 = j0 - hj, j1 + hj, i0 - hi, i1 + hi
    sj, si = (j1 - j0) / P.CROP_SIZE, (i1 - i0) / P.CROP_SIZE
    origin = ct.index_to_world(np.array([i0 + si / 2 - 0.5, j0 + sj / 2 - 0.5, float(k0)]))
    dk, dj, di = ct.spacing
    return ImageVolume(
        np.zeros((nk, P.CROP_SIZE, P.CROP_SIZE), np.float32),
        (dk, dj * sj, di * si),
        origin,
        ct.direction.copy(),
    )


def per_study_slice(values: np.ndarray, slices: np.ndarray) -> tuple[np.ndarray, int]:
    """(24, H, W) maps of the picked slices -> (nk, H, W) over study slices min..max: a slice
    picked twice gets both copies' credit, an unpicked one the interpolation of its neighbours."""
    k0 = int(slices.min())
    uniq = np.unique(slices)
    summed = np.stack([values[slices == k].sum(0) for k in uniq])
    ks = np.arange(k0, int(slices.max()) + 1)
    pos = np.searchsorted(uniq, ks)  # first picked slice >= k
    hi = np.clip(pos, 0, len(uniq) - 1)
    lo = np.clip(pos - 1, 0, len(uniq) - 1)
    exact = uniq[hi] == ks
    lo = np.where(exact, hi, lo)
    span = np.maximum(uniq[hi] - uniq[lo], 1)
    w = np.where(exact, 0.0, (ks - uniq[lo]) / span)[:, None, None]
    return (summed[lo] * (1 - w) + summed[hi] * w).astype(np.float32), k0


def vertebra_shap(
    sess,
    ct: ImageVolume,
    result: AnalysisResult,
    finding: Finding,
    timer: StageTimer | None = None,
    *,
    max_evals: int = 500,
    masker: str = DEFAULT_MASKER,
    batch_size: int = DEFAULT_BATCH,
) -> HeatmapOverlay:
    """The finding's SHAP map on the CT's slices (signed, coolwarm, symmetric range)."""
    timer = timer or StageTimer()
    name = vertebra_for(result, finding)
    crops, slices, box = stage2_input(ct, result, name)
    image = np.ascontiguousarray(np.moveaxis(crops, 0, -1))  # (64, 64, 24): slices as channels
    values, info = shap_map(
        stage2_predict(sess),
        image,
        max_evals=max_evals,
        masker=masker,
        batch_size=batch_size,
        progress=timer.progress,
        cancel=timer.cancel,
        keep_channels=True,
        split_channels=True,
    )
    maps, k0 = per_study_slice(np.moveaxis(values, -1, 0), slices)
    grid = crop_grid(ct, box, k0, len(maps)).with_array(maps)
    via = "" if name == finding.label else f"for {finding.label}"
    return signed_overlay(name, grid, name, "ct", info, note=via)
