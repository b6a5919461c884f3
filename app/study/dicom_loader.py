"""DICOM files -> Series: grouping, splitting, ordering, geometry, pixels.

Pipeline: one header pass over every file (``dicom_headers``), expansion of multi-frame files
into per-frame records with their header claims checked (``dicom_frames``), grouping by
Study/Series UID, splitting a series by orientation, image size, pixel spacing, localizer flag
and phase (``dicom_grouping``), then one pixel pass per output series (``dicom_stack``; compressed
data is decoded in child processes). Radiographs (single frames of projection modalities or
without patient position) become ``projection`` series; colour images ``image``; DICOM SEG a
``labelmap``. Every series' geometry is checked (``sanity``) before it is returned.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from app.study import decode_pool
from app.study import dicom_pixels as px
from app.study.dicom_frames import SEG_SOP, Frame, frames_of, is_compressed, read_header
from app.study.dicom_grouping import group_key, series_error, split_keys, split_phases
from app.study.dicom_headers import NotDicom
from app.study.dicom_stack import Decoded, FrameReadError, photometric, read_stack
from app.study.dicom_values import first_float, os_reason, patient_of, text, to_int
from app.study.geometry import ImageVolume
from app.study.model import LoadCancelled, LoadError, PatientInfo, Series
from app.study.resample import StackError, plan_stack, resample_slices
from app.study.sanity import geometry_problem

PROJECTION_MODALITIES = {"CR", "DX", "DR", "MG", "RF", "XA", "SC", "OT", "IO", "PX", "XC", "ES"}
DICOMDIR_SOP = "1.2.840.10008.1.3.10"
MAX_BAD_FILES_PER_SERIES = 10


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


# ---------------------------------------------------------------- series building
def _series_meta(v: dict) -> dict:
    meta = {
        "manufacturer": text(v.get("Manufacturer")),
        "model": text(v.get("ManufacturerModelName")),
        "series_number": to_int(v.get("SeriesNumber")),
        "frame_of_reference_uid": text(v.get("FrameOfReferenceUID")),
        "photometric": text(v.get("PhotometricInterpretation")),
        "transfer_syntax": "",
        "sop_class_uid": text(v.get("SOPClassUID")),
        "image_type": text(v.get("ImageType")),
    }
    tilt = first_float(v.get("GantryDetectorTilt"))
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
    notes: list[str] = []
    for f in frames:  # header values ignored as impossible: said once per series, first
        notes += [n for n in f.notes if n not in notes]
    warnings = notes + list(warnings)
    problem = geometry_problem(image)
    if problem is not None:
        raise ValueError(f"impossible geometry: {problem}")
    window = next((f.window for f in frames if f.window is not None), None)
    if image.is_rgb:
        window = None
    return Series(
        series_uid=uid,
        modality=text(v.get("Modality")) or "OT",
        description=text(v.get("SeriesDescription")),
        image=image,
        kind=kind,  # type: ignore[arg-type]
        body_part=text(v.get("BodyPartExamined")),
        view_position=text(v.get("ViewPosition")),
        window=window,
        invert=photometric(frames[0]) == "MONOCHROME1",
        warnings=list(warnings),
        source_paths=sorted({f.path for f in frames}),
        meta=meta,
    )


def _projection(frame: Frame, uid: str, ctx: _Ctx) -> Series:
    """A single radiograph / secondary capture: (1, rows, cols), spacing (1, row, col)."""
    warnings = []
    v = frame.values
    spacing = frame.pixel_spacing
    if spacing is None:
        spacing = (1.0, 1.0)
        warnings.append("no PixelSpacing or ImagerPixelSpacing: 1 mm pixels assumed")
    array = read_stack([frame], ctx.tick, keep_stored=True)
    image = ImageVolume(array, (1.0, *spacing))
    localizer = "LOCALIZER" in text(v.get("ImageType")).upper()
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
    array = read_stack(frames, ctx.tick)
    ps = frames[0].pixel_spacing or (1.0, 1.0)
    step = frames[0].step or frames[0].thickness
    image = ImageVolume(array, (step or 1.0, *ps))
    warnings = [f"{len(frames)} frames without patient positions: stacked in frame order"]
    if frames[0].pixel_spacing is None:
        warnings.append("no PixelSpacing: 1 mm pixels assumed")
    kind = "image" if image.is_rgb else "volume"
    return _make_series(frames, uid, image, kind, warnings)


def _volume(frames: list[Frame], uid: str, ctx: _Ctx, extra: list[str]) -> Series | None:
    """A stack of placed frames; files whose pixels fail are listed and the rest re-planned
    (so a lost slice becomes a gap that is interpolated and warned about, never squeezed)."""
    orientation = frames[0].orientation
    fallback = frames[0].step or frames[0].thickness or 1.0
    dropped: list[str] = []
    for _attempt in range(MAX_BAD_FILES_PER_SERIES + 1):
        warnings = list(extra)
        if dropped:  # said on the series itself: a lost end slice leaves no gap to warn about
            names = ", ".join(os.path.basename(p) for p in dropped[:3])
            more = f" and {len(dropped) - 3} more" if len(dropped) > 3 else ""
            warnings.append(
                f"{len(dropped)} file(s) of this series could not be read and were left out "
                f"({names}{more}); see the files not loaded"
            )
        positions = np.array([f.position for f in frames])
        plan = plan_stack(positions, orientation, fallback)
        warnings += plan.warnings
        ordered = [frames[i] for i in plan.order]
        try:
            array = read_stack(ordered, ctx.tick)
            break
        except (FrameReadError, px.NativeReadError) as exc:
            ctx.errors.append(LoadError(exc.path, exc.reason))
            dropped.append(exc.path)
            frames = [f for f in frames if f.path != exc.path]
            if not frames:
                return None  # every file is already listed with its own reason
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
    rows, cols = to_int(v0["Rows"]), to_int(v0["Columns"])
    max_label = max((f.segment or 1) for f in placed)
    dtype = np.uint8 if max_label < 256 else np.uint16
    labels = np.zeros((len(plan.order), rows, cols), dtype=dtype)
    decoder = Decoded(placed)
    failed: set[str] = set()
    try:
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
    finally:
        decoder.close()
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

    is_seg = text(frames[0].values.get("SOPClassUID")) == SEG_SOP
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
    for f, key in zip(frames, split_keys(frames), strict=True):
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
    modality = text(frames[0].values.get("Modality")).upper()
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
        phases = split_phases(members)
        if phases:
            parts, notes = phases, [f"positions repeat: split into {len(phases)} phases/echoes"]
        else:
            parts, notes = [members], []
        for part in parts:
            part_uid = next_uid()
            try:
                volume = _volume(part, part_uid, ctx, notes)
                if volume is not None:
                    results.append(volume)
            except LoadCancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad stack must not sink the others
                reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
                ctx.errors.append(series_error(part, part_uid, reason))
    return results


def load_dicom_files(
    paths: list[str], tick: Callable[[], None], skip_dicomdir: bool = False
) -> tuple[list[DicomSeries], list[LoadError]]:
    """Header pass + series building for ``paths`` (each a candidate DICOM file)."""
    ctx = _Ctx(tick)
    groups: dict[tuple[str, str], list[Frame]] = defaultdict(list)
    warmed = False
    for path in paths:
        try:
            header = read_header(path)
            sop = text(header.values.get("SOPClassUID"))
            if sop == DICOMDIR_SOP:
                if not skip_dicomdir:
                    ctx.errors.append(LoadError(path, "DICOMDIR (an index, not an image)"))
                tick()
                continue
            frames = frames_of(header)
            if not warmed and is_compressed(header.transfer_syntax):
                decode_pool.warm()  # the children start while the other headers are read
                warmed = True
        except LoadCancelled:
            raise
        except NotDicom as exc:
            ctx.errors.append(LoadError(path, str(exc)))
        except ValueError as exc:
            ctx.errors.append(LoadError(path, str(exc)))
        except OSError as exc:
            ctx.errors.append(LoadError(path, os_reason(exc)))
        except MemoryError:
            ctx.errors.append(LoadError(path, "not enough memory to read the header"))
        except Exception as exc:  # noqa: BLE001 - malformed files raise anything in pydicom
            detail = " ".join(str(exc).split())[:200]
            ctx.errors.append(LoadError(path, f"unreadable DICOM ({type(exc).__name__}: {detail})"))
        else:
            groups[group_key(header)].extend(frames)
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
        except (ValueError, StackError) as exc:
            ctx.errors.append(series_error(frames, series_uid, str(exc)))
            continue
        except OSError as exc:
            ctx.errors.append(series_error(frames, series_uid, os_reason(exc)))
            continue
        except MemoryError:
            ctx.errors.append(series_error(frames, series_uid, "not enough memory"))
            continue
        except Exception as exc:  # noqa: BLE001 - one bad series must not sink the others
            ctx.errors.append(series_error(frames, series_uid, f"{type(exc).__name__}: {exc}"))
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
