"""Study loading: ``load(path)`` returns studies, series (image + geometry) and per-file errors."""

from app.study.geometry import ImageVolume
from app.study.loader import load
from app.study.model import (
    CT_PRESETS,
    LoadCancelled,
    LoadError,
    LoadResult,
    PatientInfo,
    Series,
    Study,
    StudyLoadError,
)

__all__ = [
    "CT_PRESETS",
    "ImageVolume",
    "LoadCancelled",
    "LoadError",
    "LoadResult",
    "PatientInfo",
    "Series",
    "Study",
    "StudyLoadError",
    "load",
]
