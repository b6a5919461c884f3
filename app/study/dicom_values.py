"""Tag values as numbers, and the checks that keep impossible values out of the geometry.

A header value that cannot describe a real image (a pixel 0 mm wide, a direction of 1e308, a
position a kilometre away) is never used silently: it is either ignored with a note that becomes
a series warning (the viewer shows them), or the file is refused with the reason.
"""

from __future__ import annotations

import errno
import math

import numpy as np

from app.study.model import PatientInfo

# Beyond these a value is corruption, not anatomy: 1 km from the scanner's origin, pixels or
# slices smaller than a nanometre or larger than 100 m.
MAX_COORD_MM = 1e6
MIN_SIZE_MM, MAX_SIZE_MM = 1e-6, 1e5
# float32 keeps 24 bits of mantissa: an intercept more than 2**20 slopes away leaves neighbouring
# stored values indistinguishable after rescaling (RescaleIntercept 1e38 -> window width 0).
MAX_INTERCEPT_PER_SLOPE = 2.0**20
FLOAT32_MAX = 3.0e38


# ---------------------------------------------------------------- plain conversions
def floats(value: object, n: int | None = None) -> np.ndarray | None:
    """Numbers of a DS/FD value (finite only), or None."""
    if value is None or value == "":
        return None
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        items = str(value).split("\\")
    else:
        items = list(value)
    try:
        arr = np.array([float(v) for v in items], dtype=float)
    except (TypeError, ValueError, OverflowError):
        return None
    if n is not None and arr.size != n:
        return None
    if not np.all(np.isfinite(arr)):
        return None
    return arr


def first_float(value: object) -> float | None:
    arr = floats(value)
    return None if arr is None or arr.size == 0 else float(arr[0])


def to_int(value: object, default: int | None = None) -> int | None:
    if not isinstance(value, str | bytes | int | float) and hasattr(value, "__iter__"):
        value = next(iter(value), None)
    try:
        return int(float(str(value))) if value not in (None, "") else default
    except (TypeError, ValueError, OverflowError):
        return default


def text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def shown(value: object, limit: int = 40) -> str:
    """A raw tag value as a message shows it (short, one line)."""
    s = " ".join(text(value).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def window(center: object, width: object) -> tuple[float, float] | None:
    """The stored display window, unless it has no width the display can resolve (a centre
    of 1e38 swallows any width in float32); then the viewer picks one from the pixels."""
    c, w = first_float(center), first_float(width)
    if c is None or w is None or w <= 0 or max(abs(c), w) > FLOAT32_MAX:
        return None
    if w < abs(c) * 1e-6 and not np.float32(c + w / 2) > np.float32(c - w / 2):
        return None
    return (c, w)


def patient_of(values: dict) -> PatientInfo:
    return PatientInfo(
        name=text(values.get("PatientName")),
        patient_id=text(values.get("PatientID")),
        birth_date=text(values.get("PatientBirthDate")),
        sex=text(values.get("PatientSex")),
        study_date=text(values.get("StudyDate")),
        accession=text(values.get("AccessionNumber")),
        study_description=text(values.get("StudyDescription")),
    )


# ---------------------------------------------------------------- checked geometry values
def _possible_size(x: float) -> bool:
    return MIN_SIZE_MM <= x <= MAX_SIZE_MM


def size_mm(value: object, name: str, notes: list[str]) -> float | None:
    """A positive length (SliceThickness, SpacingBetweenSlices); impossible ones are noted."""
    if value is None or value == "":
        return None
    x = first_float(value)
    if x is not None and _possible_size(x):
        return x
    notes.append(f"{name} {shown(value)} is not a possible size: ignored")
    return None


def pixel_spacing(
    candidates: list[tuple[str, object]], notes: list[str]
) -> tuple[float, float] | None:
    """The first possible (row, column) spacing among ``(keyword, value)`` candidates."""
    for kw, value in candidates:
        if value is None or value == "":
            continue
        arr = floats(value, 2)
        if arr is not None and all(_possible_size(float(x)) for x in arr):
            return (float(arr[0]), float(arr[1]))
        notes.append(f"{kw} {shown(value)} is not a possible pixel size: ignored")
    return None


def position(value: object, notes: list[str], name: str = "ImagePositionPatient"):
    """An LPS position in mm within MAX_COORD_MM of the origin, else None (noted)."""
    if value is None or value == "":
        return None
    arr = floats(value, 3)
    if arr is not None and max(abs(x) for x in arr.tolist()) <= MAX_COORD_MM:
        return arr
    notes.append(f"{name} {shown(value)} is not a possible position: ignored")
    return None


def orientation(value: object, notes: list[str]) -> np.ndarray | None:
    """Two perpendicular unit vectors (normalised), else None (noted).

    Scanners write the cosines rounded to a few decimals, so small deviations from unit length
    and perpendicularity are accepted and normalised away; a zero, huge or slanted pair is not.
    """
    if value is None or value == "":
        return None
    arr = floats(value, 6)
    if arr is not None:
        # Plain floats: this runs once per file, where numpy's per-call overhead shows.
        v = arr.tolist()
        row, col = v[:3], v[3:]
        n_row, n_col = math.hypot(*row), math.hypot(*col)
        if 0.9 < n_row < 1.1 and 0.9 < n_col < 1.1:  # also False for inf and nan
            row, col = [x / n_row for x in row], [x / n_col for x in col]
            if abs(sum(a * b for a, b in zip(row, col, strict=True))) < 0.01:
                return np.array(row + col)
    notes.append(
        f"ImageOrientationPatient {shown(value, 60)} is not two perpendicular unit vectors: ignored"
    )
    return None


def rescale(slope: float | None, intercept: float | None, bits_stored: int) -> tuple[float, float]:
    """(slope, intercept) with slope 0/absent -> 1; ValueError when the values cannot be shown
    (they overflow float32, or the intercept swamps the slope)."""
    slope = slope if slope not in (None, 0.0) else 1.0
    intercept = intercept or 0.0
    top = abs(slope) * 2.0 ** min(max(bits_stored, 1), 64) + abs(intercept)
    if not np.isfinite(top) or top > FLOAT32_MAX:
        raise ValueError(
            f"RescaleSlope {slope:g} / RescaleIntercept {intercept:g} overflow the pixel values"
        )
    if abs(intercept) > MAX_INTERCEPT_PER_SLOPE * abs(slope):
        raise ValueError(
            f"RescaleIntercept {intercept:g} swamps RescaleSlope {slope:g}: the rescaled pixel "
            "values would all be equal"
        )
    return slope, intercept


# ---------------------------------------------------------------- operating-system errors
_WHY = {
    errno.EACCES: "permission denied (check the file's permissions and owner)",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "it no longer exists",
    errno.EISDIR: "it is a folder",
    errno.EIO: "input/output error (damaged disk or lost network share)",
    errno.ELOOP: "too many levels of symbolic links",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.ENOMEM: "not enough memory",
    errno.EMFILE: "too many open files",
}


def os_reason(exc: OSError, what: str = "the file") -> str:
    """``cannot read the file: permission denied (...)``, never a raw ``[Errno 13]``."""
    why = _WHY.get(exc.errno or -1)
    if why is None:  # errno-less OSErrors (pydicom raises them) carry their reason as text
        why = " ".join(str(exc.strerror or exc or type(exc).__name__).split())[:200]
    return f"cannot read {what}: {why}"
