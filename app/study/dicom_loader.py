"""DICOM files -> Series: grouping, splitting, ordering, geometry, pixels.

Pipeline: one header pass over every file (``dicom_headers``), expansion of multi-frame files
into per-frame records, grouping by Study/Series UID, splitting a series by orientation,
image size, pixel spacing, localizer flag and phase, then one pixel pass per output series.
Radiographs (single frames of projection modalities or without patient position) become
``projection`` series; colour images ``image``; DICOM SEG a ``labelmap``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from app.study import dicom_pixels as px
from app.study.dicom_headers import (
    NotDicom,
    RawHeader,
    parse_native,
    read_with_pydicom,
)
from app.study.geometry import ImageVolume
from app.study.model import LoadCancelled, LoadError, PatientInfo, Series
from app.study.resample import StackError, plan_stack, resample_slices

PROJECTION_MODALITIES = {"CR", "DX", "DR", "MG", "RF", "XA", "SC", "OT", "IO", "PX", "XC", "ES"}
DICOMDIR_SOP = "1.2.840.10008.1.3.10"
SEG_SOP = "1.2.840.10008.5.1.4.1.1.66.4"
COLOR_PHOTOMETRIC = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "PALETTE COLOR")


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

    @property
    def path(self) -> str:
        return self.header.path

    @property
    def values(self) -> dict:
        return self.header.values


@dataclass
class DicomSeries:
    """A built series plus the study-level facts the caller groups by."""

    study_uid: str
    patient: PatientInfo
    series: Series
    sort_key: tuple = ()


@dataclass
class _Ctx:
    tick: Callable[[], None]
    errors: list[LoadError] = field(default_factory=list)


# ---------------------------------------------------------------- value helpers
def _floats(value: object, n: int | None = None) -> np.ndarray | None:
    if value is None or value == "":
        return None
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        items = str(value).split("\\")
    else:
        items = list(value)
    try:
        arr = np.array([float(v) for v in items], dtype=float)
    except (TypeError, ValueError):
        return None
    if n is not None and arr.size != n:
        return None
    if not np.all(np.isfinite(arr)):
        return None
    return arr


def _first_float(value: object) -> float | None:
    arr = _floats(value)
    return None if arr is None or arr.size == 0 else float(arr[0])


def _int(value: object, default: int | None = None) -> int | None:
    if not isinstance(value, str | bytes | int | float) and hasattr(value, "__iter__"):
        value = next(iter(value), None)
    try:
        return int(float(str(value))) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _window(center: object, width: object) -> tuple[float, float] | None:
    c, w = _first_float(center), _first_float(width)
    if c is None or w is None or w <= 0:
        return None
    return (c, w)


def _rescale(values: dict) -> tuple[float, float]:
    slope = _first_float(values.get("RescaleSlope"))
    intercept = _first_float(values.get("RescaleIntercept"))
    slope = slope if slope not in (None, 0.0) else 1.0
    dose_scaling = _first_float(values.get("DoseGridScaling"))  # RT dose: stored -> Gy
    if dose_scaling:
        slope *= dose_scaling
    return (slope, intercept or 0.0)


def _spacing(values: dict) -> tuple[float, float] | None:
    for kw in ("PixelSpacing", "ImagerPixelSpacing"):
        arr = _floats(values.get(kw), 2)
        if arr is not None and np.all(arr > 0):
            return (float(arr[0]), float(arr[1]))
    return None


def patient_of(values: dict) -> PatientInfo:
    return PatientInfo(
        name=_text(values.get("PatientName")),
        patient_id=_text(values.get("PatientID")),
        birth_date=_text(values.get("PatientBirthDate")),
        sex=_text(values.get("PatientSex")),
        study_date=_text(values.get("StudyDate")),
        accession=_text(values.get("AccessionNumber")),
        study_description=_text(values.get("StudyDescription")),
    )


def _sop_name(uid: str) -> str:
    try:
        from pydicom.uid import UID

        name = UID(uid).name
        return name if name and name != uid else uid
    except Exception:  # noqa: BLE001 - naming is best effort
        return uid


# ---------------------------------------------------------------- header pass
def read_header(path: str) -> RawHeader:
    try:
        return parse_native(path)
    except (NotDicom, OSError):
        raise
    except Exception:  # noqa: BLE001 - NotNative, or a malformed header: pydicom decides
        return read_with_pydicom(path)


def _frames_of(header: RawHeader) -> list[Frame]:
    """Per-frame records of one file; raises ValueError('not an image ...') for non-images."""
    v = header.values
    sop = _text(v.get("SOPClassUID"))
    if "Rows" not in v or "Columns" not in v:
        what = _sop_name(sop) if sop else "no SOP class"
        raise ValueError(f"not an image ({what}; no pixel data)")
    n_frames = _int(v.get("NumberOfFrames"), 1) or 1
    if header.dataset is None and (n_frames > 1 or sop == SEG_SOP):
        header.dataset = read_with_pydicom(header.path).dataset
        header.pixel_offset = None
    ds = header.dataset
    if ds is not None and "PerFrameFunctionalGroupsSequence" in ds:
        return _enhanced_frames(header, n_frames)
    slope, intercept = _rescale(v)
    position = _floats(v.get("ImagePositionPatient"), 3)
    orientation = _floats(v.get("ImageOrientationPatient"), 6)
    common = dict(
        orientation=orientation,
        pixel_spacing=_spacing(v),
        slope=slope,
        intercept=intercept,
        window=_window(v.get("WindowCenter"), v.get("WindowWidth")),
        phase=(
            _int(v.get("TemporalPositionIdentifier")),
            _int(v.get("EchoNumbers")),
            _int(v.get("AcquisitionNumber")),
        ),
        thickness=_first_float(v.get("SliceThickness")),
    )
    if n_frames == 1:
        return [Frame(header, None, position, **common)]
    # Old-style multi-frame: positions only from GridFrameOffsetVector (RT dose) or
    # SpacingBetweenSlices (NM); otherwise the frames have no place in the patient.
    positions: list[np.ndarray | None] = [None] * n_frames
    if position is not None and orientation is not None:
        normal = np.cross(orientation[:3], orientation[3:])
        offsets = _floats(ds.get("GridFrameOffsetVector") if ds is not None else None, n_frames)
        step = _first_float(v.get("SpacingBetweenSlices"))
        if offsets is not None:
            positions = [position + o * normal for o in offsets]
        elif step:
            positions = [position + k * step * normal for k in range(n_frames)]
    return [Frame(header, k, positions[k], **common) for k in range(n_frames)]


def _group_item(group: object, name: str) -> object | None:
    if group is None or name not in group:
        return None
    seq = group[name].value
    return seq[0] if seq else None


def _enhanced_frames(header: RawHeader, n_frames: int) -> list[Frame]:
    """Enhanced multi-frame (CT/MR/SEG...): geometry from the functional group sequences."""
    ds = header.dataset
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    per_frame = ds.PerFrameFunctionalGroupsSequence
    v = header.values
    frames = []
    for k in range(n_frames):
        item = per_frame[k] if k < len(per_frame) else None

        def attr(seq_name: str, kw: str, item=item) -> object | None:
            for group in (item, shared):
                found = _group_item(group, seq_name)
                if found is not None and kw in found:
                    return found[kw].value
            return None

        position = _floats(attr("PlanePositionSequence", "ImagePositionPatient"), 3)
        orientation = _floats(attr("PlaneOrientationSequence", "ImageOrientationPatient"), 6)
        if orientation is None:
            orientation = _floats(v.get("ImageOrientationPatient"), 6)
        ps = _floats(attr("PixelMeasuresSequence", "PixelSpacing"), 2)
        slope = _first_float(attr("PixelValueTransformationSequence", "RescaleSlope"))
        intercept = _first_float(attr("PixelValueTransformationSequence", "RescaleIntercept"))
        if slope is None:
            slope, intercept = _rescale(v)
        window = _window(
            attr("FrameVOILUTSequence", "WindowCenter"), attr("FrameVOILUTSequence", "WindowWidth")
        )
        segment = attr("SegmentIdentificationSequence", "ReferencedSegmentNumber")
        phase = (
            _int(attr("FrameContentSequence", "TemporalPositionIndex")),
            _int(attr("FrameContentSequence", "StackID")),
            _int(attr("MREchoSequence", "EffectiveEchoTime")),
        )
        frames.append(
            Frame(
                header,
                k,
                position,
                orientation,
                (float(ps[0]), float(ps[1])) if ps is not None else _spacing(v),
                slope or 1.0,
                intercept or 0.0,
                window or _window(v.get("WindowCenter"), v.get("WindowWidth")),
                _int(segment),
                phase,
                _first_float(attr("PixelMeasuresSequence", "SliceThickness")),
            )
        )
    return frames


# ---------------------------------------------------------------- pixel access
class FrameReadError(ValueError):
    """The pixels of one file could not be read; the rest of its series may still load."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


