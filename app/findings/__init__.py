"""What a model returns: findings (labels with probabilities) and overlays in study geometry.

No Qt here: the viewer, the report and the CLI all read these objects.
"""

from app.findings.types import (
    DEMO_DISCLAIMER,
    AnalysisResult,
    BoxOverlay,
    Finding,
    HeatmapOverlay,
    LabelMapOverlay,
    LandmarkOverlay,
    Overlay,
    Provenance,
)

__all__ = [
    "DEMO_DISCLAIMER",
    "AnalysisResult",
    "BoxOverlay",
    "Finding",
    "HeatmapOverlay",
    "LabelMapOverlay",
    "LandmarkOverlay",
    "Overlay",
    "Provenance",
]
