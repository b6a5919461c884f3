"""One sagittal T2 slice of the lumbar MR phantom, painted from the column (``anatomy.py``):
vertebral bodies with marrow signal and dark cortical endplates, discs with a bright nucleus
(dark, thinner and bulging when degenerated), Modic-like endplate change on a diseased vertebra,
the CSF-filled thecal sac with conus and cauda equina, posterior elements, paraspinal fat and
muscle, abdominal contents; and the surface coil's bias field. Image mm as in ``phantom.py``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from models.common import xray_density as xd
from models.common import xray_grid as xg
from models.common import xray_outline as xo
from models.lumbar_ccfnet.anatomy import DISCS, OBJECTS, VERTEBRAE
from models.spine_xray.anatomy import body_outline, local_frame

# T2 signal (arbitrary units, 1 = CSF).
SIG = {
    "fat": 0.78, "muscle": 0.22, "marrow": 0.42, "cortex": 0.04, "annulus": 0.18,
    "nucleus": 0.82, "nucleus_dark": 0.24, "csf": 1.0, "cord": 0.42, "ligament": 0.08,
    "bowel": 0.38, "vessel": 0.05,
}  # fmt: skip


def bias_field(rng: np.random.Generator, grid: xg.Grid) -> np.ndarray:
    """Surface-coil sensitivity: brighter toward the back (the coil is under the patient)."""
    X, _ = grid.mm_coords()
    ramp = 0.7 + 0.45 * (X / grid.width_mm)
    return (ramp * (1 + 0.06 * xd.smooth_noise(rng, grid.shape, grid.mm_to_px_len(40)))).astype(
        np.float32
    )


def _paint(img, cover, value):
    img *= 1 - cover
    img += cover * value


def render_slice(
    rng: np.random.Generator, grid: xg.Grid, spine: dict, st: dict[str, str], dx: float, size: float
) -> tuple[np.ndarray, np.ndarray]:
    """One sagittal slice ``dx`` mm from the midline: (signal image, object label map)."""
    X, Y = grid.mm_coords()
    img = np.zeros(grid.shape, dtype=np.float32)
    obj = np.zeros(grid.shape, dtype=np.uint8)
    skin = spine["skin_x"] + 6 * np.sin(Y / 45.0)
    inside = X < skin
    # Subcutaneous fat over muscle, abdominal contents in front of the spine.
    _paint(img, inside.astype(np.float32), SIG["fat"])
    mus_back = (X < skin - rng.uniform(16, 30) * size) & inside
    _paint(img, xg.blur_local(mus_back.astype(np.float32), 1.5), SIG["muscle"])
    # Bowel starts a few centimetres in front of the spine and follows its curve.
    ant = np.array([b["center"] - [b["d"] / 2, 0] for b in spine["bodies"]])
    front = np.interp(Y, ant[:, 1], ant[:, 0]) - (28 + 6 * np.sin(Y / 37.0)) * size
    bowel = (X < front).astype(np.float32)
    tex = 0.05 * xd.smooth_noise(rng, grid.shape, grid.mm_to_px_len(6))
    tex += 0.25 * np.clip(xd.smooth_noise(rng, grid.shape, grid.mm_to_px_len(5)) - 1.6, 0, None)
    _paint(img, ndimage.gaussian_filter(bowel, 3), SIG["bowel"] + tex)
    bodies, discs = spine["bodies"], spine["discs"]
    # Aorta (flow void) down the front of the upper lumbar bodies, to the bifurcation at L4.
    if abs(dx + 10 * size) < 10 * size:
        ant = np.array([b["center"] + [-b["d"] / 2 - 12 * size, 0] for b in bodies[:6]])
        vessel = xg.polyline_mask(grid, xo.smooth_open(ant, 60), 16 * size)
        _paint(img, xg.blur_local(vessel.astype(np.float32), 1), SIG["vessel"])

    canal_half = 9.0 * size
    in_canal = abs(dx) < canal_half
    sac_scale = np.sqrt(max(0.0, 1 - (dx / canal_half) ** 2)) if in_canal else 0.0
    post_edges = []
    for b in bodies:
        f = local_frame(b["center"], b["alpha"])
        hd, h = b["d"] / 2, b["h"]
        post_edges.append(f([[hd, -h / 2], [hd, h / 2]]))
        # Posterior elements: spinous process at the midline, facet pillars off it.
        if abs(dx) < 5 * size:
            spin = np.array([[hd + 20, -h / 2 + 5], [hd + 40, -h / 2 + 9], [hd + 46, -h / 2 + 13],
                             [hd + 44, h / 2 - 5], [hd + 22, h / 2 - 1]])  # fmt: skip
            cov = xg.polygon_coverage(grid, f(xo.smooth_closed(spin, 50)))
            _paint(img, cov, SIG["cortex"])
            _paint(img, xg.polygon_coverage(grid, f(xo.smooth_closed(_shrink(spin, 1.6), 50))),
                   SIG["marrow"] * 0.9)  # fmt: skip
            lamina = f(xo.rounded_rect((hd + 19, 0), 8, h * 0.75, 3, 10))
            _paint(img, xg.polygon_coverage(grid, lamina), SIG["ligament"])
        elif abs(dx) > canal_half - 2:
            pillar = f(xo.rounded_rect((hd + 16, -1), 11, h + 6, 3, 8))
            _paint(img, xg.polygon_coverage(grid, pillar), SIG["marrow"] * 0.85)
    # Thecal sac: CSF between the posterior body walls and the laminae, down to S1-S2.
    s = spine["sacrum"]
    post_edges.append(local_frame(s["top"], s["alpha"])([[17 * size, 0], [20 * size, 18 * size]]))
    if in_canal:
        front_line = np.concatenate(post_edges) + [2.5 * size, 0]
        back_line = front_line + [14 * size * sac_scale + 1e-3, 0]
        sac = np.concatenate([front_line, back_line[::-1]])
        _paint(img, xg.blur_local(xg.polygon_coverage(grid, sac), 0.7), SIG["csf"])
        if abs(dx) < 4 * size:  # cord ending in the conus at L1-L2, then nerve roots
            top = front_line[:3] + [7 * size * sac_scale, 0]
            cord_end = front_line[5] + [7 * size * sac_scale, 0]
            cord = xg.polyline_mask(grid, np.concatenate([top, [cord_end]]), 7 * size)
            _paint(img, xg.blur_local(cord.astype(np.float32), 0.8), SIG["cord"])
            for r in range(3):
                root = np.array([cord_end + [(r - 1) * 2.5, 0], front_line[-1] + [4 + 3 * r, 10]])
                m = xg.polyline_mask(grid, root, 0.9)
                _paint(img, 0.6 * m.astype(np.float32), SIG["cord"] * 0.8)
    # Vertebral bodies: dark cortex, marrow inside, disease as endplate signal change.
    marrow = SIG["marrow"] * (1 + 0.12 * xd.smooth_noise(rng, grid.shape, 3.0))
    for b in bodies:
        f = local_frame(b["center"], b["alpha"])
        if abs(dx) > b["w"] / 2:
            continue
        outer = body_outline(b["d"], b["h"], b["h"], 0.8, 1.0)
        cov = xg.polygon_coverage(grid, f(outer))
        _paint(img, cov, SIG["cortex"])
        inner = xg.polygon_coverage(grid, f(_shrink(outer, 1.3)))
        _paint(img, inner, marrow)
        # Basivertebral vein: a small bright notch in the middle of the back wall.
        notch = f(xo.ellipse_outline((b["d"] / 2 - 3, 0), 3.5, 1.2))
        _paint(img, 0.7 * xg.polygon_coverage(grid, notch), SIG["csf"] * 0.7)
        if b["name"] in VERTEBRAE and st[b["name"]] == "diseased":
            _vertebral_disease(rng, grid, img, f, b)
        if b["name"] in VERTEBRAE:
            obj[cov >= 0.5] = OBJECTS.index(b["name"]) + 1
    # Discs: dark annulus, nucleus bright when healthy; a degenerated disc may bulge back.
    for dd in discs:
        f = local_frame(dd["center"], dd["alpha"])
        diseased = st.get(dd["name"]) == "diseased"
        hd, h = dd["d"] / 2, dd["h"]
        bulge = rng.uniform(2, 5) * size if diseased else 0.6
        disc = np.array([[-hd, -h / 2], [hd, -h / 2], [hd + bulge, 0], [hd, h / 2], [-hd - 0.5, h / 2],
                         [-hd - 1, 0]])  # fmt: skip
        cov = xg.polygon_coverage(grid, f(xo.smooth_closed(disc, 60)))
        _paint(img, cov, SIG["annulus"])
        nuc = xo.ellipse_outline((0.5, 0), hd * 0.62, h * 0.3)
        ncov = xg.blur_local(xg.polygon_coverage(grid, f(nuc)), 1.2)
        value = SIG["nucleus_dark"] if diseased else SIG["nucleus"] * rng.uniform(0.85, 1.05)
        _paint(img, ncov, value)
        if dd["name"] in DISCS:
            obj[cov >= 0.5] = OBJECTS.index(dd["name"]) + 1
    # Sacrum.
    f = local_frame(s["top"], s["alpha"])
    sac = np.array([[-17, 0], [17, 0], [24, 30], [18, 62], [7, 92], [-3, 88], [-9, 58], [-15, 25]])
    sac = sac * size
    _paint(img, xg.polygon_coverage(grid, f(xo.smooth_closed(sac, 80))), SIG["cortex"])
    _paint(img, xg.polygon_coverage(grid, f(xo.smooth_closed(_shrink(sac, 1.5), 80))),
           SIG["marrow"] * 1.05)  # fmt: skip
    img = ndimage.gaussian_filter(img, 0.6)  # partial volume / k-space truncation
    return img, obj


def _vertebral_disease(rng, grid, img, f, b) -> None:
    """Modic-like endplate bands (bright on T2, or dark) and small anterior osteophytes."""
    hd, h = b["d"] / 2, b["h"]
    bright = rng.random() < 0.65
    value = SIG["marrow"] * (1.8 if bright else 0.35)
    band = rng.uniform(3.0, 6.0)
    for sign in (-1, 1):
        if rng.random() < 0.85:
            y0 = sign * (h / 2 - 1.3 - band / 2)
            rect = f(xo.rounded_rect((rng.uniform(-3, 3), y0), 2 * hd - 5, band, band / 2))
            _paint(img, xg.blur_local(xg.polygon_coverage(grid, rect), 1.2), value)
    for sign in (-1, 1):
        spur = f(np.array([[-hd, sign * (h / 2 - 3)], [-hd - rng.uniform(2, 4), sign * h / 2],
                           [-hd, sign * h / 2]]))  # fmt: skip
        _paint(img, xg.polygon_coverage(grid, spur, 4), SIG["cortex"])


def _shrink(points: np.ndarray, mm: float) -> np.ndarray:
    """Move outline points ``mm`` toward the centroid (an inner contour for a cortex)."""
    p = np.asarray(points, float)
    c = p.mean(axis=0)
    v = p - c
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return c + v * np.clip((n - mm) / np.maximum(n, 1e-6), 0, None)
