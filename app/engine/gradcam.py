"""Grad-CAM from exported feature maps (numpy only; Selvaraju et al. 2017).

The map of a class score S over a convolutional feature map A (channels k, positions x) is

    alpha_k = mean over x of dS/dA_k(x),      cam(x) = ReLU(sum_k alpha_k A_k(x)).

ONNX Runtime gives no gradients, so the task's export ships the feature map as an extra output of
its graph and a small *head* graph from A to the score (``models/common/feature_outputs.py``).
``alpha_k`` is then a directional derivative of the head: the sum over positions of dS/dA_k(x)
is the derivative of S along E_k, the map that is 1 on every position of channel k and 0
elsewhere. Central differences along those K directions cost 2K head evaluations (batched),
instead of one per feature value; they are exact for a head that is linear after global pooling
and, for a piecewise-linear one (ReLU, max pooling), wherever the step crosses no kink.

The map is normalised by its maximum: 0 stays "no evidence for the class" and 1 is the
strongest. (MONAI's ``CAM``/``GradCAM`` default normaliser returns ``1 - (x - min)/(max - min)``,
which puts the strongest evidence at 0; a map drawn through it reads inverted.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from app.engine.adapter import AnalysisCancelled, CancelFn, ExplainUnavailable
from app.engine.runtime import Manifest

HeadFn = Callable[[np.ndarray], np.ndarray]  # (N, K, *spatial) feature maps -> (N,) scores
RELATIVE_STEP = 1e-2  # the step, as a fraction of the feature map's RMS value
DEFAULT_BATCH = 64


def gradcam_entry(manifest: Manifest, graph: str, export_module: str) -> dict:
    """The manifest's ``gradcam`` entry for ``graph`` (its head file and feature output names,
    written by the task's ``export.py``); ExplainUnavailable, saying how to add them, for
    weights exported without."""
    entry = manifest.data.get("gradcam", {}).get(graph)
    if not entry:
        raise ExplainUnavailable(
            f"{manifest.folder / graph} was exported without Grad-CAM feature outputs; add them "
            f"with: python -m {export_module} --gradcam-only --out {manifest.folder}"
        )
    return dict(entry)


def step_for(features: np.ndarray) -> float:
    """The finite-difference step: 1% of the map's RMS (float32 scores lose nothing at that
    size, and a piecewise-linear head rarely crosses a kink within it)."""
    rms = float(np.sqrt(np.mean(np.square(features, dtype=np.float64))))
    return RELATIVE_STEP * rms if rms > 0 else RELATIVE_STEP


def channel_weights(
    head: HeadFn,
    features: np.ndarray,
    *,
    step: float | None = None,
    batch_size: int = DEFAULT_BATCH,
    cancel: CancelFn | None = None,
) -> np.ndarray:
    """Grad-CAM weights alpha (K,) of ``head`` at ``features`` (K, *spatial), channels first,
    by central differences along each channel's all-ones direction (see the module docstring)."""
    a = np.asarray(features, np.float32)
    k = a.shape[0]
    h = step_for(a) if step is None else float(step)
    positions = a[0].size
    weights = np.empty(k, np.float64)
    for start in range(0, k, max(1, batch_size // 2)):
        if cancel is not None and cancel():
            raise AnalysisCancelled("explanation cancelled")
        chans = np.arange(start, min(k, start + max(1, batch_size // 2)))
        batch = np.repeat(a[None], 2 * len(chans), axis=0)
        for n, c in enumerate(chans):
            batch[2 * n, c] += h
            batch[2 * n + 1, c] -= h
        s = np.asarray(head(batch), np.float64).reshape(len(batch))
        weights[chans] = (s[0::2] - s[1::2]) / (2 * h) / positions
    return weights.astype(np.float32)


def linear_head_weights(w: np.ndarray, positions: int) -> np.ndarray:
    """The exact weights for a head S = w . mean_x(A(x)) + b (global average pooling then a
    linear score): dS/dA_k(x) = w_k / positions at every x, so alpha_k = w_k / positions."""
    return np.asarray(w, np.float32) / float(positions)


def weighted_map(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ReLU(sum_k alpha_k A_k): (K, *spatial) and (K,) -> (*spatial), float32, >= 0."""
    a = np.asarray(features, np.float32)
    cam = np.tensordot(np.asarray(weights, np.float32), a, axes=(0, 0))
    return np.maximum(cam, 0.0).astype(np.float32)


def normalise(cam: np.ndarray, peak: float | None = None) -> np.ndarray:
    """``cam / peak`` (default its own maximum) in [0, 1]; an all-zero map stays zero. Never
    min-max inverted: 0 means no evidence (see the module docstring)."""
    top = float(np.max(cam)) if peak is None else float(peak)
    if top <= 0 or not np.isfinite(top):
        return np.zeros_like(cam, dtype=np.float32)
    return np.clip(np.asarray(cam, np.float32) / top, 0.0, 1.0)


def upsample(cam: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Linear resize of a map onto ``shape`` (same number of axes), cell centres aligned: cell n
    of m covers [n, n + 1) * size / m, as a stride-s feature map covers its input. Values at the
    border are held (no extrapolation)."""
    out = np.asarray(cam, np.float32)
    for axis, size in enumerate(shape):
        m = out.shape[axis]
        if m == size:
            continue
        pos = np.clip((np.arange(size) + 0.5) * m / size - 0.5, 0, m - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, m - 1)
        frac = (pos - lo).astype(np.float32)
        shape_f = [1] * out.ndim
        shape_f[axis] = size
        frac = frac.reshape(shape_f)
        out = np.take(out, lo, axis=axis) * (1 - frac) + np.take(out, hi, axis=axis) * frac
    return out.astype(np.float32)


def gradcam(
    head: HeadFn,
    features: np.ndarray,
    *,
    step: float | None = None,
    batch_size: int = DEFAULT_BATCH,
    cancel: CancelFn | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(unnormalised map over the feature positions, the channel weights) for one feature map
    (K, *spatial); the caller upsamples and normalises (jointly, where maps are compared)."""
    weights = channel_weights(head, features, step=step, batch_size=batch_size, cancel=cancel)
    return weighted_map(features, weights), weights
