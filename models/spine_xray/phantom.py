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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from models.common import xray_render as xr
from models.spine_xray.labels import MASK_COLORS

TASK_ID = "spine-xray"
CLASSES: tuple[str, ...] = ("Normal", "Damaged")
LEVELS: tuple[str, ...] = ("T11", "T12", "L1", "L2", "L3", "L4", "L5")
AP_MASKS: tuple[str, ...] = ("AP Pedicle", "AP Spinous Process", "AP Vertebra")
LAT_MASKS: tuple[str, ...] = (
    "LAT Anterior Vertebral Line",
    "LAT Disk Height",
    "LAT Posterior Vertebral Line",
    "LAT Spinous Process",
    "LAT Vertebra",
)
# Typical adult dimensions (mm) per level: body height, coronal width, sagittal depth; and the
# height of the disc below each level (the last is L5-S1).
HEIGHT = np.array([22.0, 23.5, 25.0, 26.0, 27.0, 27.0, 26.0])
WIDTH = np.array([37.0, 40.0, 42.0, 45.0, 48.0, 50.0, 52.0])
DEPTH = np.array([28.0, 30.0, 32.0, 33.0, 34.0, 34.0, 33.0])
DISC = np.array([6.0, 7.0, 8.0, 9.0, 10.0, 10.5, 9.5])
DAMAGE_LEVEL_WEIGHTS = np.array([0.05, 0.2, 0.25, 0.18, 0.14, 0.1, 0.08])


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
        grid = xr.Grid(*array.shape, *self.pixel_spacing_mm)
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
    grid = xr.Grid(rows, cols, pixel_mm, pixel_mm)
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
    verts, sacrum = _build_spine(rng, grid, size, level, kind, wedge_ratio, burst_ratio,
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


def _build_spine(rng, grid, size, level, kind, wedge_ratio, burst_ratio, scoliosis_mm):
    """Place each body along a lordotic (lateral) and slightly scoliotic (AP) column."""
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


def local_frame(center, angle):
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


def _corners(v: Vertebra):
    """Anterior-superior, posterior-superior, posterior-inferior, anterior-inferior (lateral)."""
    f = local_frame(v.lat_center, v.lat_alpha)
    hd = v.depth / 2
    return f([[-hd, -v.anterior_height / 2], [hd, -v.posterior_height / 2],
              [hd, v.posterior_height / 2], [-hd, v.anterior_height / 2]])  # fmt: skip


def _add_bone(mu, grid, outline, depth, cortex, rng, trabecular=0.1):
    cover = xr.polygon_coverage(grid, outline)
    mask = cover >= 0.5
    mu += xr.bone_attenuation(mask, grid, depth, cortex, rng, trabecular, coverage=cover)
    return mask


def _bowel_gas(rng, grid, region: np.ndarray) -> np.ndarray:
    """Smooth gas pockets (less attenuation) scattered over the abdomen."""
    blobs = xr.smooth_noise(rng, grid.shape, grid.mm_to_px_len(9.0))
    gas = np.clip(blobs - 1.3, 0, None) * region
    return ndimage.gaussian_filter(gas, grid.mm_to_px_len(1.5)) * 1.2


def _render_lat(rng, grid, verts, sacrum, size):
    X, Y = grid.mm_coords()
    post_skin = max(float(v.lat_center[0]) + v.depth / 2 + 60 * size for v in verts)
    body = (X < post_skin + 8 * np.sin(Y / 60.0)).astype(bool)
    mu = xr.soft_tissue_attenuation(body, grid, 320 * size, radius_mm=110 * size)
    floor = float(np.median(mu[body])) * 0.6 if body.any() else 0.0
    mu -= xr.MU_SOFT * 25 * _bowel_gas(rng, grid, body & (X < verts[0].lat_center[0] - 10))
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
        _add_bone(mu, grid, f(xr.rounded_rect((hd + 5, -hp / 2 + 7), 11, 9, 2.5)), 14, 1.4, rng)
        pillar = xr.rounded_rect((hd + 15, -1.5), 10, hp + 7, 3, 8)
        _add_bone(mu, grid, f(pillar), 26, 1.5, rng)
        spin = np.array([[hd + 17, -hp / 2 + 4], [hd + 40, -hp / 2 + 7], [hd + 46, -hp / 2 + 12],
                         [hd + 44, hp / 2 - 1], [hd + 19, hp / 2 - 2]])  # fmt: skip
        spin_mask = _add_bone(mu, grid, f(xr.smooth_closed(spin, 60)), 9, 1.3, rng)
        masks["LAT Spinous Process"] |= spin_mask
    corners = [_corners(v) for v in verts]
    ant = np.array([p for c in corners for p in (c[0], c[3])])
    post = np.array([p for c in corners for p in (c[1], c[2])])
    masks["LAT Anterior Vertebral Line"] = xr.polyline_mask(grid, ant, 1.8)
    masks["LAT Posterior Vertebral Line"] = xr.polyline_mask(grid, post, 1.8)
    s1 = _sacrum_lat(sacrum, verts[-1].depth)
    for k in range(len(verts)):
        below = corners[k + 1] if k + 1 < len(verts) else s1
        disc = np.array([corners[k][3], corners[k][2], below[1], below[0]])
        masks["LAT Disk Height"] |= xr.polygon_mask(grid, disc) & ~masks["LAT Vertebra"]
    f = local_frame(sacrum["top"], sacrum["alpha"])
    sac = np.array([[-17, 0], [17, 0], [24, 28], [18, 60], [8, 88], [-2, 86], [-8, 58], [-15, 25]])
    _add_bone(mu, grid, f(xr.smooth_closed(sac * size, 80)), 50 * size, 1.6, rng)
    # Both iliac wings overlap the lumbosacral junction; their crests curve over L4-L5.
    for shift in ((0, 0), (rng.uniform(2, 6), rng.uniform(2, 6))):
        centre = sacrum["top"] + np.array([10 + shift[0], 28 + shift[1]]) * size
        wing = xr.ellipse_outline(centre, 62 * size, 46 * size, rng.uniform(-20, -8), 72)
        _add_bone(mu, grid, wing, 7 * size, 1.8, rng)
    img, fld = xr.expose(mu, grid, rng, xr.Exposure(floor_mu=floor, noise=0.02, gamma=1.1,
                                                    edge_enhance=0.8, edge_mm=4.0))  # fmt: skip
    img = xr.draw_marker(img, grid, "L", (0.06 * grid.width_mm, 0.05 * grid.height_mm), 10)
    return xr.to_uint(img, 12), masks, levels, fld


def _sacrum_lat(sacrum, depth):
    """The S1 endplate's anterior and posterior corners, in the order _corners uses."""
    f = local_frame(sacrum["top"], sacrum["alpha"])
    pts = f([[-depth / 2, 0], [depth / 2, 0]])
    return np.array([pts[0], pts[1], pts[1], pts[0]])


def _render_ap(rng, grid, verts, sacrum, size):
    X, Y = grid.mm_coords()
    cx = float(np.mean([v.ap_center[0] for v in verts]))
    half = 150 * size
    body = np.abs(X - cx) < half
    mu = xr.soft_tissue_attenuation(body, grid, 230 * size)
    floor = float(np.median(mu[body])) * 0.6 if body.any() else 0.0
    mu -= xr.MU_SOFT * 25 * _bowel_gas(rng, grid, body)
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
            ped = xr.ellipse_outline((side * (w / 2 - 7.5) * spread, -h / 2 + 8), 4.2, 6.5)
            masks["AP Pedicle"] |= _add_bone(mu, grid, f(ped), 18, 1.6, rng, 0.1)
            tp_len = 14 + 6 * (v.name == "L3") - 8 * (v.name in ("T11", "T12"))
            tp = xr.rounded_rect((side * (w / 2 + tp_len / 2), -h / 2 + 9), tp_len + 6, 7, 3,
                                 side * -6)  # fmt: skip
            _add_bone(mu, grid, f(tp), 10, 1.2, rng)
            facet = xr.ellipse_outline((side * (w / 2 - 10), h / 2 + 1.5), 3.5, 5.5, side * 15)
            _add_bone(mu, grid, f(facet), 10, 1.0, rng)
            if v.name in ("T11", "T12"):  # the lowest ribs
                rib = f(np.array([[side * (w / 2 + 4), -h / 2 + 8], [side * (w / 2 + 40), -h / 2 + 22],
                                  [side * (w / 2 + 90), -h / 2 + 55]]))  # fmt: skip
                rmask = xr.polyline_mask(grid, xr.smooth_open(rib, 40), 9 * size)
                mu += xr.bone_attenuation(rmask, grid, 9, 1.5, rng, 0.1)
        spin = xr.smooth_closed(
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
    _add_bone(mu, grid, xr.smooth_closed(sac + top, 90), 28 * size, 1.4, rng)
    for row in range(4):  # sacral foramina: paired holes down the sacrum
        for side in (-1, 1):
            centre = top + size * np.array([side * (20 - 3 * row), 18 + 20 * row])
            hole = xr.polygon_mask(grid, xr.ellipse_outline(centre, 4.5, 3.5))
            mu -= 0.5 * xr.MU_CANCELLOUS * xr.projected_thickness(hole, grid, 20)
    for side in (-1, 1):
        il = np.array([[44, 8], [52, -28], [80, -46], [112, -42], [138, -20], [145, 40],
                       [108, 92], [58, 82], [42, 42]]) * size  # fmt: skip
        il[:, 0] *= side
        _add_bone(mu, grid, xr.smooth_closed(il + top, 120), 8 * size, 2.0, rng)
    img, fld = xr.expose(mu, grid, rng, xr.Exposure(floor_mu=floor, noise=0.02, gamma=1.1,
                                                    edge_enhance=0.8, edge_mm=4.0))  # fmt: skip
    img = xr.draw_marker(img, grid, "R", (0.05 * grid.width_mm, 0.05 * grid.height_mm), 10)
    return xr.to_uint(img, 12), masks, levels, fld


# ---- writing -------------------------------------------------------------------------------


def write_study(sample: SpineSample, out_dir: Path, fmt: str = "dicom") -> Path:
    """Write AP and LAT views (``fmt`` "dicom" or "jpeg") each with its own truth.json.

    Layout: ``out_dir/AP/`` and ``out_dir/LAT/`` (a radiograph's truth label maps are in that
    image's own frame, so each view keeps its truth beside it). DICOM views share one
    StudyInstanceUID. JPEG mirrors the paper's dataset: an RGB .jpg per view and one binary
    .png per mask in ``masks/``, named as the paper names the masks.
    """
    if fmt not in ("dicom", "jpeg"):
        raise ValueError(f"unknown format {fmt!r}; use 'dicom' or 'jpeg'")
    from pydicom.uid import generate_uid

    out_dir = Path(out_dir)
    study_uid = generate_uid()
    views = (
        ("AP", sample.ap, sample.ap_masks, sample.ap_levels, sample.ap_window),
        ("LAT", sample.lat, sample.lat_masks, sample.lat_levels, sample.lat_window),
    )
    for view, pixels, masks, levels, window in views:
        vdir = out_dir / view
        vdir.mkdir(parents=True, exist_ok=True)
        if fmt == "dicom":
            _write_dicom_view(sample, view, pixels, window, vdir, study_uid)
            spacing = sample.pixel_spacing_mm
        else:
            _write_jpeg_view(view, pixels, masks, vdir)
            spacing = (1.0, 1.0)  # a plain image carries no pixel size
        _write_view_truth(sample, view, masks, levels, spacing, vdir)
    return out_dir


def _write_dicom_view(sample, view, pixels, window, vdir, study_uid) -> Path:
    from models.common.study_writer import phantom_patient, write_phantom_radiograph

    patient = phantom_patient(
        f"PHANTOM^SPINE^{sample.seed}", f"PH-SPINE-{sample.seed:05d}",
        "Synthetic lumbar spine AP and lateral (phantom, not a patient)", "LSPINE",
    )  # fmt: skip
    # Both views belong to one study (study_uid); row and column directions in the patient: AP
    # shows the right on the left, LAT faces left.
    return write_phantom_radiograph(
        pixels, vdir / f"spine_{view.lower()}.dcm", patient=patient,
        spacing_mm=sample.pixel_spacing_mm, series_description=f"L-spine {view}",
        view_position="AP" if view == "AP" else "LL", window=window, study_uid=study_uid,
        tags={"SeriesNumber": 1 if view == "AP" else 2,
              "PatientOrientation": ["L", "F"] if view == "AP" else ["P", "F"]},
    )  # fmt: skip


def _write_jpeg_view(view, pixels, masks, vdir) -> Path:
    from PIL import Image

    grey = np.round(pixels.astype(np.float32) / 4095 * 255).astype(np.uint8)
    path = vdir / f"{view}.jpg"
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(path, quality=92)
    (vdir / "masks").mkdir(exist_ok=True)
    for name, mask in masks.items():
        png = vdir / "masks" / f"{name.replace(' ', '_')}.png"
        Image.fromarray((mask * 255).astype(np.uint8)).save(png)
    return path


def _write_view_truth(sample, view, masks, levels, spacing, vdir) -> Path:
    from app.findings.truth import write_truth
    from models.common.study_writer import phantom_source

    grid = xr.Grid(*levels.shape, *spacing)
    maps = [(f"{view} vertebral levels (truth)", xr.radiograph_volume(levels, grid),
             {k + 1: (name, _level_color(k)) for k, name in enumerate(LEVELS)})]  # fmt: skip
    for name, mask in masks.items():
        maps.append((name, xr.radiograph_volume(mask.astype(np.uint8), grid),
                     {1: (name, MASK_COLORS[name])}))  # fmt: skip
    heights = {
        v.name: {"anterior_mm": round(v.anterior_height, 2),
                 "posterior_mm": round(v.posterior_height, 2)}
        for v in sample.vertebrae
    }  # fmt: skip
    return write_truth(
        vdir,
        TASK_ID,
        labels={
            "class": sample.label,
            "damaged": sample.damaged,
            "damaged_level": sample.damaged_level,
            "damage_type": sample.damage_type,
            "view": view,
            "masks": list(masks),
            "vertebral_heights": heights,
        },
        source=phantom_source(sample.seed, "models.spine_xray.phantom"),
        labelmaps=maps,
    )


def _level_color(k: int) -> tuple[int, int, int]:
    palette = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
               (145, 30, 180), (70, 240, 240)]  # fmt: skip
    return palette[k % len(palette)]


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
