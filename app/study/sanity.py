"""The last check before a series is handed out: its geometry must describe a real object.

Header values are checked where they are read (``dicom_values``); this catches what their
combination can still produce (positions that overflow when differenced, a slice step lying in
the image plane) so that no series with impossible geometry reaches a view or a model.
"""

from __future__ import annotations

import numpy as np

from app.study.dicom_values import MAX_COORD_MM, MAX_SIZE_MM, MIN_SIZE_MM
from app.study.geometry import ImageVolume

MIN_DETERMINANT = 1e-3  # the slice axis may lean (gantry tilt) but not lie in the image plane


def geometry_problem(image: ImageVolume) -> str | None:
    """Why ``image`` cannot be placed in the patient, or None when it can."""
    spacing = np.asarray(image.spacing, dtype=float)
    if (
        not np.all(np.isfinite(spacing))
        or np.any(spacing < MIN_SIZE_MM)
        or np.any(spacing > MAX_SIZE_MM)
    ):
        return f"voxel size {tuple(float(s) for s in spacing)} mm is not possible"
    origin = np.asarray(image.origin, dtype=float)
    if not np.all(np.isfinite(origin)) or np.any(np.abs(origin) > MAX_COORD_MM):
        return f"origin {tuple(float(o) for o in origin)} mm is not a possible position"
    d = np.asarray(image.direction, dtype=float)
    if not np.all(np.isfinite(d)):
        return "direction cosines are not finite"
    if np.any(np.abs(np.linalg.norm(d, axis=0) - 1.0) > 1e-3):
        return "direction cosines are not unit vectors"
    if abs(float(np.linalg.det(d))) < MIN_DETERMINANT:
        return "the image axes do not span three dimensions"
    if any(n < 1 for n in image.shape):
        return f"image shape {image.shape} is empty"
    return None
