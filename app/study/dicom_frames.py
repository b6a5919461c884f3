"""One DICOM header -> per-frame records (``Frame``), with the header's claims checked first.

A file is refused here, before any per-frame object or pixel buffer exists, when its header
cannot describe the pixel data it carries (a frame count the data cannot hold, a zero or
unsupported image size, a rescale that overflows). Geometry values that are impossible are
ignored with a note (``Frame.notes``) that becomes a series warning.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from app.study import dicom_values as dv
from app.study.dicom_headers import NotDicom, RawHeader, parse_native, read_with_pydicom
from app.study.dicom_values import first_float, floats, text, to_int, window

SEG_SOP = "1.2.840.10008.5.1.4.1.1.66.4"
COLOR_PHOTOMETRIC = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "PALETTE COLOR")
# Pixel data stored as plain bytes (its length is exact); anything else is compressed.
UNCOMPRESSED_SYNTAXES = {"", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
DEFLATE_SYNTAX = "1.2.840.10008.1.2.1.99"
DEFLATE_MAX_RATIO = 1032  # zlib's largest possible expansion
BITS_ALLOCATED = (1, 8, 16, 32, 64)
SAMPLES_PER_PIXEL = (1, 3)
MAX_NOTES_PER_FILE = 5
MANY_FRAMES = 1000  # above this, a compressed file's frame count is checked against its data


def is_compressed(syntax: str) -> bool:
    """Encapsulated pixel data: decoded by native codecs (in the decoder pool's children)."""
    return syntax not in UNCOMPRESSED_SYNTAXES and syntax != DEFLATE_SYNTAX


@dataclass
class Frame:
    """One 2-D frame: a single-frame file or one frame of a multi-frame file."""

    header: RawHeader
    index: int | None  # frame number inside a multi-frame file, None for single-frame files
    position: np.ndarray | None
    orientation: np.ndarray | None
    pixel_spacing: tuple[float, float] | None
    slope: float = 1.0
    intercept: float = 0.0
    window: tuple[float, float] | None = None
    segment: int | None = None
    phase: tuple = ()  # values that tell phases/echoes apart when positions repeat
    thickness: float | None = None
    step: float | None = None  # SpacingBetweenSlices when possible
    notes: tuple[str, ...] = ()  # header values that were ignored, and why

    @property
    def path(self) -> str:
        return self.header.path

    @property
    def values(self) -> dict:
        return self.header.values


def sop_name(uid: str) -> str:
    try:
        from pydicom.uid import UID

        name = UID(uid).name
        return name if name and name != uid else uid
    except Exception:  # noqa: BLE001 - naming is best effort
        return uid


def read_header(path: str) -> RawHeader:
    try:
        return parse_native(path)
    except (NotDicom, OSError):
        raise
    except Exception:  # noqa: BLE001 - NotNative, or a malformed header: pydicom decides
        return read_with_pydicom(path)


def _bits_stored(v: dict) -> int:
    bits = to_int(v.get("BitsStored")) or to_int(v.get("BitsAllocated")) or 16
    return min(max(bits, 1), 64)


def checked_frame_count(header: RawHeader) -> int:
    """NumberOfFrames, once the header's image size and the pixel data can hold that many.

    Checked before anything is built per frame: a claim of 10,000,000 frames in an 84 kB file
    would otherwise allocate a record per claimed frame (and hang the load)."""
    v = header.values
    raw = v.get("NumberOfFrames")
    n = to_int(raw, 1) if raw not in (None, "") else 1
    if n is None or n < 1:
        raise ValueError(f"NumberOfFrames {dv.shown(raw)!r} is not a frame count")
    rows, cols = to_int(v.get("Rows")), to_int(v.get("Columns"))
    if not rows or not cols or rows < 1 or cols < 1:
        raise ValueError(f"Rows x Columns {dv.shown(v.get('Rows'))} x {dv.shown(v.get('Columns'))}"
                         " is not an image size")  # fmt: skip
    bits = to_int(v.get("BitsAllocated"), 16)
    if bits not in BITS_ALLOCATED:
        raise ValueError(f"BitsAllocated {dv.shown(v.get('BitsAllocated'))} is not supported")
    samples = to_int(v.get("SamplesPerPixel"), 1)
    if samples not in SAMPLES_PER_PIXEL:
        raise ValueError(f"SamplesPerPixel {dv.shown(v.get('SamplesPerPixel'))} is not supported")
    need = -(-n * rows * cols * samples * bits // 8)
    syntax = header.transfer_syntax
    if header.pixel_offset is not None and header.has_pixels:
        if need <= header.pixel_length:  # the common case, without a stat of the file
            return n
    try:
        size = os.path.getsize(header.path)
    except OSError:
        size = 0
    if header.pixel_offset is not None and header.has_pixels:
        capacity, what = header.pixel_length, "the pixel data holds"
    elif syntax in UNCOMPRESSED_SYNTAXES:
        capacity, what = size, "the whole file is"
    elif syntax == DEFLATE_SYNTAX:
        capacity, what = size * DEFLATE_MAX_RATIO, "the deflated file can hold at most"
    else:
        # Compressed: every frame is at least one 8-byte fragment item.
        need, capacity, what = 8 * n, size, "the whole file is"
        if n > MANY_FRAMES and need <= capacity:
            fragments = _fragment_count(header.path)
            if fragments < n:
                raise ValueError(
                    f"the header claims {n} frames, the pixel data holds {fragments} fragment(s)"
                )
    if need > capacity:
        frames = f"{n} frame(s) of " if n > 1 else ""
        raise ValueError(
            f"the header claims {frames}{rows}x{cols} pixels ({need} bytes), but {what} "
            f"{capacity} bytes"
        )
    return n


def _fragment_count(path: str) -> int:
    """Fragments of encapsulated pixel data (each frame has at least one). Counted only for
    files claiming many frames: a per-frame record for each of 65,535 claimed frames costs
    seconds before the decoder finds out."""
    import pydicom
    from pydicom.encaps import parse_fragments

    try:
        data = pydicom.dcmread(path, force=True).get("PixelData") or b""
        (bot_length,) = struct.unpack_from("<L", data, 4)  # the Basic Offset Table item
        return parse_fragments(data[8 + bot_length :])[0]
    except Exception as exc:  # noqa: BLE001 - any parse failure: the data is not usable
        raise ValueError(f"encapsulated pixel data is malformed ({type(exc).__name__})") from exc


def _rescale_of(slope: object, intercept: object, v: dict) -> tuple[float, float]:
    s = first_float(slope)
    dose_scaling = first_float(v.get("DoseGridScaling"))  # RT dose: stored -> Gy
    if s is not None and dose_scaling:
        s *= dose_scaling
    elif dose_scaling:
        s = dose_scaling
    return dv.rescale(s, first_float(intercept), _bits_stored(v))


def frames_of(header: RawHeader) -> list[Frame]:
    """Per-frame records of one file; ValueError (the reason) for non-images and impossible
    headers."""
    v = header.values
    sop = text(v.get("SOPClassUID"))
    if "Rows" not in v or "Columns" not in v:
        what = sop_name(sop) if sop else "no SOP class"
        raise ValueError(f"not an image ({what}; no pixel data)")
    n_frames = checked_frame_count(header)
    if header.dataset is None and (n_frames > 1 or sop == SEG_SOP):
        header.dataset = read_with_pydicom(header.path).dataset
        header.pixel_offset = None
    ds = header.dataset
    if ds is not None and "PerFrameFunctionalGroupsSequence" in ds:
        return _enhanced_frames(header, n_frames)
    notes: list[str] = []
    slope, intercept = _rescale_of(v.get("RescaleSlope"), v.get("RescaleIntercept"), v)
    pos = dv.position(v.get("ImagePositionPatient"), notes)
    orientation = dv.orientation(v.get("ImageOrientationPatient"), notes)
    spacing = dv.pixel_spacing(
        [(kw, v.get(kw)) for kw in ("PixelSpacing", "ImagerPixelSpacing")], notes
    )
    step = dv.size_mm(v.get("SpacingBetweenSlices"), "SpacingBetweenSlices", notes)
    common = dict(
        orientation=orientation,
        pixel_spacing=spacing,
        slope=slope,
        intercept=intercept,
        window=window(v.get("WindowCenter"), v.get("WindowWidth")),
        phase=(
            to_int(v.get("TemporalPositionIdentifier")),
            to_int(v.get("EchoNumbers")),
            to_int(v.get("AcquisitionNumber")),
        ),
        thickness=dv.size_mm(v.get("SliceThickness"), "SliceThickness", notes),
        step=step,
    )
    if n_frames == 1:
        return [Frame(header, None, pos, **common, notes=tuple(notes[:MAX_NOTES_PER_FILE]))]
    # Old-style multi-frame: positions only from GridFrameOffsetVector (RT dose) or
    # SpacingBetweenSlices (NM); otherwise the frames have no place in the patient.
    positions: list[np.ndarray | None] = [None] * n_frames
    if pos is not None and orientation is not None:
        normal = np.cross(orientation[:3], orientation[3:])
        raw_offsets = ds.get("GridFrameOffsetVector") if ds is not None else None
        offsets = floats(raw_offsets, n_frames)
        if offsets is not None and np.any(np.abs(offsets) > dv.MAX_COORD_MM):
            notes.append("GridFrameOffsetVector holds impossible offsets: ignored")
            offsets = None
        if offsets is not None:
            positions = [pos + o * normal for o in offsets]
        elif step:
            positions = [pos + k * step * normal for k in range(n_frames)]
    kept = tuple(notes[:MAX_NOTES_PER_FILE])
    return [Frame(header, k, positions[k], **common, notes=kept) for k in range(n_frames)]


def _group_item(group: object, name: str) -> object | None:
    if group is None or name not in group:
        return None
    seq = group[name].value
    return seq[0] if seq else None


def _enhanced_frames(header: RawHeader, n_frames: int) -> list[Frame]:
    """Enhanced multi-frame (CT/MR/SEG...): geometry from the functional group sequences,
    with the same checks as the top-level tags (a per-frame PixelSpacing of 0 is no better)."""
    ds = header.dataset
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    per_frame = ds.PerFrameFunctionalGroupsSequence
    v = header.values
    file_notes: list[str] = []
    top_spacing = [(kw, v.get(kw)) for kw in ("PixelSpacing", "ImagerPixelSpacing")]
    top_orientation = v.get("ImageOrientationPatient")
    frames = []
    for k in range(n_frames):
        item = per_frame[k] if k < len(per_frame) else None

        def attr(seq_name: str, kw: str, item=item) -> object | None:
            for group in (item, shared):
                found = _group_item(group, seq_name)
                if found is not None and kw in found:
                    return found[kw].value
            return None

        notes: list[str] = []
        pos = dv.position(attr("PlanePositionSequence", "ImagePositionPatient"), notes)
        raw_orientation = attr("PlaneOrientationSequence", "ImageOrientationPatient")
        orientation = dv.orientation(
            raw_orientation if raw_orientation not in (None, "") else top_orientation, notes
        )
        ps = dv.pixel_spacing(
            [("PixelSpacing", attr("PixelMeasuresSequence", "PixelSpacing")), *top_spacing], notes
        )
        slope_raw = attr("PixelValueTransformationSequence", "RescaleSlope")
        intercept_raw = attr("PixelValueTransformationSequence", "RescaleIntercept")
        if first_float(slope_raw) is None:
            slope_raw, intercept_raw = v.get("RescaleSlope"), v.get("RescaleIntercept")
        slope, intercept = _rescale_of(slope_raw, intercept_raw, v)
        win = window(
            attr("FrameVOILUTSequence", "WindowCenter"), attr("FrameVOILUTSequence", "WindowWidth")
        )
        segment = attr("SegmentIdentificationSequence", "ReferencedSegmentNumber")
        phase = (
            to_int(attr("FrameContentSequence", "TemporalPositionIndex")),
            to_int(attr("FrameContentSequence", "StackID")),
            to_int(attr("MREchoSequence", "EffectiveEchoTime")),
        )
        thickness = dv.size_mm(
            attr("PixelMeasuresSequence", "SliceThickness"), "SliceThickness", notes
        )
        raw_step = attr("PixelMeasuresSequence", "SpacingBetweenSlices")
        if raw_step in (None, ""):
            raw_step = v.get("SpacingBetweenSlices")
        step = dv.size_mm(raw_step, "SpacingBetweenSlices", notes)
        for note in notes:  # one note per distinct problem, not one per frame
            if note not in file_notes and len(file_notes) < MAX_NOTES_PER_FILE:
                file_notes.append(note)
        frames.append(
            Frame(
                header,
                k,
                pos,
                orientation,
                ps,
                slope,
                intercept,
                win or window(v.get("WindowCenter"), v.get("WindowWidth")),
                to_int(segment),
                phase,
                thickness,
                step,
            )
        )
    for f in frames:
        f.notes = tuple(file_notes)
    return frames