MAX_BAD_FILES_PER_SERIES = 10


class _Decoded:
    """Decodes a file's pixel data once with pydicom; frames are then taken from it."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.array: np.ndarray | None = None
        self.ds = None

    def get(self, frame: Frame) -> np.ndarray:
        if frame.path != self.path:
            import pydicom

            self.path, self.array = frame.path, None
            try:
                ds = pydicom.dcmread(frame.path, force=True)
                arr = _pixel_array(ds, frame.path)
            except LoadCancelled:
                raise
            except ValueError as exc:
                raise FrameReadError(frame.path, str(exc)) from exc
            except Exception as exc:  # noqa: BLE001 - any reader failure is this file's
                raise FrameReadError(frame.path, f"{type(exc).__name__}: {exc}") from exc
            self.ds, self.array = ds, arr
        arr = self.array
        n_frames = _int(frame.values.get("NumberOfFrames"), 1) or 1
        if frame.index is None or n_frames == 1:
            return arr[0] if (arr.ndim >= 3 and n_frames > 1) else arr
        return arr[frame.index]


def _pixel_array(ds, path: str) -> np.ndarray:
    from pydicom.pixels import apply_color_lut

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" not in meta:
        # Old files without the meta element: the parser already knows how it read them.
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

        meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian if ds.is_implicit_VR else (ExplicitVRLittleEndian)
        )
    try:
        arr = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - any decoder failure becomes a reason
        fallback = _decode_jpeg_extended(ds)
        if fallback is not None:
            return fallback
        msg = " ".join(str(exc).split()) or type(exc).__name__
        syntax = ""
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "TransferSyntaxUID" in meta:
            syntax = f"{meta.TransferSyntaxUID.name}: "
        raise ValueError(f"pixel data could not be decoded ({syntax}{msg[:300]})") from exc
    photometric = _text(ds.get("PhotometricInterpretation")).upper()
    if photometric == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    return arr


_JPEG_8_12_BIT = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")


def _decode_jpeg_extended(ds) -> np.ndarray | None:
    """12-bit lossy JPEG (Extended, Process 2 & 4): the gdcm wheel lacks 12-bit libjpeg, and the
    only pylibjpeg plugin for it is GPL; imagecodecs' libjpeg-turbo (BSD) decodes it."""
    meta = getattr(ds, "file_meta", None)
    if meta is None or str(meta.get("TransferSyntaxUID", "")) not in _JPEG_8_12_BIT:
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


