"""Findings and overlays. Every overlay carries its own geometry (an ImageVolume or LPS points)."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.study.geometry import ImageVolume

DEMO_DISCLAIMER = "trained on synthetic phantoms, not for clinical use"


@dataclass
class Finding:
    """One label's probability and the decision taken with its threshold."""

    label: str
    probability: float
    threshold: float = 0.5
    group: str = ""  # e.g. "fracture", "type", "subtype" for hierarchical tasks
    parent: str = ""  # label this one refines (hierarchy), "" at the top
    side: str = ""  # "left"/"right" where the task splits sides
    # The region this finding is about: a label value of a label map, a landmark's name or a
    # box's region_id, so a click on the finding can centre the views on it.
    region_id: str = ""
    # How a reader names the decision (``app.findings.wording``): ``term`` is the abnormality a
    # positive call of this class names ("fracture", "disease"; "" = the label is present or
    # absent), ``subject`` what it is about where neither side nor label says it ("patient"),
    # and ``normal_class`` marks a class that means "nothing wrong" (femur "normal"), so that
    # its positive call reads "no fracture"; left unset, a class named "normal" is one.
    term: str = ""
    subject: str = ""
    normal_class: bool | None = None

    def __post_init__(self) -> None:
        if self.normal_class is None:
            self.normal_class = self.label.strip().lower() == "normal"

    @property
    def positive(self) -> bool:
        return self.probability >= self.threshold

    @property
    def abnormal(self) -> bool:
        """The call says something is wrong: a positive abnormal class, or a normal class that
        is not called (its model does not find the image normal)."""
        return self.positive != self.normal_class

    def to_json(self) -> dict:
        return {
            "label": self.label,
            "probability": round(float(self.probability), 6),
            "threshold": float(self.threshold),
            "call": "positive" if self.positive else "negative",
            "group": self.group,
            "parent": self.parent,
            "side": self.side,
            "region_id": self.region_id,
            "term": self.term,
            "subject": self.subject,
            "normal_class": self.normal_class,
        }


@dataclass
class Overlay:
    name: str
    visible: bool = True
    opacity: float = 0.5
    # The input slot (``AnalysisRequest.inputs``) this overlay was computed on: the viewer draws
    # it on that input's view and the report on that input's image. The runner fills it with the
    # task's first input when an adapter leaves it empty.
    slot: str = ""


@dataclass
class LabelMapOverlay(Overlay):
    """Integer label map on its own grid; labels maps value -> (name, (r, g, b) 0-255)."""

    image: ImageVolume | None = None
    labels: dict[int, tuple[str, tuple[int, int, int]]] = field(default_factory=dict)


# A radiograph's maps (CAM, SHAP) are stored on a grid at most this many pixels across
# (ImageVolume.in_plane_coarsened): a map has no finer detail than the network input, and a
# full-resolution float map of a 3000 px film would cost 36 MB per layer.
HEATMAP_MAX_SIDE = 512


@dataclass
class HeatmapOverlay(Overlay):
    """Float map in [0, 1] on its own grid, drawn through a named colormap."""

    image: ImageVolume | None = None
    colormap: str = "jet"
    value_range: tuple[float, float] = (0.0, 1.0)
    label: str = ""  # which class this map explains


@dataclass
class Box:
    """Axis-aligned box in voxel indices of ``BoxOverlay.reference`` (i0, j0, i1, j1[, k])."""

    i0: float
    j0: float
    i1: float
    j1: float
    k: int = 0
    caption: str = ""
    score: float | None = None
    region_id: str = ""  # what a Finding.region_id points at


@dataclass
class BoxOverlay(Overlay):
    reference: ImageVolume | None = None  # the grid the box indices refer to
    boxes: list[Box] = field(default_factory=list)
    color: tuple[int, int, int] = (255, 255, 0)


@dataclass
class Landmark:
    name: str
    position_lps: tuple[float, float, float]
    probability: float | None = None


@dataclass
class LandmarkOverlay(Overlay):
    landmarks: list[Landmark] = field(default_factory=list)
    color: tuple[int, int, int] = (0, 255, 0)


@dataclass
class Provenance:
    task_id: str
    model_name: str
    model_version: str
    weights_sha256: dict[str, str]
    paper: str
    trained_on: str
    device: str = "CPU"
    disclaimer: str = DEMO_DISCLAIMER
    timings_s: dict[str, float] = field(default_factory=dict)
    created: str = ""
    # slot -> {"series_uid", "description", "modality", "origin"}: what each input was
    inputs: dict[str, dict] = field(default_factory=dict)
    # the input-domain check (app.engine.domain): measure, distance, threshold, in_domain
    domain_check: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "task_id": self.task_id,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "weights_sha256": self.weights_sha256,
            "paper": self.paper,
            "trained_on": self.trained_on,
            "device": self.device,
            "disclaimer": self.disclaimer,
            "timings_s": {k: round(v, 4) for k, v in self.timings_s.items()},
            "created": self.created,
            "inputs": self.inputs,
            "domain_check": self.domain_check,
        }


@dataclass
class AnalysisResult:
    task_id: str
    findings: list[Finding]
    overlays: list[Overlay]
    provenance: Provenance
    summary: str = ""  # one line a reader sees first, e.g. "patient-level fracture p=0.91"
    extra: dict = field(default_factory=dict)  # task-specific JSON-able values
    # Why no call is made ("" when calls are made): the input is outside the model's training
    # domain. The findings keep their probabilities for reference; no decision is taken on them.
    no_call: str = ""

    def call_of(self, finding: Finding) -> str:
        """The call shown for ``finding``: positive, negative, or "no call" when the result
        makes none (the input is outside the training domain)."""
        if self.no_call:
            return "no call"
        return "positive" if finding.positive else "negative"

    def finding(self, label: str, side: str = "") -> Finding:
        for f in self.findings:
            if f.label == label and (not side or f.side == side):
                return f
        raise KeyError(label)

    def probabilities(self) -> dict[str, float]:
        return {
            (f"{f.side}:{f.label}" if f.side else f.label): float(f.probability)
            for f in self.findings
        }
