"""The lumbar column the MR phantom draws (``t2_signal.py`` paints its slices): the eleven
labelled objects, and each vertebral body and disc placed along a lordotic column with the
landmarks (object centres) in image mm. Body sizes and outlines are the spine radiograph
phantom's (``models/spine_xray/anatomy.py``); a degenerated disc is thinner. numpy only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from models.spine_xray.anatomy import DEPTH, HEIGHT, LEVELS, WIDTH

if TYPE_CHECKING:
    from models.common.xray_grid import Grid

VERTEBRAE: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5")
DISCS: tuple[str, ...] = ("T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")
OBJECTS: tuple[str, ...] = VERTEBRAE + DISCS  # label map value = index + 1
# The MR phantom's discs (below each level; the last is L5-S1): its own heights, not the
# radiograph phantom's.
DISC = np.array([6.0, 7.0, 8.5, 9.5, 10.5, 11.0, 10.0])


def build_column(rng: np.random.Generator, grid: Grid, size: float, st: dict[str, str]) -> dict:
    """Body centres/tilts along a lordotic column (T11 partly in view, down to L5; the sacrum
    follows); landmark positions in image mm. ``st``: each object's status."""
    n = len(LEVELS)
    h = HEIGHT * size * rng.uniform(0.95, 1.05, n)
    d = DEPTH * size * rng.uniform(0.96, 1.04, n)
    w = WIDTH * size
    disc = DISC * size * rng.uniform(0.9, 1.1, n)
    disc_names = ("T11-T12",) + DISCS
    degenerate = np.array([st.get(name) == "diseased" for name in disc_names])
    disc = np.where(degenerate, disc * rng.uniform(0.45, 0.7, n), disc)
    a_top, a_bot = np.deg2rad(rng.uniform(-16, -8)), np.deg2rad(rng.uniform(18, 30))
    alpha = np.linspace(a_top, a_bot, n)
    total = float(h.sum() + disc.sum())
    p = np.array([0.43 * grid.width_mm + rng.normal(0, 4), 0.5 * grid.height_mm - 0.55 * total])
    p[1] += rng.normal(0, 4)
    bodies, discs, landmarks = [], [], {}
    for k in range(n):
        ax = np.array([np.sin(alpha[k]), np.cos(alpha[k])])
        c = p + ax * h[k] / 2
        bodies.append({"name": LEVELS[k], "center": c, "alpha": float(alpha[k]),
                       "h": float(h[k]), "d": float(d[k]), "w": float(w[k])})  # fmt: skip
        nxt = alpha[min(k + 1, n - 1)]
        dax = np.array([np.sin((alpha[k] + nxt) / 2), np.cos((alpha[k] + nxt) / 2)])
        bottom = c + ax * h[k] / 2
        discs.append({"name": disc_names[k], "center": bottom + dax * disc[k] / 2,
                      "alpha": float((alpha[k] + nxt) / 2), "h": float(disc[k]),
                      "d": float(0.5 * (d[k] + d[min(k + 1, n - 1)]))})  # fmt: skip
        p = bottom + dax * disc[k]
        if LEVELS[k] in VERTEBRAE:
            landmarks[LEVELS[k]] = c.copy()
    for dd in discs:
        if dd["name"] in DISCS:
            landmarks[dd["name"]] = dd["center"].copy()
    sacrum = {"top": p, "alpha": float(a_bot + np.deg2rad(rng.uniform(10, 20)))}
    skin = float(bodies[3]["center"][0] + 95 * size + rng.normal(0, 5))
    return {"bodies": bodies, "discs": discs, "sacrum": sacrum, "landmarks": landmarks,
            "skin_x": skin}  # fmt: skip
