"""Colour tables for heatmaps and label maps (256 x 3 uint8), built from a few anchor colours.

One set for the viewer and the report's pictures (both composed by ``app.viewstate``) and the
heatmap PNGs of ``app.findings.io``, so a map looks the same on screen, on paper and on disk."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_ANCHORS: dict[str, list[tuple[float, float, float]]] = {
    # Matplotlib's jet, hot, viridis and inferno, sampled at evenly spaced points.
    "jet": [
        (0, 0, 0.5),
        (0, 0, 1),
        (0, 0.5, 1),
        (0, 1, 1),
        (0.5, 1, 0.5),
        (1, 1, 0),
        (1, 0.5, 0),
        (1, 0, 0),
        (0.5, 0, 0),
    ],
    "hot": [(0.04, 0, 0), (0.5, 0, 0), (1, 0, 0), (1, 0.5, 0), (1, 1, 0), (1, 1, 0.5), (1, 1, 1)],
    "viridis": [
        (0.267, 0.005, 0.329),
        (0.283, 0.141, 0.458),
        (0.254, 0.265, 0.530),
        (0.207, 0.372, 0.553),
        (0.164, 0.471, 0.558),
        (0.128, 0.567, 0.551),
        (0.135, 0.659, 0.518),
        (0.267, 0.749, 0.441),
        (0.478, 0.821, 0.318),
        (0.741, 0.873, 0.150),
        (0.993, 0.906, 0.144),
    ],
    "inferno": [
        (0.001, 0.000, 0.014),
        (0.160, 0.044, 0.342),
        (0.416, 0.090, 0.433),
        (0.667, 0.181, 0.373),
        (0.868, 0.317, 0.227),
        (0.978, 0.557, 0.035),
        (0.988, 0.998, 0.645),
    ],
    "gray": [(0, 0, 0), (1, 1, 1)],
    # diverging, for signed maps (SHAP values): blue below zero, white at zero, red above
    "coolwarm": [
        (0.23, 0.30, 0.75),
        (0.55, 0.69, 1.0),
        (0.87, 0.87, 0.87),
        (0.96, 0.6, 0.49),
        (0.71, 0.02, 0.15),
    ],  # fmt: skip
}

# Distinct colours for labels that come without one (tab10 without grey).
LABEL_PALETTE: list[tuple[int, int, int]] = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207),
]  # fmt: skip


def colormap_names() -> list[str]:
    return list(_ANCHORS)


@lru_cache(maxsize=16)
def colormap_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 table; unknown names fall back to jet."""
    anchors = np.array(_ANCHORS.get(name, _ANCHORS["jet"]), dtype=float)
    x = np.linspace(0.0, 1.0, len(anchors))
    t = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(t, x, anchors[:, c]) for c in range(3)], axis=1)
    lut = np.round(table * 255).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def label_colour(value: int) -> tuple[int, int, int]:
    return LABEL_PALETTE[(int(value) - 1) % len(LABEL_PALETTE)]


def apply_colormap(values: np.ndarray, name: str, value_range=(0.0, 1.0)) -> np.ndarray:
    """Float array -> RGB uint8 through ``name``; values outside the range are clipped."""
    lo, hi = value_range
    norm = np.clip((np.asarray(values, dtype=float) - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    return colormap_lut(name)[np.round(norm * 255).astype(np.intp)]
