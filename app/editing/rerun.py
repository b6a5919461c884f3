"""Run a task again on a corrected mask, and compare the two results (before / after).

A task with a mask slot (``InputSlot.mask_of``, e.g. calcaneus ``fracture_mask`` on its
radiograph) reads the edited layer: a snapshot of the layer's array as a ``labelmap`` series on
the image's grid, recorded as ``request.origins[slot] = "edited"`` so the provenance says a
person corrected the input. The snapshot is a copy: painting on while the model runs must not
change the input under it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from app.engine.adapter import AnalysisRequest
from app.engine.task import TaskSpec
from app.findings.types import AnalysisResult, LabelMapOverlay
from app.study.model import Series

_ORIGIN_TAGS = re.compile(r"( \((predicted|edited|given)\))+$")


def mask_slot_for(spec: TaskSpec, image_slot: str) -> str | None:
    """The task's mask slot lying on ``image_slot`` (None when the task takes no such mask)."""
    for slot in spec.slots:
        if slot.is_mask and slot.mask_of == image_slot:
            return slot.name
    return None


def edited_mask_series(overlay: LabelMapOverlay, image: Series) -> Series:
    assert overlay.image is not None
    if overlay.image.shape != image.image.shape:
        raise ValueError(
            f"'{overlay.name}' {overlay.image.shape} is not on the grid of {image.description} "
            f"{image.image.shape}"
        )
    snapshot = image.image.with_array(overlay.image.array.copy())
    return Series(
        series_uid=f"{image.series_uid}.edited",
        modality="SEG",
        # the provenance adds "(edited)" from the origin: the layer's own tags would repeat it
        description=_ORIGIN_TAGS.sub("", overlay.name) or overlay.name,
        image=snapshot,
        kind="labelmap",
        body_part=image.body_part,
    )


def with_edited_mask(
    spec: TaskSpec, request: AnalysisRequest, overlay: LabelMapOverlay, image_slot: str = ""
) -> AnalysisRequest:
    """``request`` with the mask slot on ``image_slot`` (default: the layer's own slot) filled
    by the edited layer. ValueError when the task has no mask for that input."""
    image_slot = image_slot or overlay.slot
    slot = mask_slot_for(spec, image_slot)
    if slot is None or image_slot not in request.inputs:
        raise ValueError(f"{spec.title} takes no mask on its '{image_slot}' input")
    inputs = dict(request.inputs)
    inputs[slot] = edited_mask_series(overlay, request.inputs[image_slot])
    ordered = {s.name: inputs[s.name] for s in spec.slots if s.name in inputs}
    origins = dict(request.origins)
    origins[slot] = "edited"
    return replace(request, inputs=ordered, origins=origins)


@dataclass(frozen=True)
class Change:
    label: str  # "side label" as the findings panel names it
    before: float | None
    after: float | None

    @property
    def delta(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before


def compare(before: AnalysisResult, after: AnalysisResult) -> list[Change]:
    """Each finding's probability before and after the re-run, in the after result's order
    (findings only in the earlier run follow)."""

    def key(f) -> str:
        return f"{f.side} {f.label}".strip()

    old = {key(f): float(f.probability) for f in before.findings}
    new = {key(f): float(f.probability) for f in after.findings}
    rows = [Change(k, old.get(k), p) for k, p in new.items()]
    rows += [Change(k, p, None) for k, p in old.items() if k not in new]
    return rows
