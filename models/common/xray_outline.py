"""Outlines of synthetic anatomy in millimetres (x to the right, y downward): control points
made smooth, jittered, rotated; ellipses, rounded rectangles and fracture lines.

Pure geometry, no pixels: ``xray_grid`` rasterises these outlines onto an image's grid, so a
phantom's anatomy does not depend on the pixel size.
"""

from __future__ import annotations

import numpy as np


def rotate(
    points: np.ndarray, angle_deg: float, center: tuple[float, float] = (0, 0)
) -> np.ndarray:
    """Rotate (N, 2) points by ``angle_deg`` (counter-clockwise on screen, y down) about center."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    p = np.asarray(points, dtype=float) - center
    # y grows downward on screen, so a visually counter-clockwise turn flips the sine's sign.
    out = np.stack([c * p[:, 0] + s * p[:, 1], -s * p[:, 0] + c * p[:, 1]], axis=1)
    return out + center


def smooth_closed(points: np.ndarray, samples: int = 240) -> np.ndarray:
    """A smooth closed outline through control points (periodic Catmull-Rom spline)."""
    p = np.asarray(points, dtype=float)
    n = len(p)
    per_seg = max(2, samples // n)
    t = np.linspace(0, 1, per_seg, endpoint=False)[:, None]
    out = []
    for k in range(n):
        p0, p1, p2, p3 = p[(k - 1) % n], p[k], p[(k + 1) % n], p[(k + 2) % n]
        out.append(_catmull_rom(p0, p1, p2, p3, t))
    return np.concatenate(out)


def smooth_open(points: np.ndarray, samples: int = 120) -> np.ndarray:
    """A smooth curve through control points, ends included (Catmull-Rom, mirrored ends)."""
    p = np.asarray(points, dtype=float)
    if len(p) < 3:
        return p
    ext = np.concatenate([[2 * p[0] - p[1]], p, [2 * p[-1] - p[-2]]])
    per_seg = max(2, samples // (len(p) - 1))
    t = np.linspace(0, 1, per_seg, endpoint=False)[:, None]
    out = [_catmull_rom(ext[k], ext[k + 1], ext[k + 2], ext[k + 3], t) for k in range(len(p) - 1)]
    return np.concatenate(out + [p[-1:]])


def _catmull_rom(p0, p1, p2, p3, t):
    t2, t3 = t * t, t * t * t
    return 0.5 * (
        2 * p1
        + (-p0 + p2) * t
        + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
        + (-p0 + 3 * p1 - 3 * p2 + p3) * t3
    )


def jitter_outline(points: np.ndarray, rng: np.random.Generator, amount_mm: float) -> np.ndarray:
    """Move each control point a little, so no two phantoms have exactly the same bone."""
    return np.asarray(points, dtype=float) + rng.normal(0, amount_mm, size=np.shape(points))


def jagged_line(
    start: tuple[float, float],
    end: tuple[float, float],
    rng: np.random.Generator,
    n: int = 8,
    roughness_mm: float = 0.8,
) -> np.ndarray:
    """A fracture-like polyline from start to end: straight overall, irregular in detail."""
    s, e = np.asarray(start, float), np.asarray(end, float)
    t = np.linspace(0, 1, n)[:, None]
    pts = s + (e - s) * t
    d = e - s
    normal = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9)
    offs = rng.normal(0, roughness_mm, size=(n, 1))
    offs[0] = offs[-1] = 0
    return pts + offs * normal


def ellipse_outline(center, a: float, b: float, angle_deg: float = 0.0, n: int = 64) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    pts = np.stack([a * np.cos(t), b * np.sin(t)], axis=1)
    return rotate(pts, angle_deg) + np.asarray(center, float)


def rounded_rect(center, w: float, h: float, r: float, angle_deg: float = 0.0) -> np.ndarray:
    """Outline of a w x h rectangle with corner radius r, rotated about its centre."""
    r = min(r, w / 2, h / 2)
    hw, hh = w / 2 - r, h / 2 - r
    arcs = []
    for (cx, cy), a0 in (((hw, -hh), -90), ((hw, hh), 0), ((-hw, hh), 90), ((-hw, -hh), 180)):
        t = np.deg2rad(np.linspace(a0, a0 + 90, 8))
        arcs.append(np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1))
    return rotate(np.concatenate(arcs), angle_deg) + np.asarray(center, float)
