"""Plain images (PNG/JPEG/TIFF) and NIfTI files -> Series.

Plain images have no patient geometry: identity direction, origin 0, 1 mm pixels (warned).
Grayscale becomes (1, rows, cols) uint8 (8-bit) or float32 (deeper); colour stays
(1, rows, cols, 3) uint8 with kind "image", unless its channels are equal (then grayscale).
NIfTI volumes are placed in the DICOM patient frame by ``app.study.nifti`` (RAS -> LPS).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from app.study.geometry import ImageVolume
from app.study.model import Series
from app.study.nifti import read_nifti

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
LABELMAP_MAX_LABELS = 64


def is_nifti(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def is_plain_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def uid_for(path: Path, what: str) -> str:
    """A stable UID derived from the absolute path (same file, same UID on every load)."""
    return generate_uid(entropy_srcs=[what, str(Path(path).resolve())])


def _read_pixels(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LA"):
                return np.asarray(img.convert("RGB"))
            if mode == "1":
                return np.asarray(img.convert("L"))
            return np.asarray(img)
    except (UnidentifiedImageError, OSError) as exc:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            try:
                return np.asarray(tifffile.imread(path))
            except Exception as exc2:  # noqa: BLE001 - any tifffile failure is a reason
                raise ValueError(f"not a readable TIFF image ({exc2})") from exc2
        raise ValueError(f"not a readable image ({exc})") from exc


def load_plain_image(path: Path) -> Series:
    path = Path(path)
    arr = _read_pixels(path)
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.ndim == 3 and arr.shape[2] == 3:
        if arr.dtype != np.uint8:
            top = float(arr.max()) or 1.0
            arr = np.clip(np.rint(arr.astype(np.float32) * (255.0 / top)), 0, 255).astype(np.uint8)
        if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            arr = np.ascontiguousarray(arr[..., 0])
    elif arr.ndim != 2:
        raise ValueError(f"unsupported image layout {arr.shape}")
    if arr.ndim == 2 and arr.dtype != np.uint8:
        arr = arr.astype(np.float32)
    rgb = arr.ndim == 3
    image = ImageVolume(arr[np.newaxis], (1.0, 1.0, 1.0))
    return Series(
        series_uid=uid_for(path, "series"),
        modality="OT",
        description=path.name,
        image=image,
        kind="image" if rgb else "projection",
        warnings=["plain image without pixel spacing: 1 mm pixels assumed"],
        source_paths=[str(path)],
        meta={"format": path.suffix.lower().lstrip(".")},
    )


def _looks_like_labels(array: np.ndarray) -> bool:
    sample = array.reshape(-1)[:: max(1, array.size // 2_000_000)]
    if sample.size == 0:
        return False
    if array.dtype.kind == "f" and not np.all(np.mod(sample, 1) == 0):
        return False
    if sample.min() < 0:
        return False
    return len(np.unique(sample)) <= LABELMAP_MAX_LABELS


def load_nifti_series(path: Path, kind: str | None = None) -> Series:
    """A NIfTI file as a volume or label map (``kind`` forces either)."""
    path = Path(path)
    try:
        image = read_nifti(path)
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg.removeprefix(f"{path}: ")) from None
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for bad files
        raise ValueError(f"not a readable NIfTI file ({type(exc).__name__}: {exc})") from exc
    array = image.array
    if kind is None:
        kind = "labelmap" if _looks_like_labels(array) else "volume"
    if kind == "labelmap":
        top = float(array.max()) if array.size else 0.0
        dtype = np.uint8 if top < 256 else np.uint16 if top < 65536 else np.int32
        if array.dtype != dtype:
            array = np.rint(array).astype(dtype) if array.dtype.kind == "f" else array.astype(dtype)
    elif array.dtype == np.float64:
        array = array.astype(np.float32)
    elif array.dtype.kind in "iu" and array.itemsize > 2 and array.size:
        if -32768 <= int(array.min()) and int(array.max()) <= 32767:
            array = array.astype(np.int16)  # half the memory, same values
    image = image.with_array(array)
    meta: dict = {"format": "nifti"}
    modality = "SEG" if kind == "labelmap" else "OT"
    if kind == "volume" and array.size and float(array.min()) <= -900 and array.dtype.kind != "u":
        modality = "CT"  # air at about -1000: Hounsfield units
        meta["modality_guessed"] = True
    return Series(
        series_uid=uid_for(path, "series"),
        modality=modality,
        description=path.name,
        image=image,
        kind=kind,  # type: ignore[arg-type]
        source_paths=[str(path)],
        meta=meta,
    )
