"""NIfTI <-> ImageVolume. NIfTI affines are RAS over (i, j, k); ImageVolume is LPS over (k, j, i).

A file whose affine cannot place the image (all zero, singular, not finite) is refused with the
reason: drawing it at a made-up position would mislead the reader. The sform is used when it is
valid, else the qform (the NIfTI standard allows either).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from app.atomic import atomic_path
from app.study.geometry import ImageVolume

MIN_AXIS_MM = 1e-6  # a voxel edge shorter than this is a broken header, not a scanner's choice
MIN_ABS_DETERMINANT = 1e-12


def affine_problem(affine: np.ndarray | None) -> str | None:
    """Why a 4x4 voxel-to-world affine cannot place an image, or None when it can."""
    if affine is None:
        return "it has no affine"
    a = np.asarray(affine, dtype=float)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        return "its affine is not a finite 4x4 matrix"
    m = a[:3, :3]
    if not np.any(m):
        return "its affine is all zero"
    if (
        np.any(np.linalg.norm(m, axis=0) < MIN_AXIS_MM)
        or abs(np.linalg.det(m)) < MIN_ABS_DETERMINANT
    ):
        return "its affine is singular (the voxel axes do not span three dimensions)"
    return None


def _usable_affine(img: nib.Nifti1Image | nib.Nifti2Image, path: Path) -> np.ndarray:
    header = img.header
    candidates = []
    if hasattr(header, "get_sform"):
        sform, s_code = header.get_sform(coded=True)
        qform, q_code = header.get_qform(coded=True)
        if s_code:
            candidates.append(sform)
        if q_code:
            candidates.append(qform)
    candidates.append(img.affine)
    reasons = []
    for affine in candidates:
        problem = affine_problem(affine)
        if problem is None:
            return np.asarray(affine, dtype=float)
        reasons.append(problem)
    raise ValueError(f"{path}: {reasons[0]}; the file does not say where the image lies")


def read_nifti(path: Path) -> ImageVolume:
    img = nib.load(str(path))
    affine = _usable_affine(img, Path(path))
    data = np.asanyarray(img.dataobj)
    if data.ndim == 2:
        data = data[:, :, np.newaxis]
    if data.ndim > 3:
        data = data[..., 0] if data.shape[3] == 1 else data
    if data.ndim != 3:
        raise ValueError(f"{path}: {data.ndim}-D NIfTI is not supported (expected a 3-D volume)")
    return ImageVolume.from_ras_affine(np.ascontiguousarray(data.transpose(2, 1, 0)), affine)


def write_nifti(volume: ImageVolume, path: Path, dtype: np.dtype | None = None) -> Path:
    """Write atomically (temporary name, then rename) so an interrupted write leaves no half file.
    Raises ValueError naming ``path`` when the volume's geometry has no valid affine."""
    path = Path(path)
    affine = volume.affine_ras()
    problem = affine_problem(affine)
    if problem is not None:
        raise ValueError(f"{path}: cannot write NIfTI: the image's geometry is broken ({problem})")
    data = volume.array.transpose(2, 1, 0)
    if dtype is not None:
        data = data.astype(dtype)
    try:
        img = nib.Nifti1Image(np.asarray(data), affine)
        img.header.set_xyzt_units("mm")
        img.set_qform(affine, code=1)
        img.set_sform(affine, code=1)
    except (nib.spatialimages.HeaderDataError, np.linalg.LinAlgError) as exc:
        raise ValueError(f"{path}: cannot write NIfTI: {exc}") from exc
    with atomic_path(path) as tmp:
        nib.save(img, tmp)
    return path
