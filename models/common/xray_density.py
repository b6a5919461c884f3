"""Projected attenuation of synthetic bodies: what a ray accumulates crossing them.

Bones are drawn as the path length of a ray through a convex body seen in outline
(``projected_thickness``) times an attenuation coefficient, with a denser cortical shell around
a cancellous core; soft tissue the same with its own coefficient. ``xray_render.expose`` turns
the sum of these line integrals into a radiograph.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from models.common.xray_grid import Grid, bbox, erode_mm

# Linear attenuation per mm at a typical diagnostic effective energy (about 60 keV). Only the
# ratios matter for the look; they are close to the published values for these tissues.
MU_SOFT = 0.021
MU_FAT = 0.018
MU_CANCELLOUS = 0.028
MU_CORTICAL = 0.075


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
    box = bbox(mask, pad=2)
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
    box = bbox(mask, pad=2)
    if box is None:
        return out
    sub = mask[box]  # work on the bone's bounding box only: phantoms draw dozens of bones
    outer = projected_thickness(sub, grid, depth_mm)
    inner = projected_thickness(
        erode_mm(sub, grid, cortex_mm), grid, max(depth_mm - 2 * cortex_mm, 0.1)
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
