"""Image arrays with their place in the patient.

Patient coordinate convention (used everywhere in OsteoView):
- World coordinates are DICOM patient coordinates, **LPS** millimetres
  (+x toward patient Left, +y toward Posterior, +z toward Superior).
  NIfTI files are RAS; conversion happens only at the NIfTI boundary
  (``affine_ras`` / ``from_ras_affine``).
- Arrays are C-ordered ``(k, j, i)`` = (slice, row, column); a radiograph is
  a volume with one slice. RGB images add a trailing channel axis.
- ``spacing`` is in array order ``(dk, dj, di)`` (slice axis first, as the CLI
  prints it).
- ``direction`` is a 3x3 matrix whose *columns* are the LPS unit vectors of the
  i (column), j (row) and k (slice) axes. For DICOM: column 0 is the first
  ImageOrientationPatient triple (along a row), column 1 the second (down a
  column), column 2 the slice-stacking direction (which, for a gantry-tilted
  series, is *not* the cross product: it is the measured step between slices).
- ``origin`` is the LPS position of the centre of voxel (0, 0, 0).

So ``world = origin + direction @ (spacing_ijk * [i, j, k])``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class ImageVolume:
    """A pixel array with the geometry that places it in LPS patient space."""

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        if self.array.ndim == 2:
            self.array = self.array[np.newaxis]
        if self.array.ndim not in (3, 4):
            raise ValueError(f"expected a (k, j, i[, c]) array, got shape {self.array.shape}")
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = np.asarray(self.origin, dtype=float).reshape(3)
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)

    # ---- shape helpers -------------------------------------------------
    @property
    def is_rgb(self) -> bool:
        return self.array.ndim == 4

    @property
    def shape(self) -> tuple[int, int, int]:
        """(k, j, i) without any colour channel."""
        return tuple(self.array.shape[:3])  # type: ignore[return-value]

    @property
    def is_2d(self) -> bool:
        return self.shape[0] == 1

    @property
    def spacing_ijk(self) -> np.ndarray:
        return np.array(self.spacing[::-1], dtype=float)

    # ---- transforms ----------------------------------------------------
    def affine_lps(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous (i, j, k, 1) to LPS millimetres."""
        a = np.eye(4)
        a[:3, :3] = self.direction * self.spacing_ijk[np.newaxis, :]
        a[:3, 3] = self.origin
        return a

    def affine_ras(self) -> np.ndarray:
        """4x4 matrix mapping (i, j, k, 1) to RAS millimetres (the NIfTI convention)."""
        return LPS_TO_RAS @ self.affine_lps()

    def index_to_world(self, ijk: np.ndarray) -> np.ndarray:
        """(..., 3) voxel indices in (i, j, k) order to (..., 3) LPS mm."""
        ijk = np.asarray(ijk, dtype=float)
        a = self.affine_lps()
        return ijk @ a[:3, :3].T + a[:3, 3]

    def world_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """(..., 3) LPS mm to fractional (i, j, k) indices."""
        xyz = np.asarray(xyz, dtype=float)
        inv = np.linalg.inv(self.affine_lps())
        return xyz @ inv[:3, :3].T + inv[:3, 3]

    def with_array(self, array: np.ndarray) -> ImageVolume:
        """Same geometry, another array of the same (k, j, i) shape (a mask, a heatmap)."""
        if tuple(array.shape[:3]) != self.shape:
            raise ValueError(f"array shape {array.shape} does not match {self.shape}")
        return ImageVolume(array, self.spacing, self.origin.copy(), self.direction.copy())

    def in_plane_coarsened(self, max_side: int) -> tuple[ImageVolume, int]:
        """An empty float32 grid over this radiograph's plane, coarsened by the smallest whole
        factor f that makes it at most ``max_side`` pixels across, and f. Cell (j, i) is the
        mean position of image pixels [f j, f j + f) x [f i, f i + f), so a map stored on it
        (a CAM, SHAP values) lies where the pixels it summarises lie."""
        rows, cols = self.shape[1:3]
        f = max(1, -(-max(rows, cols) // max_side))
        shape = (1, -(-rows // f), -(-cols // f))
        centre = (f - 1) / 2.0
        origin = self.index_to_world(np.array([centre, centre, 0.0]))
        dk, dj, di = self.spacing
        grid = ImageVolume(
            np.zeros(shape, np.float32), (dk, dj * f, di * f), origin, self.direction.copy()
        )
        return grid, f

    @classmethod
    def from_ras_affine(cls, array_kji: np.ndarray, affine_ras: np.ndarray) -> ImageVolume:
        """Build from a (k, j, i) array and a NIfTI-style RAS affine over (i, j, k)."""
        lps = LPS_TO_RAS @ np.asarray(affine_ras, dtype=float)
        m = lps[:3, :3]
        spacing_ijk = np.linalg.norm(m, axis=0)
        spacing_ijk[spacing_ijk == 0] = 1.0
        direction = m / spacing_ijk[np.newaxis, :]
        return cls(array_kji, tuple(spacing_ijk[::-1]), lps[:3, 3], direction)

    def orientation_letters(self) -> tuple[str, str, str]:
        """Patient direction toward which +i, +j, +k point, e.g. ('L', 'P', 'S')."""
        return tuple(direction_letter(self.direction[:, n]) for n in range(3))  # type: ignore[return-value]


def direction_letter(vec: np.ndarray) -> str:
    """The dominant LPS letter of a direction (R/L, A/P, I/S)."""
    axis = int(np.argmax(np.abs(vec)))
    positive = vec[axis] >= 0
    return ("L", "P", "S")[axis] if positive else ("R", "A", "I")[axis]
