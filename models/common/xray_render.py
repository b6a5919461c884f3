"""Exposure of synthetic radiographs: from summed attenuation to a processed, stored image.

The drawing of a phantom is split by what each step does: ``xray_outline`` (outlines in
millimetres), ``xray_grid`` (the pixel grid and masks on it), ``xray_density`` (projected
attenuation of bone and soft tissue) and this module, where ``expose`` turns the summed line
integrals into a processed, film-like radiograph (bone bright, air dark), with quantum noise that
grows where less dose reaches the detector, edge enhancement, and a bright unexposed border
outside the collimation; then a lead side marker, integer pixels and a display window.

Everything takes an explicit ``numpy.random.Generator`` so a seed fixes the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from models.common.xray_grid import Grid


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
