"""Reslicing through world coordinates: orientation, flips, other grids, oblique and tilted."""

from __future__ import annotations

import numpy as np
import pytest

from app.study.geometry import ImageVolume
from app.viewstate.planes import native_plane, plane_for, reslice, sample_at


def _marker_volume(direction: np.ndarray, spacing=(2.0, 1.0, 1.0), shape=(20, 30, 40)):
    """Zeros with one bright voxel; returns the volume and the marker's world position."""
    arr = np.zeros(shape, dtype=np.int16)
    k, j, i = 13, 7, 29
    arr[k, j, i] = 1000
    vol = ImageVolume(arr, spacing, np.array([-10.0, 5.0, 30.0]), direction)
    return vol, vol.index_to_world(np.array([i, j, k], dtype=float))


def _where_on_plane(vol, marker, orientation):
    plane = plane_for(vol, orientation)
    depth = plane.snap_depth(plane.depth_of(marker))
    img, _ = reslice(vol, plane, depth)
    r, c = np.unravel_index(int(np.argmax(img)), img.shape)
    return plane, img, plane.world(r, c, depth)


@pytest.mark.parametrize("orientation", ["axial", "sagittal", "coronal"])
@pytest.mark.parametrize(
    "direction",
    [np.eye(3), np.diag([-1.0, -1.0, 1.0]), np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float)],
    ids=["LPS", "RAS-flipped", "permuted"],
)
def test_marker_lands_at_its_world_position(orientation, direction):
    vol, marker = _marker_volume(direction)
    plane, img, found = _where_on_plane(vol, marker, orientation)
    assert img.max() == 1000
    assert np.allclose(found, marker, atol=1e-6)


def test_axial_radiological_convention_patient_left_on_screen_right():
    # i runs toward patient Right here (flipped): the marker at the left edge of the array's
    # columns is on the patient's left, so it must show on the screen's right half.
    arr = np.zeros((3, 10, 10), np.int16)
    arr[1, 5, 9] = 1  # i = 9, direction -x: most patient-right ... check through world
    vol = ImageVolume(arr, (1, 1, 1), np.zeros(3), np.diag([-1.0, 1.0, 1.0]))
    marker = vol.index_to_world(np.array([9.0, 5.0, 1.0]))
    assert marker[0] < 0  # patient right (LPS x negative)
    plane = plane_for(vol, "axial")
    img, _ = reslice(vol, plane, plane.depth_of(marker))
    col = int(np.argmax(img.max(axis=0)))
    assert col < img.shape[1] / 2  # patient right on screen left
    letters = plane.edge_letters()
    assert (letters["left"], letters["right"], letters["top"], letters["bottom"]) == (
        "R",
        "L",
        "A",
        "P",
    )


def test_aspect_from_spacing():
    vol = ImageVolume(np.zeros((10, 20, 30), np.int16), (3.0, 0.5, 0.7))
    sag = plane_for(vol, "sagittal")
    assert sag.shape == (10, 20) and sag.spacing == (3.0, 0.5)
    assert sag.extent_mm == pytest.approx((19 * 0.5, 9 * 3.0))


def test_layer_on_coarser_grid_lands_where_it_belongs():
    ct = ImageVolume(np.zeros((40, 40, 40), np.int16), (1.0, 1.0, 1.0), np.zeros(3))
    # label map at 2 mm, shifted origin: voxel (5, 6, 7) covers world ~ (12..14, 10..12, 14..16)
    lab = np.zeros((20, 20, 20), np.uint8)
    lab[7, 6, 5] = 3
    labels = ImageVolume(lab, (2.0, 2.0, 2.0), np.array([2.0, 0.0, 0.0]))
    centre = labels.index_to_world(np.array([5.0, 6.0, 7.0]))
    for orientation in ("axial", "sagittal", "coronal"):
        plane = plane_for(ct, orientation)
        img, _ = reslice(labels, plane, plane.depth_of(centre), order=0)
        rows, cols = np.nonzero(img == 3)
        assert len(rows) > 0, orientation
        world = np.array(
            [plane.world(r, c, plane.depth_of(centre)) for r, c in zip(rows, cols, strict=True)]
        )
        assert np.allclose(world.mean(axis=0), centre, atol=0.6), orientation


