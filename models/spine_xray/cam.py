"""Grad-CAM of P(damaged) on both views (numpy + ONNX Runtime; ``app.engine.gradcam``).

The shipped classifier outputs each view's last convolutional feature map beside its
probabilities (``features_ap``, ``features_lateral``: the encoders' last block, before the
global max pooling), and a head graph maps the two feature maps to the logits
[normal, damaged] (``models/common/feature_outputs.py``, applied by ``export.py``). The score
explained is their difference, the log-odds of damaged (P(damaged) is a monotone function of
it). Each view's weights are taken with the other view's features held fixed; the two maps are
normalised by their common maximum, so a view that carries no evidence looks empty rather than
stretched.
"""

from __future__ import annotations

import numpy as np

from app.engine.adapter import StageTimer
from app.engine.gradcam import gradcam, gradcam_entry, normalise, upsample
from app.engine.runtime import Manifest, run_session, session_for
from app.findings import HeatmapOverlay
from app.study.model import Series
from models.spine_xray.preprocess import Letterbox, resize

VIEWS = ("ap", "lateral")


def damaged_cam(
    manifest: Manifest,
    graph: str,
    inputs: dict[str, tuple[np.ndarray, Letterbox]],
    timer: StageTimer | None = None,
) -> dict[str, np.ndarray]:
    """Per view, the Grad-CAM of log-odds(damaged) on the classifier input (S, S), in [0, 1]
    with one scale for both views."""
    timer = timer or StageTimer()
    entry = gradcam_entry(manifest, graph, "models.spine_xray.export")
    sess = session_for(manifest, graph)
    head = session_for(manifest, entry["head"])
    names = entry["features"]  # view -> output name
    out_names = [o.name for o in sess.get_outputs()]
    outs = run_session(sess, {v: inputs[v][0][None, None] for v in VIEWS})
    feats = {v: outs[out_names.index(names[v])][0] for v in VIEWS}
    raw: dict[str, np.ndarray] = {}
    for view in VIEWS:
        other = "lateral" if view == "ap" else "ap"

        def score(batch: np.ndarray, view=view, other=other) -> np.ndarray:
            fixed = np.repeat(feats[other][None], len(batch), axis=0)
            z = run_session(head, {names[view]: batch, names[other]: fixed})[0]
            return z[:, 1] - z[:, 0]

        cam, _ = gradcam(score, feats[view], cancel=timer.cancel)
        raw[view] = upsample(cam, inputs[view][0].shape)
    peak = max(float(m.max()) for m in raw.values())
    return {v: normalise(m, peak) for v, m in raw.items()}


def cam_overlay(series: Series, view: str, cam: np.ndarray, box: Letterbox) -> HeatmapOverlay:
    """The classifier-input map put on the view's radiograph (its heatmap grid)."""
    from app.findings.types import HEATMAP_MAX_SIDE
    from models.spine_xray.adapter import VIEW_NAMES

    grid, _ = series.image.in_plane_coarsened(HEATMAP_MAX_SIDE)
    canvas = resize(cam[: box.used_rows, : box.used_cols], grid.shape[1:])
    return HeatmapOverlay(
        name=f"Grad-CAM damaged ({VIEW_NAMES[view]})",
        image=grid.with_array(np.clip(canvas, 0, 1)[None].astype(np.float32)),
        colormap="jet",
        value_range=(0.0, 1.0),
        label="damaged",
        opacity=0.45,
        slot=view,
    )
