"""Pixel data into preallocated arrays, with RescaleSlope/Intercept applied, memory kept low.

Volumes come back as int16 when the rescaled values are integers that fit (typical CT), else
float32. The fast path (``read_native_stack``) reads each uncompressed slice's bytes straight into
one preallocated 16-bit buffer and rescales it in place with wrap-around uint16 arithmetic, which
gives the exact int16 result whenever the true value fits int16; if a slice does not fit, the
remaining work switches to float32 (peak: 2 + 4 bytes per voxel = 1.5x the float volume).
Everything else is decoded by pydicom (compressed syntaxes through its pylibjpeg/gdcm plugins).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

INT16_MIN, INT16_MAX = -32768, 32767


class NativeReadError(ValueError):
    """One file's pixel bytes could not be read (changed or truncated since the header pass)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def _is_integral(x: float) -> bool:
    return float(x).is_integer()


def fits_int16(lo: float, hi: float) -> bool:
    return INT16_MIN <= lo and hi <= INT16_MAX


def read_native_stack(
    paths: list[str],
    offsets: list[int],
    shape: tuple[int, int],
    signed: bool,
    bits_stored: int,
    slopes: list[float],
    intercepts: list[float],
    tick: Callable[[], None],
) -> np.ndarray:
    """Uncompressed 16-bit little-endian slices -> (n, rows, cols) int16 or float32."""
    n = len(paths)
    rows, cols = shape
    raw = np.empty((n, rows, cols), dtype=np.uint16)
    stored = raw.view(np.int16) if signed else raw
    nbytes = rows * cols * 2
    out_float: np.ndarray | None = None
    mask = (1 << bits_stored) - 1 if (not signed and bits_stored < 16) else None
    for k, (path, offset) in enumerate(zip(paths, offsets, strict=True)):
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                got = f.readinto(memoryview(raw[k]).cast("B"))
        except OSError as exc:
            raise NativeReadError(path, f"cannot read pixel data ({exc.strerror or exc})") from exc
        if got != nbytes:
            raise NativeReadError(path, f"truncated pixel data ({got} of {nbytes} bytes)")
        s = stored[k]
        lo, hi = int(s.min()), int(s.max())
        if mask is not None and hi > mask:  # bits above BitsStored (old overlay planes)
            np.bitwise_and(raw[k], np.uint16(mask), out=raw[k])
            lo, hi = int(s.min()), int(s.max())
        slope, intercept = slopes[k], intercepts[k]
        if out_float is None:
            a, b = slope * lo + intercept, slope * hi + intercept
            if _is_integral(slope) and _is_integral(intercept) and fits_int16(min(a, b), max(a, b)):
                if slope != 1:
                    np.multiply(raw[k], np.uint16(int(slope) % 65536), out=raw[k])
                if intercept != 0:
                    np.add(raw[k], np.uint16(int(intercept) % 65536), out=raw[k])
                tick()
                continue
            # Does not fit int16: everything from here on (and what is done) goes to float32.
            out_float = np.empty((n, rows, cols), dtype=np.float32)
            out_float[:k] = raw[:k].view(np.int16)
        dest = out_float[k]
        dest[...] = s
        if slope != 1:
            dest *= np.float32(slope)
        if intercept != 0:
            dest += np.float32(intercept)
        tick()
    if out_float is not None:
        return out_float
    return raw.view(np.int16)


def decide_dtype(
    bits_stored: int, signed: bool, is_float: bool, slopes: list[float], intercepts: list[float]
) -> np.dtype:
    """int16 when every possible stored value rescales to an int16 integer, else float32."""
    if is_float or not all(_is_integral(s) for s in slopes + intercepts):
        return np.dtype(np.float32)
    lo_s = -(1 << (bits_stored - 1)) if signed else 0
    hi_s = (1 << (bits_stored - 1)) - 1 if signed else (1 << bits_stored) - 1
    for slope, intercept in zip(slopes, intercepts, strict=True):
        a, b = slope * lo_s + intercept, slope * hi_s + intercept
        if not fits_int16(min(a, b), max(a, b)):
            return np.dtype(np.float32)
    return np.dtype(np.int16)


def put_rescaled(dest: np.ndarray, frame: np.ndarray, slope: float, intercept: float) -> None:
    """Write ``frame * slope + intercept`` into ``dest`` (int16 dest: rounded)."""
    if slope == 1 and intercept == 0:
        dest[...] = frame
        return
    value = frame.astype(np.float32)
    if slope != 1:
        value *= np.float32(slope)
    if intercept != 0:
        value += np.float32(intercept)
    dest[...] = np.rint(value) if dest.dtype.kind in "iu" else value


def maybe_int16(volume: np.ndarray) -> np.ndarray:
    """A float32 volume whose values are all int16 integers becomes int16 (half the memory)."""
    if volume.dtype != np.float32 or volume.size == 0:
        return volume
    lo, hi = float(volume.min()), float(volume.max())
    if not fits_int16(lo, hi):
        return volume
    sample = volume.reshape(-1)[:: max(1, volume.size // 1_000_000)]
    if not np.all(np.mod(sample, 1) == 0):
        return volume
    as_int = volume.astype(np.int16)
    if not np.array_equal(as_int, volume):
        return volume
    return as_int


def to_rgb8(arr: np.ndarray, bits_allocated: int) -> np.ndarray:
    """RGB of any bit depth to uint8 (display data; the viewer shows RGB as is)."""
    if arr.dtype == np.uint8:
        return arr
    top = float((1 << min(bits_allocated, 32)) - 1) if bits_allocated > 8 else 255.0
    if arr.dtype.kind == "f":
        top = max(float(arr.max()), 1.0)
    return np.clip(np.rint(arr.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