def _photometric(frame: Frame) -> str:
    return _text(frame.values.get("PhotometricInterpretation")).upper()


def _is_color(frame: Frame) -> bool:
    return (_int(frame.values.get("SamplesPerPixel"), 1) or 1) > 1 or _photometric(frame) in (
        COLOR_PHOTOMETRIC
    )


def _native_ok(frames: list[Frame]) -> bool:
    """True when the fast readinto path applies to every frame."""
    for f in frames:
        v = f.values
        if f.header.pixel_offset is None or f.index is not None or _is_color(f):
            return False
        if _int(v.get("BitsAllocated")) != 16:
            return False
        signed = _int(v.get("PixelRepresentation"), 0) == 1
        if signed and _int(v.get("BitsStored"), 16) != 16:
            return False
        if f.header.pixel_length < 2 * _int(v["Rows"]) * _int(v["Columns"]):
            return False
    return True


def read_stack(frames: list[Frame], ctx: _Ctx, keep_stored: bool = False) -> np.ndarray:
    """Pixels of ``frames`` in order -> (n, rows, cols) or (n, rows, cols, 3) RGB uint8."""
    v0 = frames[0].values
    rows, cols = _int(v0["Rows"]), _int(v0["Columns"])
    slopes = [f.slope for f in frames]
    intercepts = [f.intercept for f in frames]
    if not keep_stored and _native_ok(frames):
        return px.read_native_stack(  # raises NativeReadError naming the file
            [f.path for f in frames],
            [f.header.pixel_offset for f in frames],
            (rows, cols),
            _int(v0.get("PixelRepresentation"), 0) == 1,
            _int(v0.get("BitsStored"), 16) or 16,
            slopes,
            intercepts,
            ctx.tick,
        )
    decoder = _Decoded()
    first = decoder.get(frames[0])
    color = first.ndim == 3
    unit = all(s == 1 for s in slopes) and all(i == 0 for i in intercepts)
    if color:
        dtype = np.dtype(np.uint8)
    elif keep_stored and unit:
        dtype = first.dtype if first.dtype.kind in "iu" else np.dtype(np.float32)
    else:
        bits = _int(v0.get("BitsStored"), first.dtype.itemsize * 8) or 16
        signed = first.dtype.kind == "i"
        dtype = px.decide_dtype(bits, signed, first.dtype.kind == "f", slopes, intercepts)
    shape = (len(frames), rows, cols) + ((3,) if color else ())
    out = np.empty(shape, dtype=dtype)
    last_path = None
    for k, frame in enumerate(frames):
        data = decoder.get(frame)
        if data.shape[:2] != (rows, cols):
            raise FrameReadError(frame.path, f"frame size {data.shape} differs from {rows}x{cols}")
        if color:
            if data.ndim == 2:
                data = np.repeat(data[..., None], 3, axis=2)
            out[k] = px.to_rgb8(data, data.dtype.itemsize * 8)
        else:
            px.put_rescaled(out[k], data, frame.slope, frame.intercept)
        if frame.path != last_path:
            ctx.tick()
            last_path = frame.path
    if not color and not keep_stored:
        out = px.maybe_int16(out)
    return out


