"""The femur phantom's anatomy (``phantom.py`` draws the radiograph from it): projection
primitives whose chord length through a body gives the attenuation line integral, a femur shape
drawn at random, its density with a cortical shell around a lighter medulla, and the pelvis,
sacrum and soft tissue around it. Patient frame in mm as in ``phantom.py``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MU_CORTEX = 0.115  # per mm (projected, arbitrary detector units)
MU_MEDULLA = 0.045
MU_SOFT = 0.0105

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
