"""SHAP for a femur finding (numpy + ONNX Runtime; ``shap`` through ``app.engine.shap_maps``).

The explanation runs on the network input of the finding's side (the 192 px equalised crop, the
model's own resolution), asks ONNX Runtime for the one output the finding reads, and puts the
values back on the radiograph: a heatmap whose grid is the side's square window, one cell per
network-input pixel, un-mirrored for the right femur (the network sees it flipped).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from app.engine.adapter import ExplainUnavailable, StageTimer
from app.engine.shap_maps import DEFAULT_BATCH, DEFAULT_MASKER, shap_map, signed_overlay
from app.findings import Finding, HeatmapOverlay
from app.study.geometry import ImageVolume
from app.study.model import Series
from models.femur_ao.labels import GROUPS
from models.femur_ao.preprocess import network_inputs, series_pixels
from models.femur_ao.sides import SideCrop

OutputFn = Callable[[list[np.ndarray]], np.ndarray]


def finding_output(finding: Finding) -> tuple[list[str], OutputFn]:
    """The graph outputs a finding's probability is computed from, and how (batched, (N,)).

    The same formulas as the adapter's findings: P(fracture) from the 2-class head, P(type)
    from the 3-class head, a subtype's P(type) shared in the 6-class head's ratios."""
    label, group = finding.label, finding.group
    if group == "fracture" and label == "fracture":
        return ["p_fracture"], lambda o: o[0][:, 1]
    if group == "type" and label in GROUPS["type"]:
        k = GROUPS["type"].index(label)
        return ["p_type"], lambda o: o[0][:, k]
    if group == "subtype" and label in GROUPS["subtype"]:
        n = 1 if label[0] == "A" else 2
        same = [i for i, s in enumerate(GROUPS["subtype"]) if s[0] == label[0]]
        k = GROUPS["subtype"].index(label)

        def joint(o: list[np.ndarray]) -> np.ndarray:
            p_type, p_sub = o
            total = p_sub[:, same].sum(1)
            share = np.where(total > 0, p_sub[:, k] / np.maximum(total, 1e-30), 1 / len(same))
            return p_type[:, n] * share

        return ["p_type", "p_subtype"], joint
    raise ExplainUnavailable(f"femur-ao cannot explain a finding '{label}' ({group or 'no group'})")


def session_predict(sess, finding: Finding) -> Callable[[np.ndarray], np.ndarray]:
    """(N, S, S) network inputs -> (N,) probability of ``finding``, asking ONNX Runtime for the
    outputs that probability needs only (it then skips the class maps and the other heads)."""
    names, combine = finding_output(finding)
    meta = sess.get_inputs()[0]
    dtype = np.float16 if meta.type == "tensor(float16)" else np.float32

    def predict(x: np.ndarray) -> np.ndarray:
        feed = np.ascontiguousarray(np.asarray(x)[:, None], dtype=dtype)
        outs = [np.asarray(o, np.float64) for o in sess.run(names, {meta.name: feed})]
        return combine(outs)

    return predict


def side_crop(series: Series, side: str, input_size: int) -> SideCrop:
    """The network input of one side, made exactly as the run made it."""
    pixels, laterality = series_pixels(series)
    _, crops = network_inputs(pixels, input_size, laterality)
    for crop in crops:
        if crop.side == side:
            return crop
    have = ", ".join(c.side for c in crops)
    raise ExplainUnavailable(f"this radiograph has no {side} femur to explain (it has: {have})")


def side_shap(
    sess,
    crop: SideCrop,
    finding: Finding,
    *,
    max_evals: int = 500,
    masker: str = DEFAULT_MASKER,
    batch_size: int = DEFAULT_BATCH,
    timer: StageTimer | None = None,
) -> tuple[np.ndarray, dict]:
    """SHAP values of ``finding`` on the side's network input, in the window's orientation
    (un-mirrored): (S, S) float32, row = image row, column = image column."""
    timer = timer or StageTimer()
    values, info = shap_map(
        session_predict(sess, finding),
        crop.pixels,
        max_evals=max_evals,
        masker=masker,
        batch_size=batch_size,
        progress=timer.progress,
        cancel=timer.cancel,
    )
    if crop.mirrored:
        values = values[:, ::-1]
    return np.ascontiguousarray(values), info


def window_grid(reference: ImageVolume, crop: SideCrop, cells: int) -> ImageVolume:
    """The side's square window as a ``cells`` x ``cells`` grid in the radiograph's geometry:
    cell n covers image pixels [c0 + n f, c0 + (n + 1) f) with f = size / cells, the way
    ``sides.resize`` samples the window into the network input."""
    r0, c0, size = crop.window
    f = size / cells
    dk, dj, di = reference.spacing
    # Pixel p spans [p - 0.5, p + 0.5]: a cell's centre sits at c0 - 0.5 + (n + 0.5) f.
    origin = reference.index_to_world(np.array([c0 - 0.5 + f / 2, r0 - 0.5 + f / 2, 0.0]))
    return ImageVolume(
        np.zeros((1, cells, cells), np.float32),
        (dk, dj * f, di * f),
        origin,
        reference.direction.copy(),
    )


def shap_overlay(
    sess, series: Series, finding: Finding, input_size: int, timer: StageTimer, **kw
) -> HeatmapOverlay:
    """The finding's SHAP map as a heatmap on the radiograph (signed, coolwarm, symmetric)."""
    crop = side_crop(series, finding.side, input_size)
    values, info = side_shap(sess, crop, finding, timer=timer, **kw)
    grid = window_grid(series.image, crop, values.shape[0]).with_array(values[None])
    who = f"{finding.side} {finding.label}".strip()
    return signed_overlay(who, grid, finding.label, "radiograph", info)
