"""Undo/redo that stores only what changed: one ``Diff`` per stroke or operation.

A diff keeps the flat indices of the changed voxels as runs (start, length) and the old and new
values as value runs, so a brush stroke on one slice costs a few bytes per row it crossed, never a
copy of the label map (Slicer keeps full copies per operation; its users report 100+ GB on large
volumes, Slicer issue 6982). Saving does not clear the history: it only remembers which revision
was saved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MAX_STEPS = 100  # napari's Labels layer keeps 100 steps as well


def _runs(sorted_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive runs of sorted unique indices: (starts, lengths)."""
    if sorted_idx.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint32)
    breaks = np.flatnonzero(np.diff(sorted_idx) != 1) + 1
    starts = sorted_idx[np.concatenate(([0], breaks))]
    ends = np.concatenate((breaks, [sorted_idx.size]))
    lengths = np.diff(np.concatenate(([0], ends)))
    return starts.astype(np.int64), lengths.astype(np.uint32)


def _expand(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Inverse of ``_runs``."""
    lengths = lengths.astype(np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return np.arange(total, dtype=np.int64) + offsets


def _value_runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run-length code of a value sequence: (values, counts)."""
    if values.size == 0:
        return values[:0].copy(), np.zeros(0, np.uint32)
    breaks = np.flatnonzero(values[1:] != values[:-1]) + 1
    firsts = np.concatenate(([0], breaks))
    counts = np.diff(np.concatenate((firsts, [values.size])))
    return values[firsts].copy(), counts.astype(np.uint32)


@dataclass(frozen=True)
class Diff:
    """What one operation changed: index runs plus run-length old and new values."""

    starts: np.ndarray
    lengths: np.ndarray
    old_values: np.ndarray
    old_counts: np.ndarray
    new_values: np.ndarray
    new_counts: np.ndarray
    label: str = ""  # what the user did: "brush", "fill", ...

    @classmethod
    def from_changes(
        cls, flat_idx: np.ndarray, old: np.ndarray, new: np.ndarray, label: str = ""
    ) -> Diff:
        """From (index, old, new) triples, any order, repeats allowed: the first old value and
        the last new value of each index count; indices whose value did not change are dropped."""
        flat_idx = np.asarray(flat_idx, dtype=np.int64)
        if flat_idx.size:
            order = np.argsort(flat_idx, kind="stable")
            idx_sorted = flat_idx[order]
            first = np.concatenate(([True], idx_sorted[1:] != idx_sorted[:-1]))
            last = np.concatenate((idx_sorted[1:] != idx_sorted[:-1], [True]))
            idx = idx_sorted[first]
            old_v = np.asarray(old)[order][first]
            new_v = np.asarray(new)[order][last]
            keep = old_v != new_v
            idx, old_v, new_v = idx[keep], old_v[keep], new_v[keep]
        else:
            idx, old_v, new_v = flat_idx, np.asarray(old), np.asarray(new)
        starts, lengths = _runs(idx)
        ov, oc = _value_runs(old_v)
        nv, nc = _value_runs(new_v)
        return cls(starts, lengths, ov, oc, nv, nc, label)

    @property
    def size(self) -> int:
        """Number of voxels changed."""
        return int(self.lengths.sum())

    @property
    def nbytes(self) -> int:
        arrays = (self.starts, self.lengths, self.old_values, self.old_counts)
        return sum(a.nbytes for a in arrays + (self.new_values, self.new_counts))

    def indices(self) -> np.ndarray:
        return _expand(self.starts, self.lengths)

    def old(self) -> np.ndarray:
        return np.repeat(self.old_values, self.old_counts.astype(np.int64))

    def new(self) -> np.ndarray:
        return np.repeat(self.new_values, self.new_counts.astype(np.int64))

    def apply(self, data: np.ndarray, forward: bool = True) -> np.ndarray:
        """Write the new (or, backwards, the old) values into ``data``; returns the indices."""
        idx = self.indices()
        flat = data.reshape(-1)
        assert np.shares_memory(flat, data), "label arrays are edited in place (C-contiguous)"
        flat[idx] = self.new() if forward else self.old()
        return idx

    def arrays(self) -> dict[str, np.ndarray]:
        """For the journal (``np.savez``)."""
        return {
            "starts": self.starts,
            "lengths": self.lengths,
            "old_values": self.old_values,
            "old_counts": self.old_counts,
            "new_values": self.new_values,
            "new_counts": self.new_counts,
        }

    @classmethod
    def from_arrays(cls, arrays, label: str = "") -> Diff:
        names = ("starts", "lengths", "old_values", "old_counts", "new_values", "new_counts")
        return cls(*(np.asarray(arrays[n]) for n in names), label=label)


Listener = Callable[[str, Diff], None]  # ("do" | "undo" | "redo", diff)


class History:
    """Undo and redo stacks of diffs over one label array (edited in place)."""

    def __init__(self, data: np.ndarray, max_steps: int = MAX_STEPS) -> None:
        self.data = data
        self.max_steps = max_steps
        self._undo: list[Diff] = []
        self._redo: list[Diff] = []
        self.revision = 0  # changes with every do/undo/redo
        self._saved_revision = 0
        self._listeners: list[Listener] = []

    def subscribe(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def _emit(self, what: str, diff: Diff) -> None:
        for fn in list(self._listeners):
            fn(what, diff)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def steps(self) -> int:
        return len(self._undo)

    @property
    def nbytes(self) -> int:
        """Memory held by both stacks."""
        return sum(d.nbytes for d in self._undo) + sum(d.nbytes for d in self._redo)

    @property
    def edited(self) -> bool:
        """Whether anything was ever done (a model's output becomes SEMIAUTOMATIC)."""
        return self.revision > 0

    @property
    def dirty(self) -> bool:
        return self.revision != self._saved_revision

    def mark_saved(self) -> None:
        self._saved_revision = self.revision

    def set_stacks(self, undo: list[Diff], redo: list[Diff], revision: int) -> None:
        """Stacks rebuilt from a journal (recovery); the state counts as unsaved."""
        self._undo = list(undo)[-self.max_steps :]
        self._redo = list(redo)
        self.revision = revision

    def record(self, diff: Diff) -> None:
        """A change already written into ``data``."""
        if diff.size == 0:
            return
        self._undo.append(diff)
        if len(self._undo) > self.max_steps:
            del self._undo[0]
        self._redo.clear()
        self.revision += 1
        self._emit("do", diff)

    def undo(self) -> Diff | None:
        if not self._undo:
            return None
        diff = self._undo.pop()
        diff.apply(self.data, forward=False)
        self._redo.append(diff)
        self.revision += 1
        self._emit("undo", diff)
        return diff

    def redo(self) -> Diff | None:
        if not self._redo:
            return None
        diff = self._redo.pop()
        diff.apply(self.data, forward=True)
        self._undo.append(diff)
        self.revision += 1
        self._emit("redo", diff)
        return diff
