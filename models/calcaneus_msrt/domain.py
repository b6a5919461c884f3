"""Input-domain features (``app.engine.domain``) of the calcaneus network's image channel, made
as ``adapter.infer`` makes it (its own ``bone_bright`` and ``image_input``), so the check sees
what the network sees. Kept out of ``adapter.py`` so its owner's edits and this one do not
collide; the runner finds it through ``app.engine.domain.domain_hook``."""

from __future__ import annotations

import numpy as np

from app.engine.adapter import AnalysisRequest
from app.engine.domain import features_of
from models.calcaneus_msrt.adapter import bone_bright
from models.calcaneus_msrt.preprocess import image_input


def domain_features(adapter, request: AnalysisRequest) -> dict[str, np.ndarray]:
    n = int(adapter.manifest.data["config"]["input_size"])
    return {"radiograph": features_of([image_input(bone_bright(request["radiograph"]), n)])}
