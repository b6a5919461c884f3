"""The calcaneus phantom's fractures (``phantom.py`` draws the heel they break): the six MSRT
labels, which of them a heel gets, each label's fracture lines and displaced fragments (joint
depression, tongue) with the region each drew and the Boehler's angle that results, and the rough
annotation of the fracture that the model takes as input. Calcaneus frame as in ``anatomy.py``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from models.calcaneus_msrt.labels import LABELS
from models.common import xray_density as xd
from models.common import xray_grid as xg
from models.common import xray_outline as xo

# Per-label probability given a fractured heel. With these the mean number of labels per
# fractured image is about 2.9, close to the paper's label cardinality (2.94).
DEFAULT_LABEL_PROBS: dict[str, float] = {
    "Calcaneal Tuberosity": 0.45,
    "Primary Line": 0.75,
    "Collapse Fracture Block": 0.45,
    "Calcaneal Body": 0.55,
    "Posterior Articular Surface": 0.55,
    "Tongue Fracture Block": 0.3,
}

# Fragments that move: the joint-depression block under the posterior facet, and the tongue
# (posterior facet with the upper tuberosity, hinged at its anterior end).
COLLAPSE_BLOCK = np.array([[-13, -32], [7, -32], [7, -9], [-2, -7], [-13, -9]])
TONGUE_FRAGMENT = np.array([[-50, -40], [8, -40], [8, -15], [-4, -11], [-25, -8.5], [-50, -6]])


def choose_labels(
    rng: np.random.Generator,
    p_fracture: float,
    label_probs: dict[str, float] | None,
    forced: dict[str, bool] | None,
) -> dict[str, bool]:
    """The labels a heel gets: ``forced`` (missing ones False) or drawn (see ``generate``)."""
    if forced is not None:
        unknown = set(forced) - set(LABELS)
        if unknown:
            raise ValueError(f"unknown calcaneus labels {sorted(unknown)}; known: {LABELS}")
        return {n: bool(forced.get(n, False)) for n in LABELS}
    probs = {**DEFAULT_LABEL_PROBS, **(label_probs or {})}
    draws = rng.random(len(LABELS) + 2)
    if draws[0] >= p_fracture:
        return dict.fromkeys(LABELS, False)
    present = {n: bool(draws[k + 1] < probs[n]) for k, n in enumerate(LABELS)}
    if present["Collapse Fracture Block"] and present["Tongue Fracture Block"]:
        drop = "Tongue Fracture Block" if draws[-1] < 0.6 else "Collapse Fracture Block"
        present[drop] = False
    if not any(present.values()):
        weights = np.array([probs[n] for n in LABELS], dtype=float)
        present[LABELS[int(rng.choice(len(LABELS), p=weights / weights.sum()))]] = True
    return present


class FractureDrawer:
    """Draws each present label's fracture in the calcaneus and records where it drew."""

    def __init__(self, grid: xg.Grid, rng, place, zoom: float, angle: float) -> None:
        self.grid, self.rng, self.place, self.zoom, self.angle = grid, rng, place, zoom, angle
        self.regions = np.zeros(grid.shape, dtype=np.uint8)
        self.lucent = np.zeros(grid.shape, dtype=np.float32)
        self.facet_drop = 0.0  # mm the posterior facet's top moved down (for Boehler's angle)

    def code(self, name: str) -> int:
        return LABELS.index(name) + 1

    def line(self, name: str, start, end, n: int = 9, rough: float = 0.7) -> None:
        pts = self.place(xo.jagged_line(start, end, self.rng, n, rough))
        width = self.rng.uniform(0.4, 0.8) * self.zoom
        m = xg.polyline_mask(self.grid, pts, width)
        self.lucent = np.maximum(self.lucent, m.astype(np.float32))
        self.mark(name, xg.dilate_mm(m, self.grid, 0.7))

    def mark(self, name: str, mask: np.ndarray) -> None:
        self.regions[mask] = self.code(name)

    def move(self, name, mu, calc, fragment_pts, shift_mm=(0.0, 0.0), hinge=None, turn_deg=0.0):
        """Move a fragment (translation in the calcaneus frame, or a turn about a hinge point)."""
        g = self.grid
        frag = xg.polygon_mask(g, self.place(fragment_pts)) & calc
        # Work in pixel (row, col) coordinates: out(p) = in(A^-1 (p - c) + c) - shift.
        a = np.deg2rad(turn_deg)
        if hinge is not None:
            c = self.place(np.array([hinge]))[0] / np.array([g.col_mm, g.row_mm])
            centre = np.array([c[1], c[0]])
        else:
            centre = np.zeros(2)
        rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # (row, col), y down
        d = xo.rotate(np.array([shift_mm]) * self.zoom, self.angle)[0]
        shift_px = np.array([d[1] / g.row_mm, d[0] / g.col_mm])
        inv = np.linalg.inv(rot)
        offset = centre - inv @ (centre + shift_px)

        def warp(arr, order=1):
            return ndimage.affine_transform(arr, inv, offset=offset, order=order, cval=0)

        moved_mu = warp(np.where(frag, mu, 0).astype(np.float32))
        moved = warp(frag.astype(np.float32), 1) > 0.5
        # Where the fragment is driven into the bone left behind, densities partly add up: the
        # impaction's sclerotic band.
        rest = np.where(frag, 0, mu)
        mu = rest + moved_mu - 0.6 * np.minimum(rest, moved_mu)
        calc = (calc & ~frag) | moved
        edge = moved & ~ndimage.binary_erosion(moved, iterations=2)
        rim = xg.dilate_mm(edge, g, 0.8) & calc
        inner_edge = rim & ~xg.dilate_mm(~calc, g, 1.2)  # the boundary inside the bone
        self.lucent = np.maximum(self.lucent, 0.5 * ndimage.binary_erosion(inner_edge))
        self.mark(name, xg.dilate_mm(rim, g, 0.5) & calc)
        return mu, calc

    def draw(self, present: dict[str, bool], mu: np.ndarray, calc: np.ndarray):
        r = self.rng
        if present["Collapse Fracture Block"]:
            drop = r.uniform(2.5, 5.5)
            self.facet_drop += drop
            mu, calc = self.move("Collapse Fracture Block", mu, calc, COLLAPSE_BLOCK,
                                 shift_mm=(r.uniform(-1, 1), drop))  # fmt: skip
        if present["Tongue Fracture Block"]:
            turn = r.uniform(6, 14)  # posterior end up, facet rotates down about its front
            self.facet_drop += 0.15 * turn
            mu, calc = self.move("Tongue Fracture Block", mu, calc, TONGUE_FRAGMENT,
                                 hinge=(8, -15), turn_deg=-turn)  # fmt: skip
            self.line("Tongue Fracture Block", (-4, -11.5), (-45, -6 + r.uniform(-2, 2)), 10)
        if present["Primary Line"]:
            self.line("Primary Line", (r.uniform(7, 12), -18), (r.uniform(-8, 6), 15), 10, 0.9)
        if present["Calcaneal Tuberosity"]:
            x0 = r.uniform(-36, -28)
            self.line("Calcaneal Tuberosity", (x0, -16), (x0 - r.uniform(4, 10), 19), 9)
        if present["Calcaneal Body"]:
            y0 = r.uniform(-2, 6)
            self.line("Calcaneal Body", (-22, y0), (22, y0 + r.uniform(-4, 4)), 11, 1.0)
            if r.random() < 0.5:
                x0 = r.uniform(-15, 10)
                self.line("Calcaneal Body", (x0, y0), (x0 + r.uniform(-6, 6), 12), 6)
        if present["Posterior Articular Surface"]:
            x0 = r.uniform(-9, 2)
            self.line("Posterior Articular Surface", (x0, -27), (x0 + r.uniform(-3, 3), -15), 6)
            self.line("Posterior Articular Surface", (x0 - 6, -22), (x0 + 6, -21), 5, 0.5)
        soft = ndimage.gaussian_filter(self.lucent, 0.35 / self.grid.row_mm)
        return mu * (1 - 0.55 * np.clip(soft, 0, 1)), calc

    def bohler_angle(self) -> float:
        """Boehler's angle (degrees) from the tuberosity, facet and anterior-process tops."""
        tub, facet, ant = np.array([-42, -8]), np.array([-2, -24 + self.facet_drop]), [35, -16]
        a1 = np.degrees(np.arctan2(tub[1] - facet[1], facet[0] - tub[0]))
        a2 = np.degrees(np.arctan2(ant[1] - facet[1], ant[0] - facet[0]))
        return float(a1 + a2)


