"""Offer and restore the unsaved edits a crash left in a series' workspace (``journal``).

``pending_recovery(study_uid, series_uid)`` says whether a workspace holds edits made after the
last save; ``Recovery.restore()`` replays each layer's journal onto its base map, voxel for voxel,
and rebuilds the undo/redo stacks of the changes since editing began, so the annotator carries on
where the crash stopped them. ``discard()`` deletes the workspace when the user declines.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.editing.history import Diff, History
from app.editing.journal import BASE_FILE, _seq_of, read_base, series_dir
from app.findings.types import LabelMapOverlay
from app.study.geometry import ImageVolume


@dataclass
class RecoveredLayer:
    overlay: LabelMapOverlay
    history: History
    folder: Path  # the journal carries on here (``Journal(folder=...)``)
    source: str = ""
    changes: int = 0  # journal records replayed


@dataclass
class Recovery:
    folders: list[Path]
    study_uid: str
    series_uid: str
    summaries: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the prompt: which layers and how many unsaved changes."""
        return "; ".join(self.summaries)

    def restore(self) -> list[RecoveredLayer]:
        return [replay(folder) for folder in self.folders]

    def discard(self) -> None:
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)


def _records(folder: Path) -> list[tuple[int, str, Path]]:
    out = []
    for path in folder.glob("*.npz"):
        seq = _seq_of(path)
        if seq:
            out.append((seq, path.stem.split("-", 1)[1], path))
    return sorted(out)


def _unsaved(folder: Path) -> int:
    """Changes recorded after the last save (0: nothing to offer)."""
    count = 0
    for _seq, kind, _path in _records(folder):
        count = 0 if kind == "saved" else count + 1
    return count


def pending_recovery(study_uid: str, series_uid: str, root: Path | None = None) -> Recovery | None:
    """The unsaved edits of this series' layers, or None when there are none."""
    base = series_dir(study_uid, series_uid, root)
    if not base.is_dir():
        return None
    folders, summaries = [], []
    for folder in sorted(p for p in base.iterdir() if (p / "meta.json").exists()):
        n = _unsaved(folder)
        if n and (folder / BASE_FILE).exists():
            name = json.loads((folder / "meta.json").read_text())["name"]
            folders.append(folder)
            summaries.append(f"{name}: {n} unsaved change{'s' if n != 1 else ''}")
    if not folders:
        return None
    return Recovery(folders, study_uid, series_uid, summaries)


def replay(folder: Path) -> RecoveredLayer:
    """The layer as the journal left it: base map plus every recorded change, in order."""
    meta = json.loads((folder / "meta.json").read_text())
    data = read_base(folder, meta)
    base_rev = int(meta.get("base_revision", 0))
    history = History(data)
    undo: list[Diff] = []
    redo: list[Diff] = []
    changes = 0
    table = meta["labels"]
    for _seq, kind, path in _records(folder):
        with np.load(path) as npz:
            if "labels" in npz:
                table = json.loads(str(npz["labels"]))
            if kind == "saved":
                continue
            in_base = int(npz["revision"][0]) <= base_rev
            diff = Diff.from_arrays(npz, label=kind)
        # changes made before the base snapshot are in it already; they still belong on the
        # undo stack, so undoing everything returns the map as editing began
        changes += 1
        if kind == "undo":
            if not in_base:
                diff.apply(data, forward=False)
            if undo:
                redo.append(undo.pop())
            continue
        if not in_base:
            diff.apply(data, forward=True)
        if kind == "redo" and redo:
            redo.pop()
        elif kind == "do":
            redo.clear()
        undo.append(diff)
    history.set_stacks(undo, redo, changes)
    image = ImageVolume(data, tuple(meta["spacing"]), np.array(meta["origin"]),
                        np.array(meta["direction"]))  # fmt: skip
    labels = {int(v): (n, tuple(c)) for v, (n, c) in table.items()}
    overlay = LabelMapOverlay(meta["name"], image=image, labels=labels, slot=meta.get("slot", ""))
    return RecoveredLayer(overlay, history, folder, meta.get("source", ""), changes)
