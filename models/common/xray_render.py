"""Drawing helpers for synthetic radiographs (and other 2-D phantoms).

A phantom is described in millimetres on a ``Grid`` (x to the right along columns, y downward
along rows, origin at the centre of pixel (0, 0)), so the anatomy does not depend on the pixel
size. Bones are drawn as *projected attenuation*: the path length of a ray through a convex body
seen in outline (``projected_thickness``) times an attenuation coefficient, with a denser
cortical shell around a cancellous core. ``expose`` turns the summed line integrals into a
processed, film-like radiograph (bone bright, air dark), with quantum noise that grows where
less dose reaches the detector, edge enhancement, and a bright unexposed border outside the
collimation.

Everything takes an explicit ``numpy.random.Generator`` so a seed fixes the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

# Linear attenuation per mm at a typical diagnostic effective energy (about 60 keV). Only the
# ratios matter for the look; they are close to the published values for these tissues.
MU_SOFT = 0.021
MU_FAT = 0.018
MU_CANCELLOUS = 0.028
MU_CORTICAL = 0.075


@dataclass(frozen=True)
class Grid:
    """Pixel grid of a 2-D image: ``rows`` x ``cols`` pixels of ``row_mm`` x ``col_mm``."""

    rows: int
    cols: int
    row_mm: float
    col_mm: float

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def width_mm(self) -> float:
        return self.cols * self.col_mm

    @property
    def height_mm(self) -> float:
        return self.rows * self.row_mm

    def to_px(self, pts_mm: np.ndarray) -> np.ndarray:
        """(N, 2) (x, y) mm -> (N, 2) (column, row) fractional pixel indices."""
        pts = np.asarray(pts_mm, dtype=float).reshape(-1, 2)
        return np.stack([pts[:, 0] / self.col_mm, pts[:, 1] / self.row_mm], axis=1)

    def mm_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """(X, Y) mm coordinates of every pixel centre, each of shape (rows, cols)."""
        x = np.arange(self.cols, dtype=np.float32) * self.col_mm
        y = np.arange(self.rows, dtype=np.float32) * self.row_mm
        return np.meshgrid(x, y)

    def mm_to_px_len(self, length_mm: float) -> float:
        return length_mm / min(self.row_mm, self.col_mm)


# ---- geometry of outlines ----------------------------------------------------------------


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


# ---- rasterising -----------------------------------------------------------------------


def polygon_mask(grid: Grid, outline_mm: np.ndarray, supersample: int = 2) -> np.ndarray:
    """Boolean mask of a closed outline (mm), drawn with PIL at ``supersample`` x resolution."""
    return polygon_coverage(grid, outline_mm, supersample) >= 0.5


def polygon_coverage(grid: Grid, outline_mm: np.ndarray, supersample: int = 2) -> np.ndarray:
    """Fraction (0..1) of each pixel covered by the closed outline: anti-aliased edges."""
    ss = supersample
    out = np.zeros(grid.shape, dtype=np.float32)
    px = grid.to_px(outline_mm) + 0.5  # PIL puts pixel centres at +0.5
    c0, r0 = np.maximum(np.floor(px.min(axis=0)).astype(int) - 1, 0)
    c1 = min(int(np.ceil(px[:, 0].max())) + 1, grid.cols)
    r1 = min(int(np.ceil(px[:, 1].max())) + 1, grid.rows)
    if c1 <= c0 or r1 <= r0:
        return out
    # Rasterise only the outline's bounding box: phantoms draw dozens of small shapes.
    img = Image.new("L", ((c1 - c0) * ss, (r1 - r0) * ss), 0)
    local = (px - [c0, r0]) * ss
    ImageDraw.Draw(img).polygon([tuple(p) for p in local], fill=255)
    a = np.asarray(img, dtype=np.float32) / 255.0
    if ss > 1:
        a = a.reshape(r1 - r0, ss, c1 - c0, ss).mean(axis=(1, 3))
    out[r0:r1, c0:c1] = a
    return out


def polyline_mask(grid: Grid, pts_mm: np.ndarray, width_mm: float) -> np.ndarray:
    """Boolean mask of a polyline ``width_mm`` wide."""
    img = Image.new("L", (grid.cols, grid.rows), 0)
    px = grid.to_px(pts_mm) + 0.5
    w = max(1, int(round(grid.mm_to_px_len(width_mm))))
    ImageDraw.Draw(img).line([tuple(p) for p in px], fill=255, width=w, joint="curve")
    return np.asarray(img) > 0


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


# ---- projected density --------------------------------------------------------------------


def projected_thickness(
    mask: np.ndarray, grid: Grid, depth_mm: float, radius_mm: float | None = None
) -> np.ndarray:
    """Path length (mm) of a ray through a convex body whose outline is ``mask``.

    The body is taken as locally round in cross-section: a pixel at distance d from the edge of a
    region whose inscribed radius is R gets depth * sqrt(1 - (1 - d/R)^2), so the thickness is
    ``depth_mm`` along the middle and falls to 0 at the outline (an ellipse's projection).
    ``radius_mm`` fixes R (for a body larger than the image, whose middle is not in view).
    """
    out = np.zeros(mask.shape, dtype=np.float32)
    box = _bbox(mask, pad=2)
    if box is None:
        return out
    sub = mask[box]
    d = ndimage.distance_transform_edt(sub, sampling=(grid.row_mm, grid.col_mm)).astype(np.float32)
    r = float(radius_mm) if radius_mm else float(d.max())
    if r <= 0:
        return out
    u = np.clip(d / r, 0, 1)
    out[box] = depth_mm * np.sqrt(np.clip(1 - (1 - u) ** 2, 0, 1))
    return out


def bone_attenuation(
    mask: np.ndarray,
    grid: Grid,
    depth_mm: float,
    cortex_mm: float,
    rng: np.random.Generator,
    trabecular: float = 0.1,
    density: float = 1.0,
    coverage: np.ndarray | None = None,
) -> np.ndarray:
    """Line integral of attenuation through a bone with a cortical shell and a cancellous core.

    Seen in projection the shell makes the bright rim a radiologist expects (the tangential rays
    cross much more cortex); ``trabecular`` modulates the core with a coarse, oriented-looking
    texture. ``coverage`` (0..1 anti-aliased mask) softens the outer edge.
    """
    out = np.zeros(mask.shape, dtype=np.float32)
    box = _bbox(mask, pad=2)
    if box is None:
        return out
    sub = mask[box]  # work on the bone's bounding box only: phantoms draw dozens of bones
    outer = projected_thickness(sub, grid, depth_mm)
    inner = projected_thickness(
        _erode_mm(sub, grid, cortex_mm), grid, max(depth_mm - 2 * cortex_mm, 0.1)
    )
    texture = 1.0 + trabecular * trabecular_texture(rng, sub.shape, grid)
    mu = MU_CORTICAL * (outer - inner) + MU_CANCELLOUS * inner * texture
    if coverage is not None:
        mu = mu * np.clip(coverage[box] * 1.5, 0, 1)
    out[box] = density * mu
    return out


def soft_tissue_attenuation(
    mask: np.ndarray,
    grid: Grid,
    depth_mm: float,
    mu: float = MU_SOFT,
    radius_mm: float | None = None,
) -> np.ndarray:
    return (mu * projected_thickness(mask, grid, depth_mm, radius_mm)).astype(np.float32)


def trabecular_texture(rng: np.random.Generator, shape: tuple[int, int], grid: Grid) -> np.ndarray:
    """A zero-mean mesh of thin bright struts around darker marrow spaces (about 1-3 mm cells).

    The zero crossings of band-passed noise form closed, curving cells; keeping only the pixels
    near them gives the lattice look of trabecular bone rather than plain grain.
    """
    n = rng.standard_normal(shape).astype(np.float32)
    s1 = max(grid.mm_to_px_len(0.7), 0.8)
    s2 = max(grid.mm_to_px_len(2.0), 1.8)
    band = ndimage.gaussian_filter(n, s1) - ndimage.gaussian_filter(n, s2)
    band /= float(band.std()) or 1.0
    struts = np.exp(-((band / 0.45) ** 2))
    return (struts - struts.mean()) / (struts.std() or 1.0) / 2.5


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Smooth random field with zero mean and unit standard deviation.

    Wide fields are drawn on a coarse grid and interpolated up: the same look, far less work.
    """
    step = max(1, int(sigma_px // 3))
    small = tuple(shape) if step == 1 else (-(-shape[0] // step) + 1, -(-shape[1] // step) + 1)
    n = ndimage.gaussian_filter(rng.standard_normal(small).astype(np.float32), sigma_px / step)
    if step > 1:
        rr = np.arange(shape[0], dtype=np.float32) / step
        cc = np.arange(shape[1], dtype=np.float32) / step
        n = ndimage.map_coordinates(n, np.meshgrid(rr, cc, indexing="ij"), order=1)
    return (n - n.mean()) / (n.std() or 1.0)


def blur_local(arr: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of a mostly-zero image, computed only around its non-zero part."""
    box = _bbox(arr != 0, pad=int(np.ceil(3 * sigma_px)) + 1)
    out = np.zeros(arr.shape, dtype=np.float32)
    if box is not None:
        out[box] = ndimage.gaussian_filter(arr[box].astype(np.float32), sigma_px)
    return out


def _erode_mm(mask: np.ndarray, grid: Grid, mm: float) -> np.ndarray:
    box = _bbox(mask, pad=2)
    out = np.zeros_like(mask, dtype=bool)
    if box is None:
        return out
    d = ndimage.distance_transform_edt(mask[box], sampling=(grid.row_mm, grid.col_mm))
    out[box] = d > mm
    return out


def dilate_mm(mask: np.ndarray, grid: Grid, mm: float) -> np.ndarray:
    """Grow a mask by ``mm`` millimetres (Euclidean)."""
    if mm <= 0:
        return mask.copy()
    d = ndimage.distance_transform_edt(~mask, sampling=(grid.row_mm, grid.col_mm))
    return d <= mm


def _bbox(mask: np.ndarray, pad: int = 0) -> tuple[slice, slice] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, mask.shape[0])
    c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, mask.shape[1])
    return (slice(r0, r1), slice(c0, c1))


def shift_mm(arr: np.ndarray, grid: Grid, dx_mm: float, dy_mm: float, order: int = 1) -> np.ndarray:
    """Translate an image by (dx, dy) mm (fragment displacement); zero fill."""
    return ndimage.shift(
        arr, (dy_mm / grid.row_mm, dx_mm / grid.col_mm), order=order, mode="constant", cval=0
    )


# ---- exposure and film look ----------------------------------------------------------------


@dataclass
class Exposure:
    """How line integrals become a processed radiograph (values in 0..1, bone bright)."""

    floor_mu: float = 0.0  # attenuation shown as black (thick bodies: subtract the soft tissue)
    white_level: float = 1.08  # mu mapped to white, as a multiple of the field's 99.5th percentile
    gamma: float = 1.0  # tone curve: < 1 lifts soft tissue, > 1 darkens it
    noise: float = 0.012  # quantum noise in the log domain where nothing attenuates
    blur_mm: float = 0.15  # detector unsharpness
    edge_enhance: float = 0.6  # unsharp-mask strength (processed radiographs look crisp)
    edge_mm: float = 2.5
    heel_effect: float = 0.06  # intensity falloff across the field (anode heel)
    collimate: bool = True
    bits: int = 12


def expose(
    mu: np.ndarray, grid: Grid, rng: np.random.Generator, exposure: Exposure | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Turn summed attenuation into a radiograph.

    Returns (image 0..1 float32, field mask: True inside the collimated field).
    """
    e = exposure or Exposure()
    m = mu
    # Quantum noise: the detector sees exp(-mu) photons, so log-domain noise grows as exp(mu/2);
    # automatic exposure control sets the dose for the typical (median) path through the body.
    ref = float(np.median(m))
    boost = np.exp(np.clip(m - ref, -4, 4) / 2)
    m = m + e.noise * boost * rng.standard_normal(m.shape).astype(np.float32)
    if e.blur_mm > 0:
        m = ndimage.gaussian_filter(m, (e.blur_mm / grid.row_mm, e.blur_mm / grid.col_mm))
    # Processed radiographs are close to linear in attenuation (log of the detector signal),
    # scaled so the densest bone in the field is near white.
    m = m - e.floor_mu
    top = float(np.percentile(m, 99.5)) * e.white_level or 1.0
    img = np.clip(m / top, 0, None) ** e.gamma
    if e.edge_enhance > 0:
        s = (e.edge_mm / grid.row_mm, e.edge_mm / grid.col_mm)
        img = img + e.edge_enhance * (img - ndimage.gaussian_filter(img, s))
    # Anode heel effect: a gentle brightness ramp across the field.
    img = img * (1.0 + e.heel_effect * np.linspace(-1, 1, grid.cols, dtype=np.float32)[None, :])
    # Fine film/detector grain independent of dose.
    img = img + 0.006 * rng.standard_normal(img.shape).astype(np.float32)
    field = np.ones(grid.shape, dtype=bool)
    if e.collimate:
        field = collimation_field(grid, rng)
        img = np.where(field, img, 0.93 + 0.02 * img)
    return np.clip(img, 0, 1).astype(np.float32), field


def collimation_field(grid: Grid, rng: np.random.Generator, max_margin: float = 0.06) -> np.ndarray:
    """A slightly rotated rectangle covering most of the image (the collimator's shadow)."""
    X, Y = grid.mm_coords()
    cx, cy = grid.width_mm / 2, grid.height_mm / 2
    a = np.deg2rad(rng.uniform(-2, 2))
    xr = (X - cx) * np.cos(a) + (Y - cy) * np.sin(a)
    yr = -(X - cx) * np.sin(a) + (Y - cy) * np.cos(a)
    m = rng.uniform(0.0, max_margin, size=4)
    hw, hh = grid.width_mm / 2, grid.height_mm / 2
    return (
        (xr > -hw * (1 - m[0]))
        & (xr < hw * (1 - m[1]))
        & (yr > -hh * (1 - m[2]))
        & (yr < hh * (1 - m[3]))
    )


def draw_marker(img: np.ndarray, grid: Grid, text: str, xy_mm: tuple[float, float], size_mm=8.0):
    """Burn a lead side marker ('L', 'R', 'AP'...) into the image (bright, it blocks X-rays)."""
    h = max(8, int(round(grid.mm_to_px_len(size_mm))))
    try:
        font = ImageFont.load_default(size=h)
    except TypeError:  # Pillow < 10.1 has no sized default font
        font = ImageFont.load_default()
    layer = Image.new("L", (grid.cols, grid.rows), 0)
    x, y = grid.to_px([xy_mm])[0]
    ImageDraw.Draw(layer).text((float(x), float(y)), text, fill=255, font=font)
    a = np.asarray(layer, dtype=np.float32) / 255.0
    return np.maximum(img, 0.97 * a)


def to_uint(img01: np.ndarray, bits: int = 12) -> np.ndarray:
    """0..1 float -> unsigned integers using ``bits`` bits (uint16 storage)."""
    top = (1 << bits) - 1
    return np.round(np.clip(img01, 0, 1) * top).astype(np.uint16)


def display_window(pixels: np.ndarray, field: np.ndarray | None = None) -> tuple[float, float]:
    """(center, width) covering the 0.5-99.5 percentile of the exposed field."""
    vals = pixels[field] if field is not None and field.any() else pixels
    lo, hi = np.percentile(vals, [0.5, 99.5])
    return float((lo + hi) / 2), float(max(hi - lo, 1.0))


def radiograph_volume(array2d: np.ndarray, grid: Grid):
    """The ``ImageVolume`` the loader builds for a radiograph of this grid (for truth maps)."""
    from app.study.geometry import ImageVolume

    return ImageVolume(
        np.asarray(array2d)[np.newaxis],
        spacing=(1.0, grid.row_mm, grid.col_mm),
        origin=np.zeros(3),
        direction=np.eye(3),
    )
