"""AO/OTA 31-A/B fracture plans for the femur phantom (the fracture lines and fragments each
subtype draws, see ``phantom.py``'s docstring) and the fractured femur's density."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.femur_ao.anatomy import FemurShape, _femur_density, _segment

SUBTYPES = ("A1", "A2", "A3", "B1", "B2", "B3")


@dataclass
class Fragment:
    region: object  # callable (x, y) -> bool mask in material coordinates
    angle: float = 0.0  # rotation (rad) about ``pivot``
    shift: tuple[float, float] = (0.0, 0.0)
    pivot: tuple[float, float] = (0.0, 0.0)

    def inverse(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        px, py = self.pivot
        xs, ys = x - self.shift[0] - px, y - self.shift[1] - py
        ca, sa = np.cos(-self.angle), np.sin(-self.angle)
        return xs * ca - ys * sa + px, xs * sa + ys * ca + py


@dataclass
class FracturePlan:
    subtype: str
    lines: list[tuple[np.ndarray, np.ndarray]]  # segments (material coords) drawn as gaps
    fragments: list[Fragment]  # the first fragment is everything not claimed by the others


def _side_of(p0: np.ndarray, p1: np.ndarray):
    """Region function: points on the left of the directed line p0 -> p1 (image coords)."""
    v = p1 - p0

    def region(x, y):
        return (v[0] * (y - p0[1]) - v[1] * (x - p0[0])) > 0

    return region


def _near(c: np.ndarray, r: float):
    def region(x, y):
        return np.hypot(x - c[0], y - c[1]) < r

    return region


def _both(a, b):
    return lambda x, y: a(x, y) & b(x, y)


def _line_through(c: np.ndarray, direction: np.ndarray, half: float):
    d = direction / np.linalg.norm(direction)
    return c - half * d, c + half * d


def _plan_fracture(subtype: str, f: FemurShape, rng: np.random.Generator, s: float) -> FracturePlan:
    perp = np.array([-f.neck_dir[1], f.neck_dir[0]])  # across the neck (points down-medial)
    disp = rng.uniform(1.5, 4.0) * s
    head_side = lambda p0, p1: _side_of(p0, p1)  # noqa: E731 (short alias)

    if subtype in ("B1", "B2", "B3"):
        where = {"B1": 0.95 * f.head_r, "B2": 0.5 * f.neck_len + 4.0, "B3": f.neck_len - 4.0}[
            subtype
        ]
        tilt = {
            "B1": rng.normal(0, 0.08),
            "B2": 0.45 + rng.normal(0, 0.08),
            "B3": rng.normal(0, 0.08),
        }[subtype]
        c = f.head + f.neck_dir * where
        rot = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])
        direction = rot @ perp
        p0, p1 = _line_through(c, direction, f.neck_r * 2.2)
        # Orient so that the head is on the left of p0 -> p1.
        if not head_side(p0, p1)(np.array([f.head[0]]), np.array([f.head[1]]))[0]:
            p0, p1 = p1, p0
        proximal = _both(head_side(p0, p1), _near(f.head, f.head_r + where + 8.0 * s))
        if subtype == "B1":  # valgus impaction: head tilts and drives into the neck
            frag = Fragment(
                proximal, -0.12 + rng.normal(0, 0.03), tuple(f.neck_dir * disp * 0.8), tuple(c)
            )
        elif subtype == "B2":
            frag = Fragment(
                proximal,
                0.15 + rng.normal(0, 0.05),
                tuple(-perp * disp + f.neck_dir * disp * 0.5),
                tuple(c),
            )
        else:
            frag = Fragment(
                proximal, 0.08 + rng.normal(0, 0.04), tuple(-perp * disp * 0.7), tuple(c)
            )
        return FracturePlan(
            subtype, [(p0, p1)], [Fragment(lambda x, y: np.ones_like(x, bool)), frag]
        )

    if subtype in ("A1", "A2"):
        lateral = f.gt + np.array([10.0, -8.0 + rng.normal(0, 3)]) * s
        medial = f.lt + np.array([4.0, -13.0 + rng.normal(0, 2)]) * s
        p0, p1 = _line_through(
            (lateral + medial) / 2, medial - lateral, np.linalg.norm(medial - lateral) / 2 + 6 * s
        )
        if not _side_of(p0, p1)(np.array([f.head[0]]), np.array([f.head[1]]))[0]:
            p0, p1 = p1, p0
        proximal = _both(_side_of(p0, p1), _near(f.head, 2.6 * f.neck_len))
        varus = 0.05 + rng.normal(0, 0.02)
        frags = [
            Fragment(lambda x, y: np.ones_like(x, bool)),
            Fragment(proximal, varus, (0.0, disp * 0.6), tuple(medial)),
        ]
        lines = [(p0, p1)]
        if subtype == "A2":
            # Detached lesser trochanter (posteromedial fragment): cut off by a second line.
            q0 = f.lt + np.array([8.0, -16.0]) * s
            q1 = f.lt + np.array([6.0 + rng.normal(0, 2), 16.0]) * s
            if not _side_of(q0, q1)(np.array([f.lt[0]]), np.array([f.lt[1]]))[0]:
                q0, q1 = q1, q0
            lt_region = _both(_side_of(q0, q1), _near(f.lt, 20.0 * s))
            lt_region = _both(lt_region, lambda x, y, r=proximal: ~r(x, y))
            frags.append(
                Fragment(lt_region, rng.normal(0, 0.2), (-disp * 1.4, disp * 1.6), tuple(f.lt))
            )
            lines.append((q0, q1))
            if rng.random() < 0.5:  # a greater trochanter fragment as well
                g0 = f.gt + np.array([-14.0, -4.0]) * s
                g1 = f.gt + np.array([4.0, 24.0]) * s
                if not _side_of(g0, g1)(np.array([f.gt[0] + 12 * s]), np.array([f.gt[1]]))[0]:
                    g0, g1 = g1, g0
                gt_region = _both(_side_of(g0, g1), _near(f.gt, 26.0 * s))
                frags.append(Fragment(gt_region, 0.1, (disp, -disp * 0.5), tuple(f.gt)))
                lines.append((g0, g1))
        return FracturePlan(subtype, lines, frags)

    if subtype == "A3":
        if rng.random() < 0.65:  # reverse oblique: inferolateral to superomedial
            lateral = f.troch + np.array([f.shaft_r * 1.3, 30.0 + rng.normal(0, 4)]) * np.array(
                [1.0, s]
            )
            medial = f.lt + np.array([0.0, -16.0 + rng.normal(0, 3)]) * s
        else:  # transverse through the intertrochanteric region below the greater trochanter
            yline = f.troch[1] + (16.0 + rng.normal(0, 3)) * s
            lateral = np.array([f.troch[0] + 30.0 * s, yline])
            medial = np.array([f.troch[0] - 30.0 * s, yline + rng.normal(0, 2)])
        p0, p1 = _line_through(
            (lateral + medial) / 2, medial - lateral, np.linalg.norm(medial - lateral) / 2 + 6 * s
        )
        if _side_of(p0, p1)(np.array([f.head[0]]), np.array([f.head[1]]))[0]:
            p0, p1 = p1, p0  # keep the shaft on the left: the distal fragment moves
        distal = _both(_side_of(p0, p1), lambda x, y: y > f.head[1] + f.head_r)
        frag = Fragment(
            distal, rng.normal(0, 0.05), (-disp * 1.5, disp * 0.4), tuple((lateral + medial) / 2)
        )
        return FracturePlan(
            subtype, [(p0, p1)], [Fragment(lambda x, y: np.ones_like(x, bool)), frag]
        )
    raise ValueError(f"unknown AO subtype {subtype!r}; expected one of {SUBTYPES}")


def _seg_distance(x, y, p0, p1):
    d, _ = _segment(x, y, p0, p1, 0.0, 0.0)
    return d


def _fractured_femur(x, y, f: FemurShape, plan: FracturePlan | None, s: float):
    """Density of a femur with its fragments moved, and the fracture-line mask."""
    if plan is None:
        return _femur_density(x, y, f), np.zeros(x.shape, bool)
    gap_w = 0.9 * s
    total = np.zeros(x.shape)
    claimed = np.zeros(x.shape, bool)
    # Later fragments claim their region first (in material coordinates).
    for frag in plan.fragments[:0:-1]:
        mx, my = frag.inverse(x, y)
        region = frag.region(mx, my)
        dens = _femur_density(mx, my, f)
        for p0, p1 in plan.lines:
            dens = dens * (1.0 - 0.85 * np.exp(-np.square(_seg_distance(mx, my, p0, p1) / gap_w)))
        total += dens * region
        claimed |= region & (dens > 0)
    base_region = np.ones(x.shape, bool)
    for frag in plan.fragments[1:]:
        base_region &= ~frag.region(x, y)
    dens = _femur_density(x, y, f)
    for p0, p1 in plan.lines:
        dens = dens * (1.0 - 0.85 * np.exp(-np.square(_seg_distance(x, y, p0, p1) / gap_w)))
    total += dens * base_region
    line = np.zeros(x.shape, bool)
    bone = _femur_density(x, y, f) > 0
    for p0, p1 in plan.lines:
        line |= (_seg_distance(x, y, p0, p1) < 1.5 * s) & bone
    return total, line


# ---------------------------------------------------------------------------------------------
