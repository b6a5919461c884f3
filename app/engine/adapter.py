"""The contract every task's adapter meets (the "Logic" in 3D Slicer's terms).

A task declares named input slots (``InputSlot``): spine reads ``ap`` and ``lateral``
radiographs, calcaneus a ``radiograph`` and an optional ``fracture_mask``, cervical one ``ct``.
``app.analysis.request`` fills them from a loaded study into an ``AnalysisRequest``; the runner
(``app.analysis.runner``) checks the inputs, calls ``Adapter.infer`` with a ``StageTimer`` and
builds the provenance, the same way for every task. Explanations are a separate step
(``Adapter.explain``, called through ``app.analysis.explain``) so that slow methods such as SHAP
run only when asked, can be cancelled and are cached.

Adapters run without any GUI: the CLI, batch mode and the viewer's worker thread all go through
the runner. They return overlays already in the geometry of the input they were computed on,
each naming that input's slot.
"""

from __future__ import annotations

import hashlib
import importlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.engine.runtime import Manifest
from app.engine.task import InputSlot, TaskSpec, normalise_tag
from app.findings import AnalysisResult, Finding, Overlay
from app.study.model import Series, Study

ProgressFn = Callable[[str, float], None]  # (stage name, fraction 0..1 of the whole run)
CancelFn = Callable[[], bool]


class InputRejected(Exception):
    """The input is not what this task's model needs; the message says what it needs."""


class AnalysisCancelled(Exception):
    pass


class ExplainUnavailable(Exception):
    """The task has no such explanation method for this finding; the message says which it has."""


@dataclass
class AnalysisRequest:
    """The series (and masks) a run reads, by slot name, with where each came from."""

    task_id: str
    inputs: dict[str, Series]
    study: Study | None = None
    source: str = ""  # the path or URL the study was loaded from
    # slot -> how the input was chosen: "auto", "user" (assigned by the user), "edited"
    origins: dict[str, str] = field(default_factory=dict)
    # The LPS point the reader is looking at (the viewer's crosshair), when there is one: a task
    # that reads one slice of a volume (lumbar MR) analyses the slice through it.
    focus_lps: tuple[float, float, float] | None = None

    def __getitem__(self, slot: str) -> Series:
        return self.inputs[slot]

    def get(self, slot: str) -> Series | None:
        return self.inputs.get(slot)

    @property
    def primary_slot(self) -> str:
        return next(iter(self.inputs))

    @property
    def primary(self) -> Series:
        return self.inputs[self.primary_slot]

    def input_hash(self) -> str:
        """A digest of every input's pixels and geometry (the explanation cache's key)."""
        h = hashlib.sha256()
        for slot in sorted(self.inputs):
            image = self.inputs[slot].image
            h.update(slot.encode())
            h.update(str(image.array.dtype).encode() + str(image.array.shape).encode())
            h.update(np.ascontiguousarray(image.array).tobytes())
            for part in (image.spacing, image.origin, image.direction):
                h.update(np.asarray(part, np.float64).tobytes())
        return h.hexdigest()


@dataclass
class ModelOutput:
    """What ``Adapter.infer`` returns; the runner adds provenance and ties overlays to slots."""

    findings: list[Finding]
    overlays: list[Overlay]
    summary: str = ""  # one line a reader sees first, e.g. "patient-level fracture p=0.91"
    extra: dict = field(default_factory=dict)  # task-specific JSON-able values


@dataclass
class ModelInfo:
    model_name: str
    version: str
    weights_sha256: dict[str, str]
    trained_on: str
    config: dict = field(default_factory=dict)


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


_VIEW_WORDS = {"AP": "AP", "PA": "PA", "LAT": "LAT", "LATERAL": "LAT", "LL": "LL", "RL": "RL"}


def series_view(series: Series) -> str:
    """The radiographic view: ViewPosition when the file says, else a view word in the series
    description ("AP", "Lateral"), else ""."""
    view = normalise_tag(series.view_position)
    if view:
        return view
    words = "".join(ch if ch.isalnum() else " " for ch in (series.description or "").upper())
    for word in words.split():
        if word in _VIEW_WORDS:
            return _VIEW_WORDS[word]
    return ""


def slot_mismatch(slot: InputSlot, series: Series) -> str | None:
    """Why ``series`` cannot fill ``slot`` from its metadata alone, or None when it can.

    Metadata only (modality, kind, body part, view), so the viewer can list the tasks a study
    satisfies without importing any adapter. Body part and view are checked only where both the
    slot and the file name one: many real files leave them empty.
    """
    modality = (series.modality or "").upper()
    if slot.modalities and modality not in slot.modalities:
        return f"it is {modality or 'of unknown modality'} ({series.kind})"
    if slot.kinds and series.kind not in slot.kinds:
        return f"it is a {series.kind}"
    body_part = normalise_tag(series.body_part)
    if slot.body_parts and body_part and body_part not in slot.body_parts:
        return f"it is labelled BodyPartExamined={body_part}"
    view = series_view(series)
    if slot.views and view and view not in slot.views:
        # "an AP", "an LL", "a PA", "a LAT": the article follows the spoken letter or word
        article = "an" if view in ("AP", "LL") or view[0] in "AEIO" else "a"
        return f"it is {article} {view} view"
    return None


