"""The contract every task's adapter meets (the "Logic" in 3D Slicer's terms).

An adapter takes a loaded ``Series`` and returns an ``AnalysisResult`` whose overlays are already
in the series' geometry. It runs without any GUI: the CLI, batch mode and the viewer's worker
thread all call ``Adapter.run`` the same way.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from app.engine.runtime import Manifest
from app.findings import AnalysisResult
from app.study.model import Series

ProgressFn = Callable[[str, float], None]  # (stage name, fraction 0..1 of the whole run)
CancelFn = Callable[[], bool]


class InputRejected(Exception):
    """The series is not what this task's model needs; the message says what it needs."""


class AnalysisCancelled(Exception):
    pass


@dataclass
class InputSpec:
    """What a task accepts, checked before any inference."""

    modalities: tuple[str, ...]  # e.g. ("CT",) or ("CR", "DX", "DR", "SC", "OT", "IMG")
    kinds: tuple[str, ...]  # "volume", "projection", "image"
    description: str  # one sentence for messages: "an axial CT series covering the neck"
    body_parts: tuple[str, ...] = ()  # where the DICOM says; empty means any


@dataclass
class StageTimer:
    """Collects per-stage wall time and reports progress; one per run."""

    progress: ProgressFn | None = None
    cancel: CancelFn | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str, start_fraction: float) -> Iterator[None]:
        self.check_cancel()
        if self.progress:
            self.progress(name, start_fraction)
        t0 = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise AnalysisCancelled("analysis cancelled")


class Adapter(ABC):
    task_id: str
    title: str
    paper: str
    labels: tuple[str, ...]
    input_spec: InputSpec

    def check_input(self, series: Series) -> None:
        """Raise InputRejected with a reason a reader understands."""
        spec = self.input_spec
        modality = (series.modality or "").upper()
        if spec.modalities and modality not in spec.modalities:
            raise InputRejected(
                f"{self.title} needs {spec.description}; this series is {modality or 'unknown modality'}"
                f" ({series.kind})."
            )
        if spec.kinds and series.kind not in spec.kinds:
            raise InputRejected(
                f"{self.title} needs {spec.description}; this series is a {series.kind}."
            )

    @abstractmethod
    def run(
        self,
        series: Series,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> AnalysisResult:
        """Check the input, run the model(s), return findings and overlays in study geometry."""


class OnnxAdapter(Adapter):
    """An adapter whose weights are ONNX files listed in ``<weights_dir>/manifest.json``.

    The manifest is read once, on first use, so constructing an adapter (the registry does it
    to list tasks) costs nothing; each weights file is sha256-checked when its session opens.
    """

    default_weights_dir: Path

    def __init__(self, weights_dir: Path | None = None) -> None:
        self.weights_dir = Path(weights_dir) if weights_dir else self.default_weights_dir
        self._manifest: Manifest | None = None

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = Manifest.load(self.weights_dir)
        return self._manifest
