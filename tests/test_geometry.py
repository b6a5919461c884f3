"""ImageVolume geometry: index <-> LPS world, RAS affines, orientation letters."""

import numpy as np
import pytest

from app.study.geometry import ImageVolume, direction_letter
from app.study.nifti import read_nifti, write_nifti


def oblique_volume() -> ImageVolume:
    # A gantry-tilted stack: the slice step is not perpendicular to the rows/columns.
    tilt = np.deg2rad(18.5)
    direction = np.array(
        [
            [1.0, 0.0, 0.0],
            [0.0, np.cos(tilt), np.sin(tilt)],
            [0.0, -np.sin(tilt), np.cos(tilt)],
        ]
    )
    arr = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    return ImageVolume(arr, (2.5, 0.8, 0.7), np.array([-10.0, 20.0, 30.0]), direction)


def test_index_to_world_uses_spacing_direction_and_origin():
    vol = oblique_volume()
    i, j, k = 3.0, 2.0, 1.0
    expected = (
        vol.origin
        + vol.direction[:, 0] * i * 0.7
        + vol.direction[:, 1] * j * 0.8
        + vol.direction[:, 2] * k * 2.5
    )
    np.testing.assert_allclose(vol.index_to_world([i, j, k]), expected)
    np.testing.assert_allclose(vol.world_to_index(expected), [i, j, k], atol=1e-9)


def test_ras_affine_flips_x_and_y_only():
    vol = oblique_volume()
    lps = vol.index_to_world([1, 2, 3])
    ras = vol.affine_ras() @ np.array([1, 2, 3, 1.0])
    np.testing.assert_allclose(ras[:3], [-lps[0], -lps[1], lps[2]])


def test_nifti_round_trip_keeps_world_positions(tmp_path):
    vol = oblique_volume()
    path = write_nifti(vol, tmp_path / "v.nii.gz")
    back = read_nifti(path)
    assert back.shape == vol.shape
    np.testing.assert_array_equal(back.array, vol.array)
    for ijk in ([0, 0, 0], [5, 4, 3], [2, 1, 3]):
        np.testing.assert_allclose(back.index_to_world(ijk), vol.index_to_world(ijk), atol=1e-4)


def test_two_d_array_becomes_one_slice_and_with_array_checks_shape():
    vol = ImageVolume(np.zeros((7, 9)), (1.0, 0.2, 0.3))
    assert vol.shape == (1, 7, 9) and vol.is_2d
    with pytest.raises(ValueError):
        vol.with_array(np.zeros((1, 9, 7)))


def test_orientation_letters():
    axial = ImageVolume(np.zeros((2, 2, 2)))
    assert axial.orientation_letters() == ("L", "P", "S")
    assert direction_letter(np.array([-0.9, 0.1, 0.2])) == "R"
    assert direction_letter(np.array([0.0, -1.0, 0.0])) == "A"
