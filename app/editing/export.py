"""Save an edited label map (NIfTI in RAS, DICOM SEG) and import a SEG written by others.

The SEG itself is written and read by ``app.findings.dicom_seg`` (the one SEG module): here is
only what the editor adds, namely the segments and algorithm from the layer, AUTOMATIC for a
model's untouched output and SEMIAUTOMATIC once edited, atomic files, and making a foreign SEG's
pixels readable: pydicom cannot decode 1-bit RLE frames or the Deflated Image Frame Compression
transfer syntax, so those frames are decoded here and handed to ``read_seg`` as native pixels.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragmented_frames
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from app.atomic import atomic_path
from app.findings.dicom_seg import Algorithm, Segment, read_seg, write_seg
from app.findings.types import LabelMapOverlay
from app.study.model import Series
from app.study.nifti import write_nifti

EDITOR = Algorithm("OsteoView mask editor", "1")
DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"  # Deflated Image Frame Compression


def save_nifti(overlay: LabelMapOverlay, path: Path) -> Path:
    """The label map as NIfTI (RAS affine, smallest integer type holding its labels)."""
    assert overlay.image is not None
    top = int(overlay.image.array.max(initial=0))
    dtype = np.uint8 if top < 256 else np.uint16 if top < 65536 else np.int32
    return write_nifti(overlay.image, Path(path), dtype=np.dtype(dtype))


def segments_of(overlay: LabelMapOverlay) -> list[Segment]:
    """One segment per label value present, named and coloured from the layer's table."""
    assert overlay.image is not None
    present = np.unique(overlay.image.array)
    out = []
    for value in present[present > 0]:
        name, rgb = overlay.labels.get(int(value), (f"label {int(value)}", (255, 0, 0)))
        out.append(Segment(int(value), str(name), tuple(int(c) for c in rgb)))
    return out


def source_datasets(series: Series) -> list[Dataset]:
    """The series' DICOM files (a SEG references them), pixels not read."""
    out = []
    for path in series.source_paths:
        try:
            out.append(pydicom.dcmread(path, stop_before_pixels=True))
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            raise ValueError(f"{path}: cannot reference it in a DICOM SEG ({exc})") from exc
    if not out:
        raise ValueError(f"series {series.series_uid} has no DICOM files to reference")
    return out


def save_seg(
    overlay: LabelMapOverlay,
    series: Series,
    path: Path,
    edited: bool,
    algorithm: Algorithm | None = None,
) -> Path:
    """A BINARY DICOM SEG over ``series``: AUTOMATIC for a model's output, SEMIAUTOMATIC when a
    person ``edited`` it (or drew it; the editor is then the algorithm)."""
    assert overlay.image is not None
    seg = write_seg(
        overlay.image,
        segments_of(overlay),
        source_datasets(series),
        algorithm or EDITOR,
        edited=edited,
        series_description=overlay.name,
    )
    path = Path(path)
    with atomic_path(path) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    return path


# ---- foreign SEGs -------------------------------------------------------------------------
def _packbits(data: bytes, expected: int) -> bytes:
    """One PackBits (DICOM RLE) segment."""
    out = bytearray()
    pos = 0
    while pos < len(data) and len(out) < expected:
        n = data[pos]
        pos += 1
        if n < 128:
            out += data[pos : pos + n + 1]
            pos += n + 1
        elif n > 128:
            out += bytes([data[pos]]) * (257 - n)
            pos += 1
    return bytes(out[:expected])


def _rle_frame(fragment: bytes, packed_len: int) -> bytes:
    n_segments = int(np.frombuffer(fragment[:4], "<u4")[0])
    if n_segments != 1:
        raise ValueError(f"1-bit RLE frame with {n_segments} segments")
    start = int(np.frombuffer(fragment[4:8], "<u4")[0])
    return _packbits(fragment[start:], packed_len)


def _decode_frames(ds: Dataset) -> np.ndarray:
    """(frames, rows, cols) uint8 of a 1-bit SEG in a syntax pydicom cannot decode."""
    syntax = str(ds.file_meta.TransferSyntaxUID)
    rows, cols, n = int(ds.Rows), int(ds.Columns), int(getattr(ds, "NumberOfFrames", 1))
    packed_len = (rows * cols + 7) // 8
    frames = []
    for parts in generate_fragmented_frames(ds.PixelData, number_of_frames=n):
        blob = b"".join(parts)
        if syntax == DEFLATED_FRAMES:
            raw = zlib.decompress(blob, -15)
        elif syntax == RLELossless:
            raw = _rle_frame(blob, packed_len)
        else:
            raise ValueError(f"cannot decode a SEG in transfer syntax {syntax}")
        bits = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")
        frames.append(bits[: rows * cols].reshape(rows, cols))
    return np.stack(frames)


def readable(seg: Dataset) -> Dataset:
    """``seg`` itself when pydicom decodes its pixels, else a copy with native pixels."""
    try:
        seg.pixel_array  # noqa: B018 (decoding is the check)
        return seg
    except (NotImplementedError, RuntimeError, ValueError):
        if int(getattr(seg, "BitsAllocated", 8)) != 1:
            raise
    frames = _decode_frames(seg)
    out = pydicom.Dataset()
    out.update(seg)
    out.file_meta = pydicom.dataset.FileMetaDataset(seg.file_meta)
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out.PixelData = np.packbits(frames.reshape(-1), bitorder="little").tobytes()
    out["PixelData"].VR = "OB"
    out["PixelData"].is_undefined_length = False
    return out


def import_seg(path: Path | Dataset, series: Series, sources: Sequence[Dataset] | None = None
               ) -> LabelMapOverlay:  # fmt: skip
    """A SEG over ``series`` as a label-map layer on the series' grid (``read_seg`` checks each
    frame's world position against the image it references)."""
    seg = pydicom.dcmread(path) if not isinstance(path, Dataset) else path
    sources = list(sources) if sources is not None else source_datasets(series)
    back = read_seg(readable(seg), sources)
    labels = {v: (s.name, s.rgb) for v, s in back.segments.items()}
    name = str(getattr(seg, "SeriesDescription", "") or "Imported SEG")
    if back.labels.shape != series.image.shape:
        raise ValueError(f"SEG {back.labels.shape} does not fit the series {series.image.shape}")
    order = _series_order(series, sources)
    array = np.zeros(series.image.shape, dtype=back.labels.dtype)
    array[order] = back.labels
    overlay = LabelMapOverlay(name, image=series.image.with_array(array), labels=labels)
    return overlay


def _series_order(series: Series, sources: Sequence[Dataset]) -> np.ndarray:
    """For each SEG slice (source position order), the series' slice index k."""
    from app.findings.dicom_seg import _source_order

    ordered = _source_order(sources)
    if len(ordered) == 1 or getattr(ordered[0], "ImagePositionPatient", None) is None:
        return np.arange(len(ordered))
    pos = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in ordered])
    k = np.rint(series.image.world_to_index(pos)[:, 2]).astype(int)
    return k