# ---------------------------------------------------------------- series building
def _series_meta(v: dict) -> dict:
    meta = {
        "manufacturer": _text(v.get("Manufacturer")),
        "model": _text(v.get("ManufacturerModelName")),
        "series_number": _int(v.get("SeriesNumber")),
        "frame_of_reference_uid": _text(v.get("FrameOfReferenceUID")),
        "photometric": _text(v.get("PhotometricInterpretation")),
        "transfer_syntax": "",
        "sop_class_uid": _text(v.get("SOPClassUID")),
        "image_type": _text(v.get("ImageType")),
    }
    tilt = _first_float(v.get("GantryDetectorTilt"))
    if tilt:
        meta["gantry_tilt_deg"] = tilt
    return {k: val for k, val in meta.items() if val not in ("", None)}


def _make_series(
    frames: list[Frame], uid: str, image: ImageVolume, kind: str, warnings: list[str]
) -> Series:
    v = frames[0].values
    meta = _series_meta(v)
    meta["transfer_syntax"] = frames[0].header.transfer_syntax
    if "_uid_note" in v:
        warnings = [*warnings, v["_uid_note"]]
    window = next((f.window for f in frames if f.window is not None), None)
    if image.is_rgb:
        window = None
    return Series(
        series_uid=uid,
        modality=_text(v.get("Modality")) or "OT",
        description=_text(v.get("SeriesDescription")),
        image=image,
        kind=kind,  # type: ignore[arg-type]
        body_part=_text(v.get("BodyPartExamined")),
        view_position=_text(v.get("ViewPosition")),
        window=window,
        invert=_photometric(frames[0]) == "MONOCHROME1",
        warnings=list(warnings),
        source_paths=sorted({f.path for f in frames}),
        meta=meta,
    )