class Adapter(ABC):
    """A task's model logic. Subclasses set ``spec`` (the task's ``TaskSpec``), ``paper`` and
    ``labels``, and implement ``infer``; ``check_slot`` and ``explain`` are optional."""

    spec: TaskSpec
    paper: str
    labels: tuple[str, ...]
    explain_methods: tuple[str, ...] = ()  # e.g. ("cam",), ("shap", "cam")

    @property
    def task_id(self) -> str:
        return self.spec.id

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def slots(self) -> tuple[InputSlot, ...]:
        return self.spec.slots

    def check_slot(self, slot: InputSlot, series: Series) -> None:
        """Raise InputRejected with a reason a reader understands. Subclasses add checks that
        look at the pixels or geometry and call this for the metadata."""
        reason = slot_mismatch(slot, series)
        if reason is not None:
            raise InputRejected(f"{self.title} needs {slot.description}; {reason}.")

    def check_input(self, request: AnalysisRequest) -> None:
        for slot in self.slots:
            series = request.get(slot.name)
            if series is None:
                if slot.required:
                    raise InputRejected(f"{self.title} needs {slot.description}; none was given.")
                continue
            self.check_slot(slot, series)
        unknown = set(request.inputs) - {s.name for s in self.slots}
        if unknown:
            raise InputRejected(
                f"{self.title} has no input named {', '.join(sorted(unknown))}; its inputs are "
                + ", ".join(s.name for s in self.slots)
            )

    @abstractmethod
    def infer(self, request: AnalysisRequest, timer: StageTimer) -> ModelOutput:
        """Run the model(s) on checked inputs; overlays in their input's geometry."""

    def model_info(self) -> ModelInfo:
        return ModelInfo(self.task_id, "", {}, "")

    def domain_features(self, request: AnalysisRequest) -> dict | None:
        """Features of the network's own input per slot for the input-domain check
        (``app.engine.domain``), or None for a task without one."""
        return None

    def explain(
        self,
        request: AnalysisRequest,
        result: AnalysisResult,
        finding: Finding,
        method: str,
        timer: StageTimer,
    ) -> list[Overlay]:
        """Overlays that explain ``finding`` by ``method``; see ``app.analysis.explain``."""
        raise ExplainUnavailable(f"{self.title} has no explanation method '{method}'")


class OnnxAdapter(Adapter):
    """An adapter whose weights are ONNX files listed in ``<weights_dir>/manifest.json``.

    The manifest is read once, on first use, so constructing an adapter costs nothing; each
    weights file is sha256-checked when its session opens. The shipped weights
    (``default_weights_dir``) are checked against the digests pinned in the task's code:
    ``pinned_weights_sha256`` when a subclass sets it, else ``WEIGHTS_SHA256`` in the task
    package's ``weights_digest.py``; a shipped file with no pin is refused. Weights a developer
    points to (``weights_dir``: training, evaluation) are checked against their manifest only.
    """

    default_weights_dir: Path
    pinned_weights_sha256: Mapping[str, str] | None = None

    def __init__(self, weights_dir: Path | None = None) -> None:
        self.weights_dir = Path(weights_dir) if weights_dir else self.default_weights_dir
        self._manifest: Manifest | None = None

    def pinned_digests(self) -> dict[str, str] | None:
        """The digests the shipped weights must have; None for weights outside the package."""
        if self.weights_dir.resolve() != Path(self.default_weights_dir).resolve():
            return None
        if self.pinned_weights_sha256 is not None:
            return dict(self.pinned_weights_sha256)
        package = type(self).__module__.rpartition(".")[0]
        try:
            digests = importlib.import_module(f"{package}.weights_digest").WEIGHTS_SHA256
        except (ImportError, AttributeError):
            return {}  # nothing pinned: every shipped file is refused, with the reason
        return dict(digests)

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = Manifest.load(self.weights_dir, pinned=self.pinned_digests())
        return self._manifest

    def model_info(self) -> ModelInfo:
        m = self.manifest.data
        return ModelInfo(
            model_name=str(m.get("model_name", self.task_id)),
            version=str(m.get("version", "")),
            weights_sha256=self.manifest.sha256s(),
            trained_on=str(m.get("trained_on", "synthetic phantoms")),
            config=dict(m.get("config", {})),
        )
