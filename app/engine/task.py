"""What a task declares about itself, once, in ``models/<task>/task.py`` (a Slicer module's
metadata): its id and title, its named input slots, where its adapter and phantom live.

Nothing here imports the adapter or any numerical code, so listing tasks and matching a study
against their slots costs nothing and a broken adapter cannot hide the others.
"""

from __future__ import annotations

from dataclasses import dataclass

# Radiograph modalities as scanners and converters write them.
RADIOGRAPH_MODALITIES = ("CR", "DX", "DR", "RG", "SC", "OT", "IMG", "PX")


def normalise_tag(value: str | None) -> str:
    """Upper case without spaces, hyphens or underscores: 'C-Spine' and 'CSPINE' compare equal."""
    return "".join(ch for ch in str(value or "").upper() if ch not in " -_")


@dataclass(frozen=True)
class InputSlot:
    """One named input of a task and what may fill it (checked from metadata)."""

    name: str  # "ct", "ap", "lateral", "radiograph", "fracture_mask"
    description: str  # for messages: "a lateral radiograph of the lumbar spine"
    modalities: tuple[str, ...] = ()  # empty: any
    kinds: tuple[str, ...] = ()  # "volume", "projection", "image", "labelmap"
    body_parts: tuple[str, ...] = ()  # normalised BodyPartExamined values; empty: any
    views: tuple[str, ...] = ()  # normalised ViewPosition values (AP, PA, LAT, LL, RL); empty: any
    required: bool = True
    mask_of: str = ""  # a mask slot names the image slot whose grid it lies on
    # Filled from the study when a series fits; False: only by the user or the mask editor
    # (a SEG that happens to lie on the CT's grid is not a corrected vertebra map).
    auto: bool = True
    short: str = ""  # a short name for "this study has only ..." messages, e.g. "an AP"

    def __post_init__(self) -> None:
        object.__setattr__(self, "body_parts", tuple(normalise_tag(b) for b in self.body_parts))
        object.__setattr__(self, "views", tuple(normalise_tag(v) for v in self.views))

    @property
    def is_mask(self) -> bool:
        return bool(self.mask_of)


@dataclass(frozen=True)
class TaskSpec:
    """A task, declared once. ``adapter`` and ``phantom`` are ``module:Class`` / module paths,
    imported only when the task runs or its demo studies are written."""

    id: str
    title: str
    slots: tuple[InputSlot, ...]
    adapter: str  # "models.femur_ao.adapter:FemurAOAdapter"
    phantom: str = ""  # "models.femur_ao.phantom"
    state: str = ""  # one line for `osteoview tasks`: what is built
    paper: str = ""  # shared/papers/<file>
    # the viewer layout its study opens in ("1x2", "1+2", ...; app.viewstate.layout); empty:
    # chosen from the input slots (hanging_layout)
    layout: str = ""

    @property
    def required_slots(self) -> tuple[InputSlot, ...]:
        return tuple(s for s in self.slots if s.required)

    def slot(self, name: str) -> InputSlot:
        for s in self.slots:
            if s.name == name:
                return s
        raise KeyError(f"{self.id} has no input named '{name}'")
