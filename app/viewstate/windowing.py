"""Window/level: the grey-value mapping, its presets and the mouse-drag rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.study.model import CT_PRESETS, Series


@dataclass
class WindowLevel:
    center: float
    width: float
    invert: bool = False

    def __post_init__(self) -> None:
        self.width = max(float(self.width), 1e-6)
        self.center = float(self.center)

    @property
    def low(self) -> float:
        return self.center - self.width / 2

    @property
    def high(self) -> float:
        return self.center + self.width / 2

    def drag(self, dx: float, dy: float, data_span: float) -> None:
        """Left-drag rule (as OHIF/Slicer): right widens the window, down raises the level.

        One screen pixel moves by a fixed fraction of the data span so that CT (4000 HU) and an
        8-bit image feel the same.
        """
        step = max(data_span, 1.0) / 500.0
        self.width = max(self.width + dx * step, step)
        self.center = self.center + dy * step

    def to_uint8(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Map values to 0..255 grey (inverted if asked) through this window."""
        scale = np.float32(255.0 / self.width)
        if self.invert:
            scale = -scale
            offset = np.float32(self.high)
        else:
            offset = np.float32(self.low)
        g = np.subtract(values, offset, dtype=np.float32)
        g *= scale
        np.clip(g, 0.0, 255.0, out=g)
        if out is None:
            return g.astype(np.uint8)
        np.copyto(out, g, casting="unsafe")
        return out

    def to_json(self) -> dict:
        return {"center": self.center, "width": self.width, "invert": self.invert}

    @classmethod
    def from_json(cls, data: dict) -> WindowLevel:
        return cls(float(data["center"]), float(data["width"]), bool(data.get("invert", False)))


def data_range(series: Series) -> tuple[float, float]:
    arr = series.image.array
    sample = arr[:: max(1, arr.shape[0] // 16)]
    return float(sample.min()), float(sample.max())


def presets_for(series: Series) -> dict[str, tuple[float, float]]:
    """Named (center, width) presets, in the order number keys 1, 2, ... select them.

    CT gets the project's one labelled set (``CT_PRESETS``); everything gets the window stored in
    the file (or the 1-99 % range) as "Default" and the full data range.
    """
    presets: dict[str, tuple[float, float]] = {"Default": series.default_window()}
    if (series.modality or "").upper() == "CT":
        presets.update(CT_PRESETS)
    lo, hi = data_range(series)
    presets["Full range"] = ((lo + hi) / 2, max(hi - lo, 1.0))
    return presets


def initial_window(series: Series) -> WindowLevel:
    c, w = series.default_window()
    return WindowLevel(c, w, invert=bool(series.invert))


def intensity_histogram(series: Series, bins: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres, counts) of the series' values over its full range, from at most about two
    million samples (a whole CT would take seconds); RGB images count their grey value."""
    arr = series.image.array
    flat = arr.reshape(-1, arr.shape[-1]) if series.image.is_rgb else arr.reshape(-1)
    sample = flat[:: max(1, len(flat) // 2_000_000)]
    if series.image.is_rgb:
        sample = sample.mean(axis=1)
    lo, hi = data_range(series)
    counts, edges = np.histogram(sample, bins=bins, range=(lo, hi if hi > lo else lo + 1.0))
    return (edges[:-1] + edges[1:]) / 2, counts
