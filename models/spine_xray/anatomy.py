"""The lumbar column the spine phantom projects (``phantom.py`` draws the AP and lateral views
from it): per-level body and disc sizes, each vertebra placed along a lordotic and mildly scoliotic
column with a damaged level's wedge or burst compression applied, and the outline primitives in a
body's own frame. numpy only. Image mm as in ``phantom.py``; the lumbar MR phantom
(``models/lumbar_ccfnet``) builds its column from the same sizes and outlines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from models.common.xray_grid import Grid

LEVELS: tuple[str, ...] = ("T11", "T12", "L1", "L2", "L3", "L4", "L5")
# Typical adult dimensions (mm) per level: body height, coronal width, sagittal depth; and the
# height of the disc below each level (the last is L5-S1).
HEIGHT = np.array([22.0, 23.5, 25.0, 26.0, 27.0, 27.0, 26.0])
WIDTH = np.array([37.0, 40.0, 42.0, 45.0, 48.0, 50.0, 52.0])
DEPTH = np.array([28.0, 30.0, 32.0, 33.0, 34.0, 34.0, 33.0])
DISC = np.array([6.0, 7.0, 8.0, 9.0, 10.0, 10.5, 9.5])


@dataclass
class Vertebra:
    """One vertebral body as placed in both views (image mm)."""

    name: str
    anterior_height: float
    posterior_height: float
    width: float
    depth: float
    lat_center: np.ndarray  # (x, y) on the lateral view
    lat_alpha: float  # axis tilt from vertical (radians, + toward posterior = image right)
    ap_center: np.ndarray  # (x, y) on the AP view
    ap_phi: float  # coronal tilt (radians)

    @property
    def mid_height(self) -> float:
        return 0.5 * (self.anterior_height + self.posterior_height)


def build_spine(
    rng: np.random.Generator,
    grid: Grid,
    size: float,
    level: str | None,
    kind: str | None,
    wedge_ratio: tuple[float, float],
    burst_ratio: tuple[float, float],
    scoliosis_mm: float,
) -> tuple[list[Vertebra], dict]:
    """Place each body along a lordotic (lateral) and slightly scoliotic (AP) column; ``level``
    (or None) is compressed as ``kind`` ("wedge" or "burst"). Returns the vertebrae and the
    sacrum's top (lateral and AP) and tilt."""
    n = len(LEVELS)
    h = HEIGHT * size * rng.uniform(0.95, 1.05, n)
    w = WIDTH * size * rng.uniform(0.96, 1.04, n)
    d = DEPTH * size * rng.uniform(0.96, 1.04, n)
    disc = DISC * size * rng.uniform(0.85, 1.15, n)
    ha, hp = h.copy(), h.copy()
    if level is not None:
        k = LEVELS.index(level)
        if kind == "wedge":
            ha[k] = h[k] * rng.uniform(*wedge_ratio)
            hp[k] = h[k] * rng.uniform(0.92, 1.0)
        else:
            r = rng.uniform(*burst_ratio)
            ha[k], hp[k] = h[k] * r * rng.uniform(0.9, 1.0), h[k] * r
            w[k] *= rng.uniform(1.06, 1.14)
            d[k] *= rng.uniform(1.04, 1.1)
    # Lordosis: the axis turns from heading anteriorly (top) to posteriorly (L5). A wedge adds
    # its angle (kyphosis) to every level above it.
    a_top, a_bot = np.deg2rad(rng.uniform(-18, -8)), np.deg2rad(rng.uniform(18, 30))
    alpha = np.linspace(a_top, a_bot, n)
    if level is not None:
        k = LEVELS.index(level)
        alpha[:k] += np.arctan((hp[k] - ha[k]) / d[k])
    total = float(np.sum(h) + np.sum(disc))
    # Start so the column's centre sits slightly above the image centre; sacrum below.
    y_top = 0.5 * grid.height_mm - 0.58 * total + rng.normal(0, 4)
    lat_x = 0.44 * grid.width_mm + rng.normal(0, 5)
    ap_x = 0.5 * grid.width_mm + rng.normal(0, 4)
    sc_amp, sc_phase = rng.uniform(0, scoliosis_mm), rng.uniform(0, 2 * np.pi)
    verts = []
    p = np.array([lat_x, y_top])
    for k in range(n):
        hm = 0.5 * (ha[k] + hp[k])
        ax = np.array([np.sin(alpha[k]), np.cos(alpha[k])])
        c = p + ax * hm / 2
        t = (c[1] - y_top) / total
        ap_c = np.array([ap_x + sc_amp * np.sin(np.pi * t + sc_phase), c[1]])
        phi = np.arctan(sc_amp * np.pi / total * np.cos(np.pi * t + sc_phase))
        verts.append(Vertebra(LEVELS[k], float(ha[k]), float(hp[k]), float(w[k]), float(d[k]),
                              c, float(alpha[k]), ap_c, float(phi)))  # fmt: skip
        nxt = alpha[min(k + 1, n - 1)]
        disc_ax = np.array([np.sin((alpha[k] + nxt) / 2), np.cos((alpha[k] + nxt) / 2)])
        p = c + ax * hm / 2 + disc_ax * disc[k]
    sacrum = {"top": p, "alpha": float(a_bot + np.deg2rad(rng.uniform(12, 22))),
              "ap_top": np.array([verts[-1].ap_center[0], p[1]])}  # fmt: skip
    return verts, sacrum


def local_frame(center, angle: float) -> Callable[[object], np.ndarray]:
    """Local (u, v) -> image (x, y): u across the body, v down its axis."""
    eu = np.array([np.cos(angle), -np.sin(angle)])
    ev = np.array([np.sin(angle), np.cos(angle)])
    return lambda pts: np.asarray(center) + np.asarray(pts, float) @ np.stack([eu, ev])


def body_outline(depth, h_front, h_back, concave=1.0, waist=1.2, r=2.2) -> np.ndarray:
    """A vertebral body outline: front (-u) and back (+u) heights, concave endplates, waist."""
    hd = depth / 2
    corners = np.array(
        [[-hd, -h_front / 2], [hd, -h_back / 2], [hd, h_back / 2], [-hd, h_front / 2]]
    )
    bulge = [np.array([0, concave]), np.array([-0.4, 0]), np.array([0, -concave]),
             np.array([waist, 0])]  # fmt: skip
    pts = []
    for k in range(4):
        a, b = corners[k], corners[(k + 1) % 4]
        length = np.hypot(*(b - a))
        t = np.linspace(r / length, 1 - r / length, 9)
        edge = a + (b - a) * t[:, None] + bulge[k] * (4 * t * (1 - t))[:, None]
        pts.append(edge)
    return np.concatenate(pts)


def vertebra_corners(v: Vertebra) -> np.ndarray:
    """Anterior-superior, posterior-superior, posterior-inferior, anterior-inferior (lateral)."""
    f = local_frame(v.lat_center, v.lat_alpha)
    hd = v.depth / 2
    return f([[-hd, -v.anterior_height / 2], [hd, -v.posterior_height / 2],
              [hd, v.posterior_height / 2], [-hd, v.anterior_height / 2]])  # fmt: skip


def sacrum_endplate(sacrum: dict, depth: float) -> np.ndarray:
    """The S1 endplate's anterior and posterior corners, in the order vertebra_corners uses."""
    f = local_frame(sacrum["top"], sacrum["alpha"])
    pts = f([[-depth / 2, 0], [depth / 2, 0]])
    return np.array([pts[0], pts[1], pts[1], pts[0]])