def _projection(frame: Frame, uid: str, ctx: _Ctx) -> Series:
    """A single radiograph / secondary capture: (1, rows, cols), spacing (1, row, col)."""
    warnings = []
    v = frame.values
    spacing = None
    for kw in ("PixelSpacing", "ImagerPixelSpacing"):
        arr = _floats(v.get(kw), 2)
        if arr is not None and np.all(arr > 0):
            spacing = (float(arr[0]), float(arr[1]))
            break
    if spacing is None:
        spacing = (1.0, 1.0)
        warnings.append("no PixelSpacing or ImagerPixelSpacing: 1 mm pixels assumed")
    array = read_stack([frame], ctx, keep_stored=True)
    image = ImageVolume(array, (1.0, *spacing))
    localizer = "LOCALIZER" in _text(v.get("ImageType")).upper()
    if localizer and frame.position is not None and frame.orientation is not None:
        o = frame.orientation
        direction = np.column_stack([o[:3], o[3:], np.cross(o[:3], o[3:])])
        image = ImageVolume(array, (1.0, *spacing), frame.position, direction)
        warnings.append("localizer (scout) image: kept out of the volume")
    if image.is_rgb and _equal_channels(array):
        image = ImageVolume(
            np.ascontiguousarray(array[..., 0]), image.spacing, image.origin, image.direction
        )
    kind = "image" if image.is_rgb else "projection"
    return _make_series([frame], uid, image, kind, warnings)


def _equal_channels(rgb: np.ndarray) -> bool:
    return bool(
        np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
    )


def _unplaced_stack(frames: list[Frame], uid: str, ctx: _Ctx) -> Series:
    """Frames with no patient position (cine, old multi-frame): stacked in file order."""
    array = read_stack(frames, ctx)
    ps = frames[0].pixel_spacing or (1.0, 1.0)
    step = _first_float(frames[0].values.get("SpacingBetweenSlices")) or frames[0].thickness
    image = ImageVolume(array, (step or 1.0, *ps))
    warnings = [f"{len(frames)} frames without patient positions: stacked in frame order"]
    if frames[0].pixel_spacing is None:
        warnings.append("no PixelSpacing: 1 mm pixels assumed")
    kind = "image" if image.is_rgb else "volume"
    return _make_series(frames, uid, image, kind, warnings)


def _volume(frames: list[Frame], uid: str, ctx: _Ctx, extra: list[str]) -> Series:
    """A stack of placed frames; files whose pixels fail are listed and the rest re-planned
    (so a lost slice becomes a gap that is interpolated and warned about, never squeezed)."""
    orientation = frames[0].orientation
    fallback = (
        _first_float(frames[0].values.get("SpacingBetweenSlices")) or frames[0].thickness or 1.0
    )
    for _attempt in range(MAX_BAD_FILES_PER_SERIES + 1):
        warnings = list(extra)
        positions = np.array([f.position for f in frames])
        plan = plan_stack(positions, orientation, fallback)
        warnings += plan.warnings
        ordered = [frames[i] for i in plan.order]
        try:
            array = read_stack(ordered, ctx)
            break
        except (FrameReadError, px.NativeReadError) as exc:
            ctx.errors.append(LoadError(exc.path, exc.reason))
            frames = [f for f in frames if f.path != exc.path]
            if not frames:
                raise ValueError("no slice of this series could be read") from None
    else:
        raise ValueError(f"more than {MAX_BAD_FILES_PER_SERIES} unreadable files in this series")
    if plan.grid_t is not None:
        array = resample_slices(array, plan.positions_t, plan.grid_t)
    ps = frames[0].pixel_spacing
    if ps is None:
        ps = (1.0, 1.0)
        warnings.append("no PixelSpacing: 1 mm pixels assumed")
    o = orientation
    row = o[:3] / np.linalg.norm(o[:3])
    col = o[3:] / np.linalg.norm(o[3:])
    direction = np.column_stack([row, col, plan.step_dir])
    image = ImageVolume(array, (plan.spacing, *ps), plan.origin, direction)
    kind = "image" if image.is_rgb else "volume"
    return _make_series(ordered, uid, image, kind, warnings)


