"""Shared radiograph-drawing helpers: geometry in millimetres, projected density, exposure."""

from __future__ import annotations

import numpy as np
import pytest

from models.common import xray_density as xd
from models.common import xray_grid as xg
from models.common import xray_outline as xo
from models.common import xray_render as xr

GRID = xg.Grid(200, 300, 0.5, 0.5)  # 100 x 150 mm


def test_polygon_area_is_in_millimetres_whatever_the_pixel_size() -> None:
    square = np.array([[20, 20], [60, 20], [60, 50], [20, 50]], float)  # 40 x 30 mm
    for grid in (GRID, xg.Grid(100, 150, 1.0, 1.0)):
        cover = xg.polygon_coverage(grid, square)
        assert cover.sum() * grid.row_mm * grid.col_mm == pytest.approx(1200, rel=0.03)
    circle = xo.ellipse_outline((75, 50), 20, 20, n=128)
    area = xg.polygon_mask(GRID, circle).sum() * 0.25
    assert area == pytest.approx(np.pi * 400, rel=0.03)


def test_projected_thickness_is_the_chord_through_a_round_body() -> None:
    circle = xg.polygon_mask(GRID, xo.ellipse_outline((75, 50), 20, 20, n=128))
    t = xd.projected_thickness(circle, GRID, 40.0)
    assert t.max() == pytest.approx(40.0, rel=0.02)
    assert t[~circle].max() == 0
    centre_row = t[100]
    assert (
        centre_row[150] > centre_row[150 + 30] > centre_row[150 + 38] > 0
    )  # falls off to the edge


def test_cortical_shell_makes_a_bright_rim() -> None:
    rng = np.random.default_rng(0)
    disc = xg.polygon_mask(GRID, xo.ellipse_outline((75, 50), 20, 20, n=128))
    mu = xd.bone_attenuation(disc, GRID, 30.0, 2.0, rng, trabecular=0.0)
    row = mu[100, 150:]  # centre to edge; the edge is at r = 20 mm = 40 px
    rim = row[34:40].max()  # the outer 3 mm: rays run along the shell
    inside = row[26:30].mean()  # 5-7 mm in: mostly cancellous bone
    assert rim > 1.1 * inside


def test_smooth_noise_is_normalised_and_seeded() -> None:
    a = xd.smooth_noise(np.random.default_rng(1), (123, 77), 12.0)
    b = xd.smooth_noise(np.random.default_rng(1), (123, 77), 12.0)
    assert a.shape == (123, 77) and np.array_equal(a, b)
    assert abs(a.mean()) < 1e-4 and a.std() == pytest.approx(1.0, rel=1e-3)


def test_expose_makes_bone_bright_air_dark_and_collimation_white() -> None:
    rng = np.random.default_rng(2)
    mu = np.zeros(GRID.shape, np.float32)
    mu[:, 100:200] = 1.0  # soft tissue band
    mu[80:120, 140:160] += 1.0  # bone
    img, field = xr.expose(mu, GRID, rng)
    assert img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    inside = field.copy()
    assert img[90:110, 145:155].mean() > img[20:60, 110:130].mean() > img[20:60, 20:60].mean()
    if (~inside).any():
        assert img[~inside].mean() > 0.9
    pixels = xr.to_uint(img, 12)
    assert pixels.dtype == np.uint16 and pixels.max() <= 4095
    vol = xr.radiograph_volume(pixels, GRID)
    assert vol.shape == (1, 200, 300) and vol.spacing == (1.0, 0.5, 0.5)
