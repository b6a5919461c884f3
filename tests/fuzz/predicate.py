"""What "impossible geometry" means for the fuzz counts, written independently of the loader.

A loaded series violates the predicate when a viewer or a model could not use its geometry or
its display window as a real object: a non-finite or non-positive voxel size, a non-finite
origin or affine, direction columns that are not unit vectors or do not span 3-D, a voxel-to-
world map whose far corner is not finite, or a display window that is not finite or has no
width (at float precision). A violation is *silent* when the series carries no warning at all.
"""

from __future__ import annotations

import numpy as np


def geometry_violations(series) -> list[str]:
    image = series.image
    problems: list[str] = []
    spacing = np.asarray(image.spacing, dtype=float)
    if spacing.shape != (3,) or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        problems.append(f"spacing {spacing.tolist()}")
    origin = np.asarray(image.origin, dtype=float)
    if not np.all(np.isfinite(origin)):
        problems.append(f"origin {origin.tolist()}")
    d = np.asarray(image.direction, dtype=float)
    with np.errstate(all="ignore"):
        if not np.all(np.isfinite(d)):
            problems.append("direction not finite")
        else:
            norms = np.linalg.norm(d, axis=0)
            if np.any(np.abs(norms - 1) > 1e-2):
                problems.append(f"direction column norms {norms.round(4).tolist()}")
            if abs(np.linalg.det(d)) < 1e-3:
                problems.append("direction is degenerate")
        corner = np.array(image.shape[::-1], dtype=float) - 1
        far = image.index_to_world(corner)
        if not np.all(np.isfinite(far)) or not np.all(np.isfinite(image.affine_lps())):
            problems.append("voxel-to-world map not finite")
    if any(n < 1 for n in image.shape):
        problems.append(f"empty shape {image.shape}")
    if series.kind != "labelmap" and not image.is_rgb:
        center, width = series.default_window()
        lo, hi = np.float64(center) - width / 2, np.float64(center) + width / 2
        if not (np.isfinite(center) and np.isfinite(width) and width > 0 and hi > lo):
            problems.append(f"display window ({center}, {width})")
    return problems
