"""Grad-CAM of a vertebra's stage-2 fracture score, put back on the CT's slices (numpy + ONNX
Runtime; ``app.engine.gradcam``).

Stage 2 runs one 2-D CNN on each of 8 consecutive triplets of the vertebra's 24 crops, then a
BiLSTM and attention pooling. The shipped ``stage2.onnx`` also outputs the CNN's feature maps
(``features``: (8, K, h, w) per vertebra), and a head graph maps them (with the input's shape,
which its reshape reads) to the fracture logit (``models/common/feature_outputs.py``, applied by
``export.py``). The head is not linear (LSTM, attention), so the channel weights are central
differences through it. The channels are shared by the 8 triplets, so the positions averaged
over are (triplet, row, column): one weight per channel, one map over the whole sequence.

Each triplet's map belongs to its three crops (the CNN saw those slices as its three channels);
in plane it is upsampled to the 64 x 64 crop, and the crops go back on their study slices
through the crop's own geometry (``explain.crop_grid``, ``explain.per_study_slice``; a slice
picked twice gets the mean of its copies).
"""

from __future__ import annotations

import numpy as np

from app.engine.adapter import StageTimer
from app.engine.gradcam import gradcam, gradcam_entry, normalise, upsample
from app.engine.runtime import Manifest, run_session, session_for
from app.findings import AnalysisResult, Finding, HeatmapOverlay
from app.study.geometry import ImageVolume
from models.cervical_fracture.explain import crop_grid, per_study_slice, stage2_input, vertebra_for

GRAPH = "stage2.onnx"


def sequence_cam(
    manifest: Manifest, crops: np.ndarray, timer: StageTimer | None = None
) -> np.ndarray:
    """(24, 64, 64) crops -> their Grad-CAM (24, 64, 64) in [0, 1]."""
    timer = timer or StageTimer()
    entry = gradcam_entry(manifest, GRAPH, "models.cervical_fracture.export")
    sess = session_for(manifest, GRAPH)
    head = session_for(manifest, entry["head"])
    seq = crops.reshape(1, -1, 3, *crops.shape[1:])  # consecutive triplets, as stage 2 reads
    names = [o.name for o in sess.get_outputs()]
    feats = run_session(sess, {"sequence": seq})[names.index(entry["features"])]  # (T, K, h, w)
    t, k = feats.shape[:2]
    a = np.moveaxis(feats, 1, 0)  # (K, T, h, w): channels first, triplets as a position axis

    def score(batch: np.ndarray) -> np.ndarray:  # (N, K, T, h, w) -> (N,) logits
        n = len(batch)
        f = np.moveaxis(batch, 1, 2).reshape(n * t, k, *batch.shape[3:])
        shape = np.array([n, *seq.shape[1:]], np.int64)
        return run_session(head, {entry["features"]: f, "sequence_shape": shape})[0]

    cam, _ = gradcam(score, a, cancel=timer.cancel)
    per_triplet = upsample(normalise(cam), (t, *crops.shape[1:]))
    return np.repeat(per_triplet, seq.shape[2], axis=0)  # each triplet's map on its 3 crops


def vertebra_cam(
    manifest: Manifest,
    ct: ImageVolume,
    result: AnalysisResult,
    finding: Finding,
    timer: StageTimer | None = None,
) -> HeatmapOverlay:
    """The finding's Grad-CAM on the CT's slices (jet, 0..1)."""
    name = vertebra_for(result, finding)
    crops, slices, box = stage2_input(ct, result, name)
    cam = sequence_cam(manifest, crops, timer)
    sums, k0 = per_study_slice(cam, slices)
    counts, _ = per_study_slice(np.ones_like(cam), slices)
    maps = (sums / np.maximum(counts, 1e-6)).astype(np.float32)
    grid = crop_grid(ct, box, k0, len(maps)).with_array(np.clip(maps, 0.0, 1.0))
    via = "" if name == finding.label else f" for {finding.label}"
    return HeatmapOverlay(
        name=f"Grad-CAM {name}{via}",
        image=grid,
        colormap="jet",
        value_range=(0.0, 1.0),
        label=name,
        visible=True,
        opacity=0.45,
        slot="ct",
    )