def _labelmap(frames: list[Frame], uid: str, ctx: _Ctx) -> Series | None:
    """DICOM SEG: binary/fractional segment frames -> one label map (label = segment number)."""
    placed = [f for f in frames if f.position is not None and f.orientation is not None]
    if not placed:
        raise ValueError("DICOM SEG without per-frame plane positions cannot be placed")
    positions = np.array([f.position for f in placed])
    plan = plan_stack(positions, placed[0].orientation)
    normal_pos = {}
    for slot, idx in enumerate(plan.order):
        normal_pos[tuple(np.round(positions[idx], 2))] = slot
    v0 = placed[0].values
    rows, cols = _int(v0["Rows"]), _int(v0["Columns"])
    max_label = max((f.segment or 1) for f in placed)
    dtype = np.uint8 if max_label < 256 else np.uint16
    labels = np.zeros((len(plan.order), rows, cols), dtype=dtype)
    decoder = _Decoded()
    failed: set[str] = set()
    for f in placed:
        if f.path in failed:
            continue
        slot = normal_pos.get(tuple(np.round(f.position, 2)))
        if slot is None:  # a duplicate position folded into another slot
            slot = int(np.argmin(np.linalg.norm(positions[plan.order] - f.position, axis=1)))
        try:
            data = decoder.get(f)
        except FrameReadError as exc:  # one unreadable SEG file: the others still count
            failed.add(f.path)
            ctx.errors.append(LoadError(exc.path, exc.reason))
            continue
        labels[slot][data > 0] = f.segment or 1
    if len(failed) == len({f.path for f in placed}):
        return None  # the decode errors are already listed
    placed = [f for f in placed if f.path not in failed]
    ctx.tick()
    o = placed[0].orientation
    direction = np.column_stack([o[:3], o[3:], plan.step_dir])
    warnings = [w for w in plan.warnings if "repeat the position" not in w]
    if plan.grid_t is not None:
        warnings.append("segment frames are irregularly spaced: label map kept unresampled")
    ps = placed[0].pixel_spacing or (1.0, 1.0)
    image = ImageVolume(labels, (plan.spacing, *ps), plan.origin, direction)
    series = _make_series(placed, uid, image, "labelmap", warnings)
    series.window = None
    series.meta["segments"] = sorted({f.segment or 1 for f in placed})
    return series


def _cluster_ids(vectors: list[np.ndarray | None], tol: float) -> list[int | None]:
    """Greedy clustering: vectors within ``tol`` (max abs difference) of a cluster's first
    member share its id. Unlike rounding, jitter across a rounding boundary does not split."""
    centres: list[np.ndarray] = []
    ids: list[int | None] = []
    for vec in vectors:
        if vec is None:
            ids.append(None)
            continue
        for n, centre in enumerate(centres):
            if centre.shape == vec.shape and np.max(np.abs(centre - vec)) <= tol:
                ids.append(n)
                break
        else:
            centres.append(np.asarray(vec, float))
            ids.append(len(centres) - 1)
    return ids


