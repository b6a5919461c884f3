"""NIfTI <-> ImageVolume. NIfTI affines are RAS over (i, j, k); ImageVolume is LPS over (k, j, i)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from app.study.geometry import ImageVolume


def read_nifti(path: Path) -> ImageVolume:
    img = nib.load(str(path))
    data = np.asanyarray(img.dataobj)
    if data.ndim == 2:
        data = data[:, :, np.newaxis]
    if data.ndim > 3:
        data = data[..., 0] if data.shape[3] == 1 else data
    if data.ndim != 3:
        raise ValueError(f"{path}: {data.ndim}-D NIfTI is not supported (expected a 3-D volume)")
    affine = img.affine if img.affine is not None else np.eye(4)
    return ImageVolume.from_ras_affine(np.ascontiguousarray(data.transpose(2, 1, 0)), affine)


def write_nifti(volume: ImageVolume, path: Path, dtype: np.dtype | None = None) -> Path:
    """Write atomically (temporary name, then rename) so an interrupted write leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = volume.array.transpose(2, 1, 0)
    if dtype is not None:
        data = data.astype(dtype)
    img = nib.Nifti1Image(np.asarray(data), volume.affine_ras())
    img.header.set_xyzt_units("mm")
    img.set_qform(volume.affine_ras(), code=1)
    img.set_sform(volume.affine_ras(), code=1)
    suffix = ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        nib.save(img, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