def test_gantry_tilt_shear_general_path_matches_world():
    tilt = np.deg2rad(18.5)
    # slices stack along z but step in y as well (a sheared grid, as gantry-tilted CT)
    direction = np.array([[1, 0, 0], [0, 1, np.sin(tilt)], [0, 0, np.cos(tilt)]], float)
    direction[:, 2] /= np.linalg.norm(direction[:, 2])
    vol, marker = _marker_volume(direction, spacing=(1.0, 1.0, 1.0), shape=(30, 30, 30))
    for orientation in ("axial", "sagittal", "coronal"):
        plane, img, found = _where_on_plane(vol, marker, orientation)
        assert img.max() > 0, orientation
        assert np.linalg.norm(found - marker) < 1.5, orientation  # within a voxel


def test_outside_is_marked_invalid_and_filled():
    vol = ImageVolume(np.ones((5, 5, 5), np.int16), (1, 1, 1))
    other = ImageVolume(np.ones((5, 5, 5), np.int16), (1, 1, 1), np.array([3.0, 0, 0]))
    plane = plane_for(vol, "axial")
    img, valid = reslice(other, plane, 2.0, fill=-7)
    assert valid is not None and valid[:, 3:].all() and not valid[:, :3].any()
    assert (img[:, :3] == -7).all()
    img, valid = reslice(other, plane, 50.0, fill=-7)  # beyond the last slice
    assert (img == -7).all()


def test_native_plane_shows_image_as_stored():
    arr = np.arange(12, dtype=np.uint16).reshape(1, 3, 4)
    vol = ImageVolume(arr, (1.0, 0.2, 0.1))
    plane = native_plane(vol)
    img, valid = reslice(vol, plane, plane.depth_range[0])
    assert valid is None
    # row 0 of the view is the bottom of the screen = last stored row
    assert np.array_equal(img[::-1], arr[0])
    assert plane.spacing == (0.2, 0.1)


def test_sample_at():
    vol = ImageVolume(np.arange(8, dtype=np.int16).reshape(2, 2, 2), (1, 1, 1))
    assert sample_at(vol, vol.index_to_world(np.array([1.0, 0.0, 1.0]))) == 5.0
    assert sample_at(vol, np.array([10.0, 0, 0])) is None


def test_decimated_plane_samples_every_nth_pixel_in_the_same_millimetres():
    arr = np.arange(1 * 9 * 7, dtype=np.int16).reshape(1, 9, 7)
    vol = ImageVolume(arr, (1.0, 0.5, 0.25))
    plane = native_plane(vol)
    half = plane.decimated(2)
    assert half.shape == (5, 4) and half.spacing == (1.0, 0.5)
    assert half.decimated(1) is half
    full, _ = reslice(vol, plane, plane.depth_range[0])
    coarse, valid = reslice(vol, half, half.depth_range[0])
    assert valid is None
    assert np.array_equal(coarse, full[::2, ::2])
    # the same world point sits at the same plane millimetres in both grids
    p = half.world(2, 3, half.depth_range[0])
    assert np.allclose(plane.to_plane(p)[:2], [4, 6])


def test_fast_path_views_do_not_alias_into_writes():
    """A resliced slice may be a view of the volume: composing must never write into it."""
    from app.viewstate.compose import compose_view
    from app.viewstate.windowing import WindowLevel

    arr = np.full((4, 6, 6), 100, np.int16)
    vol = ImageVolume(arr, (1, 1, 1))
    plane = plane_for(vol, "axial")
    compose_view(vol, WindowLevel(50, 100, invert=True), plane, 1.0, [])
    assert (arr == 100).all()
    rgb = ImageVolume(np.full((1, 4, 4, 3), 10, np.uint8), (1, 1, 1))
    compose_view(rgb, WindowLevel(0, 1, invert=True), native_plane(rgb), 0.0, [])
    assert (rgb.array == 10).all()
