"""What a load returns: studies, their series, and the files that failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from app.study.geometry import ImageVolume

SeriesKind = Literal["volume", "projection", "image", "labelmap"]


@dataclass
class PatientInfo:
    name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    sex: str = ""
    study_date: str = ""
    accession: str = ""
    study_description: str = ""


@dataclass
class Series:
    """One displayable image set: a CT/MR volume, a radiograph, a plain image or a label map."""

    series_uid: str
    modality: str
    description: str
    image: ImageVolume
    kind: SeriesKind = "volume"
    body_part: str = ""
    view_position: str = ""  # AP, PA, LAT/LL/RL for radiographs when the file says
    window: tuple[float, float] | None = None  # (center, width) for display
    invert: bool = False  # MONOCHROME1: shown inverted
    warnings: list[str] = field(default_factory=list)
    source_paths: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # extra tags worth keeping (plain values only)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.image.shape

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return self.image.spacing

    def default_window(self) -> tuple[float, float]:
        """The stored window if any, else the 1st-99th percentile range."""
        if self.window is not None:
            return self.window
        arr = self.image.array
        sample = arr[:: max(1, arr.shape[0] // 16)]
        lo, hi = np.percentile(sample, [1.0, 99.0])
        if hi <= lo:
            hi = lo + 1.0
        return (float((lo + hi) / 2), float(hi - lo))


@dataclass
class Study:
    study_uid: str
    patient: PatientInfo = field(default_factory=PatientInfo)
    series: list[Series] = field(default_factory=list)


@dataclass
class LoadError:
    path: str
    reason: str


@dataclass
class LoadResult:
    studies: list[Study] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)

    def all_series(self) -> list[Series]:
        return [s for st in self.studies for s in st.series]


class StudyLoadError(Exception):
    """Raised when a path cannot be loaded at all; names the file and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class LoadCancelled(Exception):
    """Raised when the caller's cancel flag was set during a load."""


# CT display presets: (center, width). One labelled set, Slicer-like, shown by name in the UI.
CT_PRESETS: dict[str, tuple[float, float]] = {
    "Bone": (400.0, 1800.0),
    "Soft tissue": (40.0, 400.0),
    "Lung": (-600.0, 1500.0),
    "Brain": (40.0, 80.0),
}
