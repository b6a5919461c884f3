"""Radiograph -> femur network inputs: the one preprocessing that training and the adapter share.

Numpy (+ scipy through ``sides``) only, so the adapter can import it. Training reads every image
through ``app.study.load`` and then this module, exactly as the adapter does after the loader, so
the two cannot drift: a Series becomes bone-bright 2-D pixels (RGB -> channel mean, MONOCHROME1
inverted), and those pixels become one square, equalised, centred crop per femur
(``sides.crop_sides``). ``tests/models/test_femur_preprocess.py`` checks that a phantom's
training inputs equal the adapter's for the DICOM written from it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.study.model import Series
from models.femur_ao.sides import Layout, SideCrop, crop_sides

# Where the loader may keep the DICOM laterality (ImageLaterality or Laterality).
LATERALITY_KEYS = ("laterality", "image_laterality")


def bone_bright(pixels: np.ndarray, invert: bool = False) -> np.ndarray:
    """2-D float32 pixels with bone bright.

    ``pixels`` is (rows, cols) or (rows, cols, channels); colour becomes the mean of the first
    three channels. ``invert`` is True for MONOCHROME1, whose stored values make bone dark.
    """
    arr = np.asarray(pixels, np.float32)
    if arr.ndim == 3:
        arr = arr[..., :3].mean(-1)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D radiograph, got pixels of shape {arr.shape}")
    if invert:
        arr = float(arr.max()) - arr
    return arr


def laterality_of(series: Series) -> str:
    """The DICOM laterality the loader kept ('' when none): R, L or B decide the layout."""
    for key in LATERALITY_KEYS:
        value = str(series.meta.get(key, "") or "")
        if value:
            return value
    return ""


def series_pixels(series: Series) -> tuple[np.ndarray, str]:
    """A one-frame radiograph series -> (bone-bright 2-D pixels, laterality)."""
    return bone_bright(series.image.array[0], bool(series.invert)), laterality_of(series)


def network_inputs(
    pixels: np.ndarray, input_size: int, laterality: str = "", layout: Layout | None = None
) -> tuple[Layout, list[SideCrop]]:
    """Bone-bright pixels -> the layout and one network-ready crop per femur."""
    return crop_sides(pixels, input_size, laterality, layout=layout)


def read_radiograph(path: Path) -> tuple[np.ndarray, str]:
    """A DICOM, PNG, JPEG or TIFF file -> (bone-bright pixels, laterality), through the
    project's one reader (``app.study.load``), as the viewer and the CLI read it. An unreadable
    file raises the loader's ``StudyLoadError``, which names the file and the reason."""
    from app.study import load  # the loader pulls in pydicom and the codecs: only when reading

    series = load(Path(path)).all_series()
    if not series:  # e.g. a DICOM without pixel data: the loader lists no series
        raise ValueError(f"{path}: no image in this file")
    first = series[0]
    if first.shape[0] != 1:
        raise ValueError(f"{path}: expected one radiograph, found {first.shape[0]} frames")
    return series_pixels(first)
