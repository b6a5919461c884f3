"""Synthetic AP and lateral lumbar spine radiographs of one patient, with the paper's masks.

One 3-D-ish spine (T11 to the sacrum: per-level body height, width and depth, disc heights,
lumbar lordosis and a mild scoliosis) is projected twice. Masks follow the paper (Jain et al.,
"Spine Image Segmentation & Classification"): AP Pedicle, AP Spinous Process, AP Vertebra;
LAT Anterior Vertebral Line, LAT Disk Height, LAT Posterior Vertebral Line, LAT Spinous
Process, LAT Vertebra. The class is Normal or Damaged; a damaged spine has one vertebra with a
wedge compression (anterior height lost) or a burst-type compression (both heights lost, body
and interpedicular distance widened), and the column angulates above it.

Image coordinates: x along columns, y down the rows, millimetres. Lateral views face left
(anterior on the image's left); AP views show the patient's right on the image's left.

The column (sizes, placement, the compression) is built in ``anatomy.py``; this module draws the
two views and their masks from it; ``writer.py`` writes a sample as a study.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from models.common import xray_density as xd
from models.common import xray_grid as xg
from models.common import xray_outline as xo
from models.common import xray_render as xr
from models.spine_xray.anatomy import (
    LEVELS,
    WIDTH,
    Vertebra,
    body_outline,
    build_spine,
    local_frame,
    sacrum_endplate,
    vertebra_corners,
)
from models.spine_xray.task import TASK
from models.spine_xray.writer import write_study

TASK_ID = TASK.id
CLASSES: tuple[str, ...] = ("Normal", "Damaged")
AP_MASKS: tuple[str, ...] = ("AP Pedicle", "AP Spinous Process", "AP Vertebra")
LAT_MASKS: tuple[str, ...] = (
    "LAT Anterior Vertebral Line",
    "LAT Disk Height",
    "LAT Posterior Vertebral Line",
    "LAT Spinous Process",
    "LAT Vertebra",
)
DAMAGE_LEVEL_WEIGHTS = np.array([0.05, 0.2, 0.25, 0.18, 0.14, 0.1, 0.08])
# Mild wedges (anterior height as a fraction of the body's), beyond the default draw's 0.45-0.75:
# the extra training phantoms (train.py --n-mild) and the held-out mild slice (evaluate.py
# --mild-n). The demo study's L1 wedge (anterior/posterior 0.77) sits at the default's edge.
MILD_WEDGE_RATIO = (0.75, 0.88)


@dataclass
class SpineSample:
    """AP and lateral radiographs of one synthetic patient, masks and the class."""

    ap: np.ndarray  # (rows, cols) uint16 12-bit MONOCHROME2
    lat: np.ndarray
    pixel_spacing_mm: tuple[float, float]
    ap_masks: dict[str, np.ndarray]  # bool masks named as in the paper
    lat_masks: dict[str, np.ndarray]
    ap_levels: np.ndarray  # uint8 vertebra index map (n = LEVELS[n - 1]) on the AP view
    lat_levels: np.ndarray
    vertebrae: list[Vertebra]
    label: str  # "Normal" or "Damaged"
    damaged_level: str | None
    damage_type: str | None  # "wedge" or "burst"
    seed: int
    ap_window: tuple[float, float]
    lat_window: tuple[float, float]
    params: dict = field(default_factory=dict)

    @property
    def damaged(self) -> bool:
        return self.label == "Damaged"

    def volume(self, array: np.ndarray):
        grid = xg.Grid(*array.shape, *self.pixel_spacing_mm)
        return xr.radiograph_volume(array, grid)


def generate(
    seed: int,
    rows: int = 640,
    cols: int = 512,
    pixel_mm: float = 0.45,
    p_damaged: float = 0.5,
    damaged: bool | None = None,
    damage_level: str | None = None,
    damage_type: str | None = None,
    wedge_ratio: tuple[float, float] = (0.45, 0.75),
    burst_ratio: tuple[float, float] = (0.6, 0.8),
    scoliosis_mm: float = 6.0,
) -> SpineSample:
    """Render the AP and lateral views of one synthetic lumbar spine for ``seed``.

    ``damaged`` forces the class; ``damage_level`` (e.g. "L1") and ``damage_type`` ("wedge" or
    "burst") force the lesion. A wedge keeps ``wedge_ratio`` of the posterior height anteriorly.
    """
    rng = np.random.default_rng(seed)
    grid = xg.Grid(rows, cols, pixel_mm, pixel_mm)
    is_damaged = bool(rng.random() < p_damaged) if damaged is None else bool(damaged)
    level = kind = None
    if is_damaged:
        if damage_level is not None and damage_level not in LEVELS:
            raise ValueError(f"unknown level {damage_level!r}; levels: {', '.join(LEVELS)}")
        level = damage_level or LEVELS[int(rng.choice(len(LEVELS), p=DAMAGE_LEVEL_WEIGHTS))]
        kind = damage_type or ("wedge" if rng.random() < 0.7 else "burst")
        if kind not in ("wedge", "burst"):
            raise ValueError(f"unknown damage type {kind!r}; use 'wedge' or 'burst'")
    size = rng.uniform(0.92, 1.08)
    verts, sacrum = build_spine(rng, grid, size, level, kind, wedge_ratio, burst_ratio,
                                 scoliosis_mm)  # fmt: skip
    lat, lat_masks, lat_levels, lat_field = _render_lat(rng, grid, verts, sacrum, size)
    ap, ap_masks, ap_levels, ap_field = _render_ap(rng, grid, verts, sacrum, size)
    return SpineSample(
        ap=ap,
        lat=lat,
        pixel_spacing_mm=(pixel_mm, pixel_mm),
        ap_masks=ap_masks,
        lat_masks=lat_masks,
        ap_levels=ap_levels,
        lat_levels=lat_levels,
        vertebrae=verts,
        label="Damaged" if is_damaged else "Normal",
        damaged_level=level,
        damage_type=kind,
        seed=seed,
        ap_window=xr.display_window(ap, ap_field),
        lat_window=xr.display_window(lat, lat_field),
        params={"size": float(size)},
    )


def _add_bone(mu, grid, outline, depth, cortex, rng, trabecular=0.1):
    cover = xg.polygon_coverage(grid, outline)
    mask = cover >= 0.5
    mu += xd.bone_attenuation(mask, grid, depth, cortex, rng, trabecular, coverage=cover)
    return mask


def _bowel_gas(rng, grid, region: np.ndarray) -> np.ndarray:
    """Smooth gas pockets (less attenuation) scattered over the abdomen."""
    blobs = xd.smooth_noise(rng, grid.shape, grid.mm_to_px_len(9.0))
    gas = np.clip(blobs - 1.3, 0, None) * region
    return ndimage.gaussian_filter(gas, grid.mm_to_px_len(1.5)) * 1.2


def _render_lat(rng, grid, verts, sacrum, size):
    X, Y = grid.mm_coords()
    post_skin = max(float(v.lat_center[0]) + v.depth / 2 + 60 * size for v in verts)
    body = (X < post_skin + 8 * np.sin(Y / 60.0)).astype(bool)
    mu = xd.soft_tissue_attenuation(body, grid, 320 * size, radius_mm=110 * size)
    floor = float(np.median(mu[body])) * 0.6 if body.any() else 0.0
    mu -= xd.MU_SOFT * 25 * _bowel_gas(rng, grid, body & (X < verts[0].lat_center[0] - 10))
    masks = {n: np.zeros(grid.shape, dtype=bool) for n in LAT_MASKS}
    levels = np.zeros(grid.shape, dtype=np.uint8)
    for k, v in enumerate(verts):
        f = local_frame(v.lat_center, v.lat_alpha)
        hd, hp = v.depth / 2, v.posterior_height
        body_mask = _add_bone(mu, grid, f(body_outline(v.depth, v.anterior_height, hp)),
                              v.width * 0.85, 1.1, rng)  # fmt: skip
        masks["LAT Vertebra"] |= body_mask
        levels[body_mask] = k + 1
        # Pedicle, then the articular pillar (facets) and lamina, then the spinous process.
        _add_bone(mu, grid, f(xo.rounded_rect((hd + 5, -hp / 2 + 7), 11, 9, 2.5)), 14, 1.4, rng)
        pillar = xo.rounded_rect((hd + 15, -1.5), 10, hp + 7, 3, 8)
        _add_bone(mu, grid, f(pillar), 26, 1.5, rng)
        spin = np.array([[hd + 17, -hp / 2 + 4], [hd + 40, -hp / 2 + 7], [hd + 46, -hp / 2 + 12],
                         [hd + 44, hp / 2 - 1], [hd + 19, hp / 2 - 2]])  # fmt: skip
        spin_mask = _add_bone(mu, grid, f(xo.smooth_closed(spin, 60)), 9, 1.3, rng)
        masks["LAT Spinous Process"] |= spin_mask
    corners = [vertebra_corners(v) for v in verts]
    ant = np.array([p for c in corners for p in (c[0], c[3])])
    post = np.array([p for c in corners for p in (c[1], c[2])])
    masks["LAT Anterior Vertebral Line"] = xg.polyline_mask(grid, ant, 1.8)
    masks["LAT Posterior Vertebral Line"] = xg.polyline_mask(grid, post, 1.8)
    s1 = sacrum_endplate(sacrum, verts[-1].depth)
    for k in range(len(verts)):
        below = corners[k + 1] if k + 1 < len(verts) else s1
        disc = np.array([corners[k][3], corners[k][2], below[1], below[0]])
        masks["LAT Disk Height"] |= xg.polygon_mask(grid, disc) & ~masks["LAT Vertebra"]
    f = local_frame(sacrum["top"], sacrum["alpha"])
    sac = np.array([[-17, 0], [17, 0], [24, 28], [18, 60], [8, 88], [-2, 86], [-8, 58], [-15, 25]])
    _add_bone(mu, grid, f(xo.smooth_closed(sac * size, 80)), 50 * size, 1.6, rng)
    # Both iliac wings overlap the lumbosacral junction; their crests curve over L4-L5.
    for shift in ((0, 0), (rng.uniform(2, 6), rng.uniform(2, 6))):
        centre = sacrum["top"] + np.array([10 + shift[0], 28 + shift[1]]) * size
        wing = xo.ellipse_outline(centre, 62 * size, 46 * size, rng.uniform(-20, -8), 72)
        _add_bone(mu, grid, wing, 7 * size, 1.8, rng)
    img, fld = xr.expose(mu, grid, rng, xr.Exposure(floor_mu=floor, noise=0.02, gamma=1.1,
                                                    edge_enhance=0.8, edge_mm=4.0))  # fmt: skip
    img = xr.draw_marker(img, grid, "L", (0.06 * grid.width_mm, 0.05 * grid.height_mm), 10)
    return xr.to_uint(img, 12), masks, levels, fld


def _render_ap(rng, grid, verts, sacrum, size):
    X, Y = grid.mm_coords()
    cx = float(np.mean([v.ap_center[0] for v in verts]))
    half = 150 * size
    body = np.abs(X - cx) < half
    mu = xd.soft_tissue_attenuation(body, grid, 230 * size)
    floor = float(np.median(mu[body])) * 0.6 if body.any() else 0.0
    mu -= xd.MU_SOFT * 25 * _bowel_gas(rng, grid, body)
    masks = {n: np.zeros(grid.shape, dtype=bool) for n in AP_MASKS}
    levels = np.zeros(grid.shape, dtype=np.uint8)
    widened = {v.name for v in verts if v.width > WIDTH[LEVELS.index(v.name)] * size * 1.05}
    for k, v in enumerate(verts):
        f = local_frame(v.ap_center, v.ap_phi)
        h = v.mid_height * np.cos(v.lat_alpha)
        w = v.width
        body_mask = _add_bone(mu, grid, f(body_outline(w, h, h, 0.6, 1.8, 3.0)), v.depth * 0.9,
                              1.1, rng)  # fmt: skip
        masks["AP Vertebra"] |= body_mask
        levels[body_mask] = k + 1
        spread = 1.12 if v.name in widened else 1.0  # burst: the pedicles move apart
        for side in (-1, 1):
            ped = xo.ellipse_outline((side * (w / 2 - 7.5) * spread, -h / 2 + 8), 4.2, 6.5)
            masks["AP Pedicle"] |= _add_bone(mu, grid, f(ped), 18, 1.6, rng, 0.1)
            tp_len = 14 + 6 * (v.name == "L3") - 8 * (v.name in ("T11", "T12"))
            tp = xo.rounded_rect((side * (w / 2 + tp_len / 2), -h / 2 + 9), tp_len + 6, 7, 3,
                                 side * -6)  # fmt: skip
            _add_bone(mu, grid, f(tp), 10, 1.2, rng)
            facet = xo.ellipse_outline((side * (w / 2 - 10), h / 2 + 1.5), 3.5, 5.5, side * 15)
            _add_bone(mu, grid, f(facet), 10, 1.0, rng)
            if v.name in ("T11", "T12"):  # the lowest ribs
                rib = f(np.array([[side * (w / 2 + 4), -h / 2 + 8], [side * (w / 2 + 40), -h / 2 + 22],
                                  [side * (w / 2 + 90), -h / 2 + 55]]))  # fmt: skip
                rmask = xg.polyline_mask(grid, xo.smooth_open(rib, 40), 9 * size)
                mu += xd.bone_attenuation(rmask, grid, 9, 1.5, rng, 0.1)
        spin = xo.smooth_closed(
            np.array(
                [
                    [0, h / 2 - 10],
                    [4, h / 2 - 4],
                    [3.5, h / 2 + 3],
                    [0, h / 2 + 6],
                    [-3.5, h / 2 + 3],
                    [-4, h / 2 - 4],
                ]
            ),
            48,
        )
        masks["AP Spinous Process"] |= _add_bone(mu, grid, f(spin), 18, 1.3, rng, 0.1)
    # Sacrum and iliac wings.
    top = sacrum["ap_top"]
    sac = np.array([[-50, 2], [50, 2], [44, 30], [24, 75], [8, 110], [-8, 110], [-24, 75],
                    [-44, 30]]) * size  # fmt: skip
    _add_bone(mu, grid, xo.smooth_closed(sac + top, 90), 28 * size, 1.4, rng)
    for row in range(4):  # sacral foramina: paired holes down the sacrum
        for side in (-1, 1):
            centre = top + size * np.array([side * (20 - 3 * row), 18 + 20 * row])
            hole = xg.polygon_mask(grid, xo.ellipse_outline(centre, 4.5, 3.5))
            mu -= 0.5 * xd.MU_CANCELLOUS * xd.projected_thickness(hole, grid, 20)
    for side in (-1, 1):
        il = np.array([[44, 8], [52, -28], [80, -46], [112, -42], [138, -20], [145, 40],
                       [108, 92], [58, 82], [42, 42]]) * size  # fmt: skip
        il[:, 0] *= side
        _add_bone(mu, grid, xo.smooth_closed(il + top, 120), 8 * size, 2.0, rng)
    img, fld = xr.expose(mu, grid, rng, xr.Exposure(floor_mu=floor, noise=0.02, gamma=1.1,
                                                    edge_enhance=0.8, edge_mm=4.0))  # fmt: skip
    img = xr.draw_marker(img, grid, "R", (0.05 * grid.width_mm, 0.05 * grid.height_mm), 10)
    return xr.to_uint(img, 12), masks, levels, fld


def write_demo(out_dir: Path, seed: int = 0, rows: int = 640, cols: int = 512,
               pixel_mm: float = 0.45) -> list[Path]:  # fmt: skip
    """A normal spine and one with an L1 wedge compression fracture (AP + LAT each)."""
    base = Path(out_dir) / TASK_ID
    cases = [("normal", {"damaged": False}),
             ("damaged_L1_wedge", {"damaged": True, "damage_level": "L1",
                                   "damage_type": "wedge"})]  # fmt: skip
    out = []
    for n, (name, opts) in enumerate(cases):
        sample = generate(seed * 100 + n, rows=rows, cols=cols, pixel_mm=pixel_mm, **opts)
        out.append(write_study(sample, base / f"{n + 1:02d}_{name}"))
    return out
