"""One DICOM file's pixel data -> numpy array, through pydicom and its codec plugins.

``decode_file`` runs in the loader's process for uncompressed data (pure numpy) and in a
``decode_pool`` child for compressed data, after ``codestream`` has compared every frame's own
header with the DICOM header. Failures are ``ValueError`` with a one-line reason.
"""

from __future__ import annotations

import os

import numpy as np

from app.study import codestream
from app.study.dicom_frames import is_compressed
from app.study.dicom_values import text, to_int

# "1": skip the code-stream checks, so tests can prove the child process alone contains a
# decoder that aborts.
NO_CHECKS_ENV = "OSTEOVIEW_DECODE_NO_CHECKS"
_JPEG_8_12_BIT = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")


def transfer_syntax(ds) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""


def _check_compressed(ds, syntax: str) -> None:
    """Header against code stream, for every frame, before any native decoder sees it."""
    from pydicom.encaps import generate_frames

    rows, cols = to_int(ds.get("Rows"), 0) or 0, to_int(ds.get("Columns"), 0) or 0
    samples = to_int(ds.get("SamplesPerPixel"), 1) or 1
    bits = to_int(ds.get("BitsAllocated"), 8) or 8
    if "PixelData" not in ds or "Rows" not in ds:
        raise ValueError("no pixel data could be read (the file may be truncated)")
    photometric = text(ds.get("PhotometricInterpretation")).upper()
    codestream.check_photometric(photometric, samples, syntax)
    n_frames = to_int(ds.get("NumberOfFrames"), 1) or 1
    count = 0
    for data in generate_frames(ds.PixelData, number_of_frames=n_frames):
        codestream.check_frame(data, syntax, rows, cols, samples, bits)
        count += 1
    if count != n_frames:
        raise ValueError(f"NumberOfFrames is {n_frames}, the pixel data holds {count} frame(s)")


def pixel_array(ds, check: bool = True) -> np.ndarray:
    """Decoded (and palette-expanded) pixels of a dataset read with its pixel data."""
    from pydicom.pixels import apply_color_lut

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" not in meta:
        # Old files without the meta element: the parser already knows how it read them.
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

        meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian if ds.is_implicit_VR else ExplicitVRLittleEndian
        )
    syntax = transfer_syntax(ds)
    try:
        if check and is_compressed(syntax):
            _check_compressed(ds, syntax)
        arr = ds.pixel_array
    except codestream.StreamMismatch as exc:
        raise ValueError(f"pixel data could not be decoded: {exc}") from exc
    except MemoryError:
        raise ValueError("not enough memory to decode the pixel data") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure becomes a reason
        fallback = _decode_jpeg_extended(ds)
        if fallback is not None:
            return fallback
        msg = " ".join(str(exc).split()) or type(exc).__name__
        name = f"{meta.TransferSyntaxUID.name}: " if meta is not None and syntax else ""
        raise ValueError(f"pixel data could not be decoded ({name}{msg[:300]})") from exc
    if text(ds.get("PhotometricInterpretation")).upper() == "PALETTE COLOR":
        try:
            arr = apply_color_lut(arr, ds)
        except Exception as exc:  # noqa: BLE001 - a broken palette is this file's problem
            raise ValueError(f"palette colour table unusable ({type(exc).__name__})") from exc
    return arr


def decode_file(path: str) -> np.ndarray:
    """Read ``path`` with pydicom and decode its pixels (ValueError with the reason)."""
    import pydicom

    ds = pydicom.dcmread(path, force=True)
    return pixel_array(ds, check=os.environ.get(NO_CHECKS_ENV, "") != "1")


def _decode_jpeg_extended(ds) -> np.ndarray | None:
    """12-bit lossy JPEG (Extended, Process 2 & 4): the gdcm wheel lacks 12-bit libjpeg, and the
    only pylibjpeg plugin for it is GPL; imagecodecs' libjpeg-turbo (BSD) decodes it."""
    if transfer_syntax(ds) not in _JPEG_8_12_BIT:
        return None
    try:
        import imagecodecs
        from pydicom.encaps import generate_frames

        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
        frames = [
            imagecodecs.jpeg8_decode(f)
            for f in generate_frames(ds.PixelData, number_of_frames=n_frames)
        ]
    except Exception:  # noqa: BLE001 - the caller reports the original decoder's reason
        return None
    return np.stack(frames) if n_frames > 1 else frames[0]