def _split_keys(frames: list[Frame]) -> list[tuple]:
    """Frames of one series with equal keys can share a volume."""
    orientation = _cluster_ids([f.orientation for f in frames], 1e-3)
    spacing = _cluster_ids(
        [np.array(f.pixel_spacing) if f.pixel_spacing else None for f in frames], 1e-3
    )
    keys = []
    for f, o, ps in zip(frames, orientation, spacing, strict=True):
        v = f.values
        keys.append(
            (
                o,
                _int(v.get("Rows")),
                _int(v.get("Columns")),
                _is_color(f),
                ps,
                "LOCALIZER" in _text(v.get("ImageType")).upper(),
                f.position is not None,
            )
        )
    return keys


def _split_phases(frames: list[Frame]) -> list[list[Frame]] | None:
    """When positions repeat, split by a phase key that makes them unique (multi-phase/echo)."""
    positions = [tuple(np.round(f.position, 2)) for f in frames]
    if len(set(positions)) == len(positions):
        return None
    for slot in range(len(frames[0].phase)):
        parts: dict = defaultdict(list)
        for f in frames:
            parts[f.phase[slot] if slot < len(f.phase) else None].append(f)
        if len(parts) < 2:
            continue
        if all(
            len({tuple(np.round(f.position, 2)) for f in part}) == len(part)
            for part in parts.values()
        ):
            return [parts[key] for key in sorted(parts, key=lambda x: (x is None, x))]
    return None


def _build_group(uid: str, frames: list[Frame], ctx: _Ctx) -> list[Series]:
    """All series of one SeriesInstanceUID."""
    results: list[Series] = []
    counter = [0]

    def next_uid() -> str:
        counter[0] += 1
        return uid if counter[0] == 1 else f"{uid}#{counter[0]}"

    def by_file(members: list[Frame]) -> list[list[Frame]]:
        files: dict[str, list[Frame]] = defaultdict(list)
        for f in members:
            files[f.path].append(f)
        return list(files.values())

    is_seg = _text(frames[0].values.get("SOPClassUID")) == SEG_SOP
    if is_seg or any(f.segment is not None for f in frames):
        for seg_frames in by_file(frames):  # each SEG instance is one label map
            try:
                labelmap = _labelmap(seg_frames, next_uid(), ctx)
            except FrameReadError as exc:
                ctx.errors.append(LoadError(exc.path, exc.reason))
                continue
            except (ValueError, StackError) as exc:
                ctx.errors.append(LoadError(seg_frames[0].path, str(exc)))
                continue
            if labelmap is not None:
                results.append(labelmap)
        return results
    subgroups: dict[tuple, list[Frame]] = defaultdict(list)
    for f, key in zip(frames, _split_keys(frames), strict=True):
        subgroups[key].append(f)
    ordered = sorted(subgroups.items(), key=lambda kv: (kv[0][5], -len(kv[1])))

    def singles(members: list[Frame], localizer: bool = False) -> None:
        """Each single-frame file a projection; each multi-frame file its own frame stack."""
        for file_frames in by_file(members):
            try:
                if len(file_frames) > 1:
                    results.append(_unplaced_stack(file_frames, next_uid(), ctx))
                    continue
                s = _projection(file_frames[0], next_uid(), ctx)
                if localizer and not any("localizer" in w for w in s.warnings):
                    s.warnings.append("localizer (scout) image: kept out of the volume")
                results.append(s)
            except FrameReadError as exc:
                ctx.errors.append(LoadError(exc.path, exc.reason))
            except ValueError as exc:
                ctx.errors.append(LoadError(file_frames[0].path, str(exc)))

    main_orientation = ordered[0][0][0] if ordered else None
    modality = _text(frames[0].values.get("Modality")).upper()
    for key, members in ordered:
        localizer = key[5] or (key[0] != main_orientation and len(members) <= 3)
        placed = all(f.position is not None and f.orientation is not None for f in members)
        one_multiframe_file = len({f.path for f in members}) == 1 and members[0].index is not None
        if localizer or (modality in PROJECTION_MODALITIES and not one_multiframe_file):
            singles(members, localizer)
            continue
        if not placed:
            singles(members)
            continue
        phases = _split_phases(members)
        if phases:
            parts, notes = phases, [f"positions repeat: split into {len(phases)} phases/echoes"]
        else:
            parts, notes = [members], []
        for part in parts:
            part_uid = next_uid()
            try:
                results.append(_volume(part, part_uid, ctx, notes))
            except LoadCancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad stack must not sink the others
                reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
                ctx.errors.append(_series_error(part, part_uid, reason))
    return results