def rough_mask(
    rng: np.random.Generator,
    grid: xg.Grid,
    fine: np.ndarray,
    calc: np.ndarray,
    dilate_mm: tuple[float, float],
    shift_mm: float,
    drop_prob: float,
) -> np.ndarray:
    """A quick, imperfect annotation: grown, blobby, shifted, with blocks missing."""
    if not fine.any():
        return np.zeros(grid.shape, dtype=bool)
    grown = xg.dilate_mm(fine, grid, rng.uniform(*dilate_mm)).astype(np.float32)
    px = 2.0 / grid.row_mm
    wobbly = ndimage.gaussian_filter(grown, px) + 0.12 * xd.smooth_noise(rng, grid.shape, px * 2)
    rough = wobbly > 0.45
    dx, dy = rng.normal(0, shift_mm, 2)
    rough = xg.shift_mm(rough.astype(np.float32), grid, dx, dy, order=0) > 0.5
    cell = max(4, int(round(rng.uniform(6, 10) / grid.row_mm)))
    keep = rough.copy()
    for r0 in range(0, grid.rows, cell):
        for c0 in range(0, grid.cols, cell):
            block = rough[r0 : r0 + cell, c0 : c0 + cell]
            if block.any() and rng.random() < drop_prob:
                keep[r0 : r0 + cell, c0 : c0 + cell] = False
    if not keep.any():  # never drop everything: an annotation has at least one stroke
        keep = rough
    return keep
