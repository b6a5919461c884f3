"""Input-domain features (``app.engine.domain``) of the lumbar network's input: the mid-sagittal
slice, normalised and resampled exactly as ``adapter.infer`` does (its own functions), so the
check sees what the network sees. Kept out of ``adapter.py`` so its owner's edits and this one
do not collide; the runner finds it through ``app.engine.domain.domain_hook``."""

from __future__ import annotations

import numpy as np

from app.engine.adapter import AnalysisRequest
from app.engine.domain import features_of
from models.lumbar_ccfnet.coding import InputFrame, normalise
from models.lumbar_ccfnet.slices import sagittal_slice


def domain_features(adapter, request: AnalysisRequest) -> dict[str, np.ndarray]:
    series = request["sagittal_t2"]
    size = int(adapter.manifest.data["config"]["input_size"])
    sl = sagittal_slice(series.image, series.shape[0] // 2)
    frame = InputFrame.fit(sl.pixels.shape, sl.spacing, size)
    return {"sagittal_t2": features_of([frame.resample(normalise(sl.pixels))])}
