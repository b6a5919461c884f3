"""Synthetic AP hip/pelvis radiographs with AO/OTA 31-A/B proximal femur fractures.

The render is a projection: every bone is a set of primitives (spheres, tapered cylinders,
ellipsoids) whose chord length through the body gives the attenuation line integral, with a
dense cortical shell around a lighter medulla, so cortex shows brighter than medulla as on a
real radiograph. Soft tissue (pelvis, thighs) is a lower-attenuation body outline.

Anatomy is drawn in a patient frame in mm: x along image columns (+x toward image right =
patient LEFT on an AP view, the radiological convention), y along rows (down = inferior),
origin at the midline at hip level. The patient-left femur is modelled; the right is its mirror.

Fractures (AO/OTA 2018, proximal femur 31-):
- B1 subcapital: line at the head-neck junction, valgus-impacted head (overlap = sclerotic band).
- B2 transcervical: oblique (Pauwels) line through the middle of the neck, displaced.
- B3 basicervical: line at the base of the neck, proximal to the intertrochanteric line.
- A1 simple pertrochanteric: one oblique line from the greater trochanter down to the medial
  cortex above the lesser trochanter; two fragments, lateral wall intact.
- A2 multifragmentary pertrochanteric: the same line plus a detached lesser trochanter
  (posteromedial) fragment, and sometimes a greater trochanter fragment; three or more parts.
- A3 intertrochanteric: reverse-oblique (from the lateral cortex below the greater trochanter
  up to the medial side) or transverse line; the shaft displaced medially.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

CLASSES = ("normal", "A1", "A2", "A3", "B1", "B2", "B3")
SUBTYPES = ("A1", "A2", "A3", "B1", "B2", "B3")
SIDES = ("right", "left")

# Field of view of a full AP pelvis (mm): the paper's detector is 2500 x 2048 px at ~0.15 mm.
FOV_MM = (307.0, 375.0)  # (rows, columns)

MU_CORTEX = 0.115  # per mm (projected, arbitrary detector units)
MU_MEDULLA = 0.045
MU_SOFT = 0.0105


@dataclass
class HipSample:
    """One AP radiograph with per-side truth.

    ``image`` is uint16 (rows, cols), MONOCHROME2 (bone bright). ``head_boxes`` map side to
    (i0, j0, i1, j1) pixel boxes (column, row) around the proximal femur (head, neck and
    trochanters: the region the paper's experts boxed). ``fracture_mask`` marks fracture-line
    pixels. ``view`` is "bilateral", "right" or "left" (single hip).
    """

    image: np.ndarray
    spacing_mm: tuple[float, float]
    labels: dict[str, str]
    head_boxes: dict[str, tuple[float, float, float, float]]
    fracture_mask: np.ndarray
    view: str
    seed: int
    meta: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Projection primitives (all return projected thickness-weighted attenuation, >= 0)


def _chord(r: np.ndarray | float, d: np.ndarray) -> np.ndarray:
    return 2.0 * np.sqrt(np.clip(np.square(r) - np.square(d), 0.0, None))


def _shell(r: np.ndarray | float, d: np.ndarray, cortex: float, mu_med: float = MU_MEDULLA):
    """Cortical shell of thickness ``cortex`` around a medulla: bright rim, lighter centre."""
    inner = np.clip(np.asarray(r) - cortex, 0.0, None)
    return MU_CORTEX * _chord(r, d) - (MU_CORTEX - mu_med) * _chord(inner, d)


def _segment(x, y, p0, p1, r0, r1):
    """Distance to a segment and the local radius of a tapered cylinder along it."""
    p0 = np.asarray(p0, float)
    p1 = np.asarray(p1, float)
    v = p1 - p0
    t = np.clip(((x - p0[0]) * v[0] + (y - p0[1]) * v[1]) / float(v @ v), 0.0, 1.0)
    d = np.hypot(x - (p0[0] + t * v[0]), y - (p0[1] + t * v[1]))
    return d, r0 + t * (r1 - r0)


def _ellipse_d(x, y, c, rx, ry, angle=0.0):
    """Normalised elliptical distance scaled to rx (so _chord(rx, d) is the ellipsoid chord)."""
    ca, sa = np.cos(angle), np.sin(angle)
    dx, dy = x - c[0], y - c[1]
    u = (dx * ca + dy * sa) / rx
    w = (-dx * sa + dy * ca) / ry
    return np.hypot(u, w) * rx


# ---------------------------------------------------------------------------------------------
# Anatomy


@dataclass
class FemurShape:
    head: np.ndarray  # head centre (mm), patient-left femur
    head_r: float
    neck_dir: np.ndarray  # unit vector from head toward the trochanters
    neck_len: float
    neck_r: float
    troch: np.ndarray  # intertrochanteric centre
    shaft_dir: np.ndarray  # unit vector down the shaft
    shaft_r: float
    cortex: float
    gt: np.ndarray  # greater trochanter centre
    lt: np.ndarray  # lesser trochanter centre

    @property
    def neck_base(self) -> np.ndarray:
        return self.head + self.neck_len * self.neck_dir

    def box(self) -> tuple[float, float, float, float]:
        """Square (x0, y0, x1, y1) mm around head, neck and trochanters."""
        pts = np.array(
            [
                self.head - self.head_r,
                self.head + self.head_r,
                self.gt + 14.0,
                self.lt - 8.0,
                self.lt + 8.0,
            ]
        )
        lo, hi = pts.min(0), pts.max(0)
        c, half = (lo + hi) / 2, float((hi - lo).max()) / 2 + 4.0
        return (c[0] - half, c[1] - half, c[0] + half, c[1] + half)


def _random_femur(rng: np.random.Generator, scale: float) -> FemurShape:
    head = np.array([92.0 + rng.normal(0, 3), rng.normal(0, 3)]) * scale
    head_r = (23.0 + rng.normal(0, 1.2)) * scale
    neck_angle = np.deg2rad(38.0 + rng.normal(0, 4))  # below horizontal, pointing lateral
    neck_dir = np.array([np.cos(neck_angle), np.sin(neck_angle)])
    neck_len = (50.0 + rng.normal(0, 3)) * scale
    troch = head + neck_dir * neck_len + np.array([6.0, 10.0]) * scale
    shaft_tilt = np.deg2rad(-6.0 + rng.normal(0, 3))  # shaft runs slightly medial distally
    shaft_dir = np.array([np.sin(shaft_tilt), np.cos(shaft_tilt)])
    return FemurShape(
        head=head,
        head_r=head_r,
        neck_dir=neck_dir,
        neck_len=neck_len,
        neck_r=(14.5 + rng.normal(0, 0.8)) * scale,
        troch=troch,
        shaft_dir=shaft_dir,
        shaft_r=(15.0 + rng.normal(0, 0.8)) * scale,
        cortex=(4.5 + rng.normal(0, 0.5)) * scale,
        gt=troch + np.array([17.0, -12.0]) * scale,
        lt=troch + np.array([-17.0, 26.0]) * scale,
    )


def _femur_density(x: np.ndarray, y: np.ndarray, f: FemurShape) -> np.ndarray:
    """Projected attenuation of a normal proximal femur (patient-left orientation)."""
    # Head: dense trabecular sphere with a thin cortex.
    dh = np.hypot(x - f.head[0], y - f.head[1])
    head = _shell(f.head_r, dh, f.cortex * 0.45, mu_med=MU_MEDULLA * 1.0)
    # Neck: tapered cylinder from inside the head to the trochanteric region.
    n0 = f.head + 0.4 * f.head_r * f.neck_dir
    dn, rn = _segment(x, y, n0, f.troch, f.neck_r, f.neck_r * 1.7)
    neck = _shell(rn, dn, f.cortex * 0.6, mu_med=MU_MEDULLA * 1.2)
    # Metaphysis flaring into the shaft, and the shaft (thick cortex).
    top = f.troch - f.shaft_dir * 8.0
    mid = f.troch + f.shaft_dir * 55.0
    dm, rm = _segment(x, y, top, mid, f.shaft_r * 1.75, f.shaft_r)
    meta = _shell(rm, dm, f.cortex * 0.8)
    ds, rs = _segment(x, y, mid, mid + f.shaft_dir * 400.0, f.shaft_r, f.shaft_r * 0.95)
    shaft = _shell(rs, ds, f.cortex * 1.35)
    # Greater trochanter (lateral, superior) and lesser trochanter (medial, posterior).
    dg = _ellipse_d(x, y, f.gt, 15.0 * f.shaft_r / 15.0, 21.0 * f.shaft_r / 15.0, 0.35)
    gt = _shell(15.0 * f.shaft_r / 15.0, dg, f.cortex * 0.5)
    dl = _ellipse_d(x, y, f.lt, 7.5, 11.0, -0.5)
    lt = _shell(7.5, dl, 2.0)
    return np.maximum.reduce([head, neck, meta, shaft, gt, lt])


def _plate(sdf: np.ndarray, level: float, rim: float, s: float) -> np.ndarray:
    """A flat bone plate seen face-on: even density inside ``sdf < 0``, a denser cortical rim."""
    inside = 1.0 / (1.0 + np.exp(np.clip(sdf / (1.2 * s), -30, 30)))
    return level * inside + rim * np.exp(-np.square(sdf / (2.0 * s)))


def _ellipse_sdf(x, y, c, rx, ry, angle=0.0):
    return _ellipse_d(x, y, c, rx, ry, angle) - rx


def _capsule_sdf(x, y, p0, p1, r0, r1):
    d, r = _segment(x, y, p0, p1, r0, r1)
    return d - r


def _pelvis_density(x: np.ndarray, y: np.ndarray, f: FemurShape, s: float) -> np.ndarray:
    """One hemipelvis (patient-left orientation): ilium, acetabulum, pubis, ischium."""
    h = f.head
    # Ilium: a thin wing above the hip, joined to the sacrum medially; the crest is denser.
    wing = _ellipse_sdf(x, y, h + np.array([-6.0, -80.0]) * s, 82.0 * s, 52.0 * s, -0.3)
    body = _capsule_sdf(
        x, y, h + np.array([-5.0, -20.0]) * s, (40.0 * s, h[1] - 75.0 * s), 30 * s, 26 * s
    )
    ilium = _plate(np.minimum(wing, body), 0.75, 0.45, s)
    # Acetabular roof (sourcil): a dense arc over the head; the socket's walls around it.
    dr = np.hypot(x - h[0], y - h[1])
    ang = np.arctan2(y - h[1], x - h[0])
    roof_band = np.exp(-np.square((dr - (f.head_r + 2.5 * s)) / (1.8 * s)))
    roof = 0.8 * roof_band * ((ang < 0.2) & (ang > -np.pi + 0.5))
    socket = _plate(
        _ellipse_sdf(x, y, h + np.array([-6.0, -4.0]) * s, 34.0 * s, 34.0 * s), 0.45, 0.2, s
    )
    teardrop = 0.5 * np.exp(
        -np.square(
            _capsule_sdf(
                x, y, h + np.array([-33.0, -6.0]) * s, h + np.array([-30.0, 22.0]) * s, 4 * s, 3 * s
            )
            / (1.6 * s)
        )
    )
    # Obturator ring (pubic rami above, ischium below) around the obturator foramen.
    oc = h + np.array([-38.0, 52.0]) * s
    outer = _ellipse_sdf(x, y, oc, 40.0 * s, 34.0 * s, 0.25)
    hole = _ellipse_sdf(x, y, oc + np.array([2.0, 2.0]) * s, 25.0 * s, 19.0 * s, 0.35)
    ring = _plate(np.maximum(outer, -hole), 0.8, 0.4, s)
    ramus = _plate(
        _capsule_sdf(
            x, y, oc + np.array([-20.0, -22.0]) * s, (6.0 * s, h[1] + 45.0 * s), 10 * s, 13 * s
        ),
        0.8,
        0.35,
        s,
    )
    tuber = _plate(
        _ellipse_sdf(x, y, oc + np.array([12.0, 30.0]) * s, 20.0 * s, 13.0 * s, 0.4), 0.9, 0.4, s
    )
    return np.maximum.reduce([ilium, socket, ring, ramus, tuber]) + roof + teardrop


def _sacrum_spine(x: np.ndarray, y: np.ndarray, s: float, hip_y: float) -> np.ndarray:
    """Midline sacrum (wedge with foramina) and the lowest lumbar vertebra."""
    top, bottom = hip_y - 120.0 * s, hip_y + 5.0 * s
    t = np.clip((y - top) / (bottom - top), 0.0, 1.0)
    half = (50.0 - 36.0 * t) * s
    sdf = np.maximum(np.abs(x) - half, np.maximum(top - y, y - bottom))
    sac = _plate(sdf, 0.85, 0.3, s)
    for k in range(4):  # sacral foramina: darker holes in two columns
        for sgn in (-1, 1):
            c = (sgn * (24.0 - 3.5 * k) * s, top + (22.0 + 22.0 * k) * s)
            sac -= 0.35 * np.exp(-np.square(np.hypot(x - c[0], y - c[1]) / (5.0 * s)))
    l5 = _plate(_ellipse_sdf(x, y, (0.0, top - 30.0 * s), 27.0 * s, 17.0 * s), 0.9, 0.5, s)
    return np.clip(sac, 0.0, None) + l5


def _soft_tissue(x: np.ndarray, y: np.ndarray, s: float, hip_y: float, width: float) -> np.ndarray:
    dp = _ellipse_d(x, y, (0.0, hip_y - 40.0 * s), width / 2, 190.0 * s)
    fade = 1.0 / (1.0 + np.exp(np.clip((y - hip_y - 70.0 * s) / (15.0 * s), -30, 30)))
    pelvis = _chord(width / 2, dp) * fade
    thighs = 0.0
    for sgn in (-1, 1):
        dt, rt = _segment(
            x,
            y,
            (sgn * 105.0 * s, hip_y + 20.0 * s),
            (sgn * 95.0 * s, hip_y + 600.0),
            95.0 * s,
            80.0 * s,
        )
        thighs = np.maximum(thighs, _chord(rt, dt))
    return MU_SOFT * np.maximum(pelvis, thighs)


# ---------------------------------------------------------------------------------------------
# Fractures: fragments are pieces of bone moved by a rigid transform; the render at p sums
# fragment k's density evaluated at T_k^-1(p), masked by its material region.


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


def generate(
    seed: int,
    shape: tuple[int, int] = (614, 750),
    labels: dict[str, str] | None = None,
    view: str = "bilateral",
    fracture_probability: float = 0.75,
    noise: float = 1.0,
) -> HipSample:
    """Render an AP pelvis radiograph (both hips) or one hip (``view`` "right"/"left").

    ``labels`` fixes the per-side class ({"right": "A2", "left": "normal"}); otherwise one side
    is fractured with ``fracture_probability`` and the other is normal (as in the paper's data,
    where each bilateral image gave one fractured and one normal femur).
    ``shape`` is the full bilateral (rows, columns); a single-hip view is a crop of it.
    """
    if view not in ("bilateral", "right", "left"):
        raise ValueError(f"view must be 'bilateral', 'right' or 'left', not {view!r}")
    rng = np.random.default_rng(seed)
    if labels is None:
        labels = {"right": "normal", "left": "normal"}
        if rng.random() < fracture_probability:
            labels[SIDES[int(rng.integers(2))]] = SUBTYPES[int(rng.integers(len(SUBTYPES)))]
    for side in SIDES:
        if labels.get(side, "normal") not in CLASSES:
            raise ValueError(f"unknown class {labels[side]!r} for {side}; expected {CLASSES}")
    labels = {side: labels.get(side, "normal") for side in SIDES}
    rows, cols = shape
    sy, sx = FOV_MM[0] / rows, FOV_MM[1] / cols
    s = float(rng.uniform(0.9, 1.08))  # patient size
    hip_y = rng.normal(-8.0, 8.0)  # hip level relative to the image centre (mm)
    centre_x = rng.normal(0.0, 6.0)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    y = (yy - rows / 2 + 0.5) * sy - hip_y
    x = (xx - cols / 2 + 0.5) * sx - centre_x

    density = _soft_tissue(x, y, s, 0.0, float(rng.uniform(330, 370)) * s)
    density += _sacrum_spine(x, y, s, 0.0)
    fracture_mask = np.zeros(shape, bool)
    head_boxes, head_centres, n_lines = {}, {}, {}
    for side in SIDES:
        # Patient right is on the image left: mirror x for the right side.
        mx = -x if side == "right" else x
        f = _random_femur(rng, s)
        plan = None if labels[side] == "normal" else _plan_fracture(labels[side], f, rng, s)
        # Each side is drawn on its own half of the image only (the halves do not overlap).
        cols_half = (mx[0] > 0) if side == "left" else (mx[0] >= 0)
        sl = (
            slice(None),
            slice(int(np.argmax(cols_half)), int(len(cols_half) - np.argmax(cols_half[::-1]))),
        )
        fem, line = _fractured_femur(mx[sl], y[sl], f, plan, s)
        density[sl] += fem + _pelvis_density(mx[sl], y[sl], f, s)
        fracture_mask[sl] |= line
        x0, y0, x1, y1 = f.box()
        if side == "right":
            x0, x1 = -x1, -x0
        # mm -> pixel indices (i = column, j = row)
        i0 = (x0 + centre_x) / sx + cols / 2 - 0.5
        i1 = (x1 + centre_x) / sx + cols / 2 - 0.5
        j0 = (y0 + hip_y) / sy + rows / 2 - 0.5
        j1 = (y1 + hip_y) / sy + rows / 2 - 0.5
        head_boxes[side] = (float(i0), float(j0), float(i1), float(j1))
        hx = -f.head[0] if side == "right" else f.head[0]
        head_centres[side] = (
            float((hx + centre_x) / sx + cols / 2 - 0.5),
            float((f.head[1] + hip_y) / sy + rows / 2 - 0.5),
        )
        n_lines[side] = 0 if plan is None else len(plan.lines)

    image = _expose(density, rng, sx, noise)
    sample = HipSample(
        image=image,
        spacing_mm=(sy, sx),
        labels=labels,
        head_boxes=head_boxes,
        fracture_mask=fracture_mask,
        view="bilateral",
        seed=seed,
        meta={
            "patient_scale": s,
            "head_centre_px": head_centres,  # (column, row) per side
            "head_radius_px": float(23.0 * s / sx),
            "fracture_lines": n_lines,
        },
    )
    return sample if view == "bilateral" else single_hip(sample, view)


def _expose(density: np.ndarray, rng: np.random.Generator, px_mm: float, noise: float):
    """Detector response (log signal, bone bright), blur, noise, 12-bit storage."""
    blur = ndimage.gaussian_filter(density, sigma=max(0.4 / px_mm, 0.3))
    gain = rng.uniform(0.85, 1.15)
    signal = 1.0 - np.exp(-gain * blur / 3.2)
    signal = 250.0 + 3300.0 * signal
    signal += rng.normal(0.0, 18.0 * noise, signal.shape) + ndimage.gaussian_filter(
        rng.normal(0.0, 40.0 * noise, signal.shape), 6.0
    )
    return np.clip(signal, 0, 4095).astype(np.uint16)


def single_hip(sample: HipSample, side: str) -> HipSample:
    """Crop a bilateral sample to one hip (with part of the sacrum), like a hip-joint AP film."""
    rows, cols = sample.image.shape
    width = int(round(cols * 0.58))
    c0 = 0 if side == "right" else cols - width
    crop = (slice(0, rows), slice(c0, c0 + width))
    i0, j0, i1, j1 = sample.head_boxes[side]
    return HipSample(
        image=sample.image[crop].copy(),
        spacing_mm=sample.spacing_mm,
        labels={side: sample.labels[side]},
        head_boxes={side: (i0 - c0, j0, i1 - c0, j1)},
        fracture_mask=sample.fracture_mask[crop].copy(),
        view=side,
        seed=sample.seed,
        meta={
            **sample.meta,
            "head_centre_px": {
                side: (
                    sample.meta["head_centre_px"][side][0] - c0,
                    sample.meta["head_centre_px"][side][1],
                )
            },
        },
    )


def write_study(sample: HipSample, out_dir: Path) -> Path:
    """Write the radiograph as DICOM (DX, AP) and truth.json beside it; returns the DICOM path."""
    from app.findings.truth import write_truth
    from models.common.study_writer import phantom_patient, phantom_source, write_phantom_radiograph

    out_dir = Path(out_dir)
    body = "PELVIS" if sample.view == "bilateral" else "HIP"
    desc = "AP pelvis" if sample.view == "bilateral" else f"AP {sample.view} hip"
    patient = phantom_patient(
        "PHANTOM^SYNTHETIC",
        f"FEMUR-{sample.seed:04d}",
        f"Synthetic {desc} (phantom, not a patient)",
        body,
    )
    path = write_phantom_radiograph(
        sample.image, out_dir / "image.dcm", patient=patient, spacing_mm=sample.spacing_mm,
        series_description=f"Synthetic {desc}", view_position="AP", window=(1800.0, 3200.0),
    )  # fmt: skip
    boxes = [
        {"i0": b[0], "j0": b[1], "i1": b[2], "j1": b[3], "k": 0, "caption": side}
        for side, b in sample.head_boxes.items()
    ]
    write_truth(
        out_dir,
        task="femur-ao",
        labels=dict(sample.labels),
        source=phantom_source(sample.seed),
        boxes=[("Femoral heads (truth)", boxes)],
    )
    return path


DEMO_CASES = (
    ("normal_pelvis", {"right": "normal", "left": "normal"}),
    ("neck_fracture_B2_right", {"right": "B2", "left": "normal"}),
    ("trochanteric_A2_left", {"right": "normal", "left": "A2"}),
)


def write_demo(out_dir: Path, seed: int = 0) -> list[Path]:
    """Three small AP pelvis studies into ``out_dir/femur-ao/<name>/``."""
    paths = []
    for n, (name, labels) in enumerate(DEMO_CASES):
        sample = generate(seed + 101 * n, shape=(820, 1000), labels=labels)
        paths.append(write_study(sample, Path(out_dir) / "femur-ao" / name))
    return paths