def _group_key(header: RawHeader) -> tuple[str, str]:
    """(study UID, series UID); anonymised files without UIDs group by folder and series tags."""
    from pydicom.uid import generate_uid

    v = header.values
    folder = os.path.dirname(os.path.abspath(header.path))
    study = _text(v.get("StudyInstanceUID"))
    series = _text(v.get("SeriesInstanceUID"))
    if not study:
        parts = [folder, _text(v.get("PatientID")), _text(v.get("StudyDate"))]
        study = generate_uid(entropy_srcs=["study", *parts])
    if not series:
        parts = [
            folder,
            _text(v.get("SeriesNumber")),
            _text(v.get("Modality")),
            _text(v.get("FrameOfReferenceUID")),
            _text(v.get("SeriesDescription")),
        ]
        series = generate_uid(entropy_srcs=["series", *parts])
        header.values["_uid_note"] = "no SeriesInstanceUID: files grouped by folder and series tags"
    return study, series


def _series_error(frames: list[Frame], uid: str, reason: str) -> LoadError:
    """A whole series failed: name its file (or folder and UID when it has several files)."""
    paths = sorted({f.path for f in frames})
    if len(paths) == 1:
        return LoadError(paths[0], reason)
    folder = os.path.commonpath(paths)
    return LoadError(folder, f"series {uid} ({len(paths)} files): {reason}")


def load_dicom_files(
    paths: list[str], tick: Callable[[], None], skip_dicomdir: bool = False
) -> tuple[list[DicomSeries], list[LoadError]]:
    """Header pass + series building for ``paths`` (each a candidate DICOM file)."""
    ctx = _Ctx(tick)
    groups: dict[tuple[str, str], list[Frame]] = defaultdict(list)
    for path in paths:
        try:
            header = read_header(path)
            sop = _text(header.values.get("SOPClassUID"))
            if sop == DICOMDIR_SOP:
                if not skip_dicomdir:
                    ctx.errors.append(LoadError(path, "DICOMDIR (an index, not an image)"))
                tick()
                continue
            frames = _frames_of(header)
        except LoadCancelled:
            raise
        except NotDicom as exc:
            ctx.errors.append(LoadError(path, str(exc)))
        except (ValueError, OSError) as exc:
            ctx.errors.append(LoadError(path, str(exc)))
        except Exception as exc:  # noqa: BLE001 - malformed files raise anything in pydicom
            ctx.errors.append(LoadError(path, f"unreadable DICOM ({type(exc).__name__}: {exc})"))
        else:
            groups[_group_key(header)].extend(frames)
        tick()
    built: list[DicomSeries] = []
    for (study, series_uid), frames in groups.items():
        try:
            series_list = _build_group(series_uid, frames, ctx)
        except LoadCancelled:
            raise
        except FrameReadError as exc:
            ctx.errors.append(LoadError(exc.path, exc.reason))
            continue
        except (ValueError, StackError, OSError) as exc:
            ctx.errors.append(_series_error(frames, series_uid, str(exc)))
            continue
        except MemoryError:
            ctx.errors.append(_series_error(frames, series_uid, "not enough memory"))
            continue
        except Exception as exc:  # noqa: BLE001 - one bad series must not sink the others
            ctx.errors.append(_series_error(frames, series_uid, f"{type(exc).__name__}: {exc}"))
            continue
        v = frames[0].values
        for s in series_list:
            number = s.meta.get("series_number")
            built.append(
                DicomSeries(
                    study,
                    patient_of(v),
                    s,
                    (number if number is not None else 1 << 30, s.series_uid),
                )
            )
    return built, ctx.errors
