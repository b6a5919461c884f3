"""SHAP for a calcaneus finding (numpy + ONNX Runtime; ``shap`` through ``app.engine.shap_maps``).

The classifier reads two channels at its own resolution (128 px): the radiograph and the rough
fracture mask, both padded to a square and resampled (``preprocess``). The explanation masks
both channels together, channels last with a pixel's two values kept in one coalition (shap's
Image-masker rule, ``split_channels=False``): a coalition is a region of the film with its mask
there, and the map says which region made the call. Why not the image channel alone, with the
mask held: the demo network reads its calls mostly from the mask. On the joint-depression demo,
blurring the whole image with the mask held moved P(Collapse Fracture Block) from 0.991 by
-0.006, blurring both channels by -0.48 (measured with ``shap_map``, ``max_evals=500``), and on
six single-label phantoms (seeds 11-16, rough masks given) the image-only map's total was within
0.003 of zero for five (a map of noise, scaled up to the colour bar), while the joint map put
3.2-62x chance of its positive attribution on the label's truth region (the truth-region check
is tests/test_explain_calcaneus.py). The overlay's name and
``result.extra["shap"]`` say what was explained.

Only the finding's column of the ``probabilities`` output is asked of ONNX Runtime (the attention
maps are not computed), and the values, one per network-input pixel, are put back on the
radiograph with ``map_grid``, the grid the run's attention maps use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from app.engine.adapter import AnalysisRequest, ExplainUnavailable, StageTimer
from app.engine.runtime import session_for
from app.engine.shap_maps import DEFAULT_BATCH, DEFAULT_MASKER, shap_map, signed_overlay
from app.findings import Finding, HeatmapOverlay
from models.calcaneus_msrt.adapter import MODEL_FILE, map_grid
from models.calcaneus_msrt.labels import LABELS

if TYPE_CHECKING:
    from models.calcaneus_msrt.adapter import CalcaneusAdapter

EXPLAINED = "image and mask channels together"
WHY = (
    "both network channels are masked together (a pixel's image and mask values in one "
    "coalition): the demo network reads its calls mostly from the mask, so an image-only map "
    "with the mask held is near zero for most findings"
)


def label_predict(sess, label: str) -> Callable[[np.ndarray], np.ndarray]:
    """(N, n, n, 2) channels-last network inputs -> (N,) probability of ``label``, asking ONNX
    Runtime for the ``probabilities`` output only."""
    if label not in LABELS:
        raise ExplainUnavailable(f"calcaneus-fracture has no finding '{label}' to explain")
    k = LABELS.index(label)
    meta = sess.get_inputs()[0]
    dtype = np.float16 if meta.type == "tensor(float16)" else np.float32

    def predict(x: np.ndarray) -> np.ndarray:
        feed = np.ascontiguousarray(np.moveaxis(np.asarray(x), -1, 1), dtype=dtype)
        (probs,) = sess.run(["probabilities"], {meta.name: feed})
        return np.asarray(probs, np.float64)[:, k]

    return predict


def finding_shap(
    adapter: CalcaneusAdapter,
    request: AnalysisRequest,
    finding: Finding,
    timer: StageTimer | None = None,
    *,
    max_evals: int = 500,
    masker: str = DEFAULT_MASKER,
    batch_size: int = DEFAULT_BATCH,
) -> tuple[np.ndarray, dict]:
    """SHAP values of ``finding``'s probability on the network input, summed over its two
    channels: (n, n) float32 (row = padded image row), and shap_map's info plus what was
    explained, why, and which mask the input carried."""
    timer = timer or StageTimer()
    x, _, used, _ = adapter.network_input(request, timer)
    sess = session_for(adapter.manifest, MODEL_FILE)
    values, info = shap_map(
        label_predict(sess, finding.label),
        np.ascontiguousarray(np.moveaxis(x, 0, -1)),  # (n, n, 2): shap's Image layout
        max_evals=max_evals,
        masker=masker,
        batch_size=batch_size,
        progress=timer.progress,
        cancel=timer.cancel,
    )
    info.update(explained=EXPLAINED, why=WHY, mask_used=used)
    return values, info


def shap_overlay(
    adapter: CalcaneusAdapter,
    request: AnalysisRequest,
    finding: Finding,
    timer: StageTimer,
    **kw,
) -> tuple[HeatmapOverlay, dict]:
    """The finding's SHAP map as a signed heatmap on the radiograph, on the attention maps' grid
    (the padding's cells left out), and its info (masker, evals, what was explained and why)."""
    values, info = finding_shap(adapter, request, finding, timer, **kw)
    grid = map_grid(request["radiograph"].image, values.shape[0])
    rows, cols = grid.shape[1:3]
    grid = grid.with_array(np.ascontiguousarray(values[:rows, :cols])[None])
    note = f"{EXPLAINED}, {info['mask_used']} mask"
    return signed_overlay(finding.label, grid, finding.label, "radiograph", info, note), info
