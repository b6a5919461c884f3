"""Frames -> one pixel array: the fast native path, or pydicom decoding (compressed data in the
``decode_pool`` children), with every decoded array checked against the header before use."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from app.study import decode_pool
from app.study import dicom_pixels as px
from app.study.dicom_frames import COLOR_PHOTOMETRIC, Frame, is_compressed
from app.study.dicom_values import text, to_int


class FrameReadError(ValueError):
    """The pixels of one file could not be read; the rest of its series may still load."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def photometric(frame: Frame) -> str:
    return text(frame.values.get("PhotometricInterpretation")).upper()


def is_color(frame: Frame) -> bool:
    samples = to_int(frame.values.get("SamplesPerPixel"), 1) or 1
    return samples > 1 or photometric(frame) in COLOR_PHOTOMETRIC


def _compressed(frame: Frame) -> bool:
    return is_compressed(frame.header.transfer_syntax)


def _declared(frame: Frame) -> tuple[int, int, int, int]:
    v = frame.values
    return (
        to_int(v.get("NumberOfFrames"), 1) or 1,
        to_int(v.get("Rows"), 0) or 0,
        to_int(v.get("Columns"), 0) or 0,
        to_int(v.get("SamplesPerPixel"), 1) or 1,
    )


def _check_shape(arr: np.ndarray, frame: Frame) -> None:
    """The decoder's array must be what the header declared (frames, rows, columns)."""
    n, rows, cols, _samples = _declared(frame)
    lead = (n, rows, cols) if n > 1 else (rows, cols)
    extra = arr.shape[len(lead) :]
    if tuple(arr.shape[: len(lead)]) != lead or extra not in ((), (3,)):
        raise FrameReadError(
            frame.path, f"decoded pixels are {arr.shape}, the header declares {lead}"
        )


class Decoded:
    """Each file's pixel data decoded once; frames are then taken from it. Compressed files
    are handed to the decoder pool ahead of use, in the order they will be asked for."""

    def __init__(self, frames: list[Frame]) -> None:
        self.path: str | None = None
        self.array: np.ndarray | None = None
        jobs: list[tuple[str, float]] = []
        for f in frames:
            if not _compressed(f) or decode_pool.in_process() or (jobs and jobs[-1][0] == f.path):
                continue
            n, rows, cols, samples = _declared(f)
            bits = to_int(f.values.get("BitsAllocated"), 16) or 16
            jobs.append((f.path, decode_pool.timeout_for(n * rows * cols * samples * bits // 8)))
        self._stream: Iterator | None = decode_pool.pool().decode_many(jobs) if jobs else None
        self._early: dict[str, decode_pool.Outcome] = {}

    def _outcome(self, frame: Frame) -> decode_pool.Outcome:
        if self._stream is None or not _compressed(frame) or decode_pool.in_process():
            return decode_pool.decode_here(frame.path)
        if frame.path in self._early:
            return self._early.pop(frame.path)
        for path, outcome in self._stream:
            if path == frame.path:
                return outcome
            self._early[path] = outcome  # asked for out of order: kept for later
        # Not among the planned jobs (asked for twice): decode it alone, still in a child.
        single = decode_pool.pool().decode_many([(frame.path, decode_pool.timeout_for(0))])
        return next(single)[1]

    def get(self, frame: Frame) -> np.ndarray:
        if frame.path != self.path:
            self.path, self.array = frame.path, None
            status, value = self._outcome(frame)
            if status != "ok" or not isinstance(value, np.ndarray):
                raise FrameReadError(frame.path, str(value))
            _check_shape(value, frame)
            self.array = value
        arr = self.array
        n_frames = _declared(frame)[0]
        if frame.index is None or n_frames == 1:
            return arr
        return arr[frame.index]

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()  # type: ignore[attr-defined]
            self._stream = None


def _native_ok(frames: list[Frame]) -> bool:
    """True when the fast readinto path applies to every frame."""
    for f in frames:
        v = f.values
        if f.header.pixel_offset is None or f.index is not None or is_color(f):
            return False
        if to_int(v.get("BitsAllocated")) != 16:
            return False
        signed = to_int(v.get("PixelRepresentation"), 0) == 1
        if signed and to_int(v.get("BitsStored"), 16) != 16:
            return False
        if f.header.pixel_length < 2 * (to_int(v["Rows"]) or 0) * (to_int(v["Columns"]) or 0):
            return False
    return True


def read_stack(
    frames: list[Frame], tick: Callable[[], None], keep_stored: bool = False
) -> np.ndarray:
    """Pixels of ``frames`` in order -> (n, rows, cols) or (n, rows, cols, 3) RGB uint8."""
    v0 = frames[0].values
    rows, cols = to_int(v0["Rows"]) or 0, to_int(v0["Columns"]) or 0
    slopes = [f.slope for f in frames]
    intercepts = [f.intercept for f in frames]
    if not keep_stored and _native_ok(frames):
        return px.read_native_stack(  # raises NativeReadError naming the file
            [f.path for f in frames],
            [f.header.pixel_offset for f in frames],
            (rows, cols),
            to_int(v0.get("PixelRepresentation"), 0) == 1,
            to_int(v0.get("BitsStored"), 16) or 16,
            slopes,
            intercepts,
            tick,
        )
    decoder = Decoded(frames)
    try:
        return _decode_stack(frames, decoder, tick, keep_stored, (rows, cols))
    finally:
        decoder.close()


def _decode_stack(
    frames: list[Frame],
    decoder: Decoded,
    tick: Callable[[], None],
    keep_stored: bool,
    size: tuple[int, int],
) -> np.ndarray:
    v0 = frames[0].values
    slopes = [f.slope for f in frames]
    intercepts = [f.intercept for f in frames]
    first = decoder.get(frames[0])
    color = first.ndim == 3
    unit = all(s == 1 for s in slopes) and all(i == 0 for i in intercepts)
    if color:
        dtype = np.dtype(np.uint8)
    elif keep_stored and unit:
        dtype = first.dtype if first.dtype.kind in "iu" else np.dtype(np.float32)
    else:
        bits = to_int(v0.get("BitsStored"), first.dtype.itemsize * 8) or 16
        signed = first.dtype.kind == "i"
        dtype = px.decide_dtype(bits, signed, first.dtype.kind == "f", slopes, intercepts)
    out = np.empty((len(frames), *size) + ((3,) if color else ()), dtype=dtype)
    last_path = None
    for k, frame in enumerate(frames):
        data = decoder.get(frame)
        if data.shape[:2] != size or (data.ndim == 3 and not color):
            raise FrameReadError(frame.path, f"frame size {data.shape} differs from {size}")
        if color:
            if data.ndim == 2:
                data = np.repeat(data[..., None], 3, axis=2)
            out[k] = px.to_rgb8(data, data.dtype.itemsize * 8)
        else:
            px.put_rescaled(out[k], data, frame.slope, frame.intercept)
        if frame.path != last_path:
            tick()
            last_path = frame.path
    if not color and not keep_stored:
        out = px.maybe_int16(out)
    return out
