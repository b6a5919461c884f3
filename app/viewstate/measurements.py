"""The reader's measurements: length, angle, Cobb angle, ellipse and rectangle ROIs.

Every measurement is kept in world LPS millimetres (the points the reader clicked, mapped
through the view's plane), so its value does not depend on the screen, the zoom or the level
of detail, and an anisotropic pixel grid is measured in millimetres, not pixels. ROI
statistics are taken over the voxels of the volume itself whose centres fall inside the
drawn shape and within half a slice of its plane (no resampling, so no invented values).

Plane millimetres (x to screen right, y up) are what ``SliceView`` reports; ``world_of`` and
``plane_xy`` convert through a ``PlaneGrid`` and a depth, the same way the views do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from app.study.geometry import ImageVolume
from app.viewstate.planes import PlaneGrid

POINTS_NEEDED = {"length": 2, "angle": 3, "cobb": 4, "ellipse": 2, "rectangle": 2}
TITLES = {
    "length": "Length",
    "angle": "Angle",
    "cobb": "Cobb angle",
    "ellipse": "Ellipse",
    "rectangle": "Rectangle",
}
ROI_KINDS = ("ellipse", "rectangle")


# ---- plane <-> world ------------------------------------------------------------------
def world_of(plane: PlaneGrid, depth: float, x_mm: float, y_mm: float) -> np.ndarray:
    """The LPS point under plane millimetres (x, y) of a view showing ``plane`` at ``depth``."""
    return plane.world(y_mm / plane.spacing[0], x_mm / plane.spacing[1], depth)


def plane_xy(plane: PlaneGrid, xyz: np.ndarray) -> np.ndarray:
    """(..., 3) LPS points -> (..., 2) plane millimetres (x, y) of ``plane``."""
    rcd = plane.to_plane(xyz)
    return np.stack([rcd[..., 1] * plane.spacing[1], rcd[..., 0] * plane.spacing[0]], axis=-1)


# ---- the geometry ------------------------------------------------------------------------
def length_mm(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(b, float) - np.asarray(a, float)))


def _angle_between(u: np.ndarray, v: np.ndarray) -> float:
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu < 1e-9 or nv < 1e-9:
        return 0.0
    cos = float(np.clip(np.dot(u, v) / (nu * nv), -1.0, 1.0))
    return math.degrees(math.acos(cos))


def angle_deg(a: np.ndarray, vertex: np.ndarray, c: np.ndarray) -> float:
    """The angle at ``vertex`` between the rays to ``a`` and to ``c`` (0..180 degrees)."""
    vertex = np.asarray(vertex, float)
    return _angle_between(np.asarray(a, float) - vertex, np.asarray(c, float) - vertex)


def cobb_deg(points: np.ndarray, right: np.ndarray) -> float:
    """Cobb angle between line (p0, p1) and line (p2, p3).

    A line has no direction, so each is oriented toward screen right (``right``, the plane's
    column axis) before the angle is taken: two endplates tilted 50 degrees each way read 100
    degrees (a severe curve), where the acute angle between the lines would say 80.
    """
    p = np.asarray(points, float)
    right = np.asarray(right, float)
    d1, d2 = p[1] - p[0], p[3] - p[2]
    if d1 @ right < 0:
        d1 = -d1
    if d2 @ right < 0:
        d2 = -d2
    return _angle_between(d1, d2)


@dataclass
class RoiStats:
    mean: float
    sd: float  # population SD of the voxel values (ddof 0)
    n_pixels: int
    area_mm2: float  # of the drawn shape, not of the voxels counted

    def to_json(self) -> dict:
        return {"mean": self.mean, "sd": self.sd, "n_pixels": self.n_pixels,
                "area_mm2": self.area_mm2}  # fmt: skip

    @classmethod
    def from_json(cls, d: dict) -> RoiStats:
        return cls(float(d["mean"]), float(d["sd"]), int(d["n_pixels"]), float(d["area_mm2"]))


def roi_stats(
    volume: ImageVolume,
    kind: str,
    a: np.ndarray,
    b: np.ndarray,
    right: np.ndarray,
    up: np.ndarray,
    half_depth: float,
) -> RoiStats:
    """Mean and SD of the voxels inside the ellipse or rectangle with opposite corners ``a``
    and ``b`` (LPS, in one plane; sides along ``right`` and ``up``), within ``half_depth`` mm
    of that plane; the area is the drawn shape's, in mm²."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    right, up = np.asarray(right, float), np.asarray(up, float)
    normal = np.cross(right, up)
    centre = (a + b) / 2
    hw, hh = abs((b - a) @ right) / 2, abs((b - a) @ up) / 2
    area = math.pi * hw * hh if kind == "ellipse" else 4 * hw * hh
    # the voxel index box around the shape's slab, one voxel of margin
    corners = np.array([centre + sx * hw * right + sy * hh * up + sz * half_depth * normal
                        for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])  # fmt: skip
    ijk = volume.world_to_index(corners)
    size = np.array(volume.shape[::-1])
    lo = np.clip(np.floor(ijk.min(axis=0)).astype(int) - 1, 0, size)
    hi = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 2, 0, size)
    if np.any(hi <= lo):
        return RoiStats(float("nan"), float("nan"), 0, area)
    # u, v, w (mm along right, up, normal from the centre) are linear in (i, j, k): built by
    # broadcasting three 1-D ranges, never a per-voxel coordinate matrix (a whole radiograph
    # is 4 million voxels)
    aff = volume.affine_lps()
    rel = aff[:3, 3] - centre
    ii = np.arange(lo[0], hi[0])[None, None, :]
    jj = np.arange(lo[1], hi[1])[None, :, None]
    kk = np.arange(lo[2], hi[2])[:, None, None]

    def along(axis: np.ndarray) -> np.ndarray:
        ci, cj, ck = aff[:3, :3].T @ axis
        return (rel @ axis) + ci * ii + cj * jj + ck * kk

    u, v, w = along(right), along(up), along(normal)
    # strictly inside half a slice: one layer of voxels, never two
    inside = np.abs(w) < half_depth * (1 - 1e-6)
    if kind == "ellipse":
        inside &= (u / max(hw, 1e-9)) ** 2 + (v / max(hh, 1e-9)) ** 2 <= 1.0 + 1e-9
    else:
        inside &= (np.abs(u) <= hw + 1e-9) & (np.abs(v) <= hh + 1e-9)
    n = int(inside.sum())
    if n == 0:
        return RoiStats(float("nan"), float("nan"), 0, area)
    block = volume.array[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]]
    values = block[inside].astype(np.float64)
    if values.ndim == 2:  # RGB: the grey value as the viewer's hover shows it
        values = values.mean(axis=1)
    return RoiStats(float(values.mean()), float(values.std()), int(len(values)), float(area))


def value_unit(modality: str, rgb: bool = False) -> str:
    """What ROI values are: Hounsfield units for CT, the stored values otherwise."""
    if (modality or "").upper() == "CT":
        return "HU"
    return "raw (grey of RGB)" if rgb else "raw (not HU)"


# ---- the measurement ----------------------------------------------------------------------
@dataclass(eq=False)  # identity: two measurements with the same points are still two
class Measurement:
    """One measurement on one plane of one series; points are LPS mm."""

    kind: str
    points: np.ndarray  # (n, 3)
    series_uid: str
    view: str  # the orientation it was drawn on: "axial", "sagittal", "coronal", "native"
    right: np.ndarray  # that plane's screen-right axis (LPS unit vector)
    up: np.ndarray  # its screen-up axis
    slab_mm: float  # the plane's slice step: what counts as "on this slice"
    slice_index: int = 0  # 1-based, as the view's corner says it
    name: str = ""
    value: float = float("nan")  # mm, degrees, or the ROI mean
    unit: str = ""
    stats: RoiStats | None = None
    id: int = 0

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.right, self.up)

    def text(self) -> str:
        """The value as the view's label and the report say it."""
        if self.kind == "length":
            return f"{self.value:.1f} mm"
        if self.kind in ("angle", "cobb"):
            return f"{self.value:.1f}°"
        s = self.stats
        if s is None or s.n_pixels == 0:
            return f"no pixels inside  area {s.area_mm2 if s else 0:.1f} mm²"
        return f"mean {s.mean:.1f} SD {s.sd:.1f} {self.unit}  area {s.area_mm2:.1f} mm²"

    def on_plane(self, normal: np.ndarray, depth: float) -> bool:
        """Drawn on a view whose plane has this normal and depth (same slice)?"""
        if abs(float(np.dot(self.normal, normal))) < 0.999:
            return False
        d = float(np.mean(self.points @ np.asarray(normal, float)))
        return abs(d - depth) < max(self.slab_mm, 1e-3) / 2

    def centre(self) -> np.ndarray:
        return np.asarray(self.points, float).mean(axis=0)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "points_lps": [[round(float(c), 4) for c in p] for p in self.points],
            "series_uid": self.series_uid,
            "view": self.view,
            "right": [float(c) for c in self.right],
            "up": [float(c) for c in self.up],
            "slab_mm": self.slab_mm,
            "slice_index": self.slice_index,
            "value": None if math.isnan(self.value) else self.value,
            "unit": self.unit,
            "stats": self.stats.to_json() if self.stats else None,
        }

    @classmethod
    def from_json(cls, d: dict) -> Measurement:
        kind = str(d["kind"])
        if kind not in POINTS_NEEDED:
            raise ValueError(f"unknown measurement kind {kind!r}")
        points = np.asarray(d["points_lps"], dtype=float).reshape(-1, 3)
        if len(points) != POINTS_NEEDED[kind]:
            raise ValueError(f"a {kind} needs {POINTS_NEEDED[kind]} points, got {len(points)}")
        value = d.get("value")
        return cls(
            kind=kind,
            points=points,
            series_uid=str(d.get("series_uid", "")),
            view=str(d.get("view", "")),
            right=np.asarray(d["right"], dtype=float),
            up=np.asarray(d["up"], dtype=float),
            slab_mm=float(d.get("slab_mm", 1.0)),
            slice_index=int(d.get("slice_index", 0)),
            name=str(d.get("name", "")),
            value=float("nan") if value is None else float(value),
            unit=str(d.get("unit", "")),
            stats=RoiStats.from_json(d["stats"]) if d.get("stats") else None,
            id=int(d.get("id", 0)),
        )


def measure(
    kind: str,
    points: np.ndarray,
    plane: PlaneGrid,
    volume: ImageVolume,
    modality: str = "",
    series_uid: str = "",
    slice_index: int = 0,
) -> Measurement:
    """A measurement of ``kind`` from its LPS points on ``plane``, with its value computed."""
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    if len(points) != POINTS_NEEDED[kind]:
        raise ValueError(f"a {kind} needs {POINTS_NEEDED[kind]} points, got {len(points)}")
    m = Measurement(kind, points, series_uid, plane.orientation, plane.col_axis.copy(),
                    plane.row_axis.copy(), float(plane.depth_step), slice_index)  # fmt: skip
    if kind == "length":
        m.value, m.unit = length_mm(points[0], points[1]), "mm"
    elif kind == "angle":
        m.value, m.unit = angle_deg(points[0], points[1], points[2]), "°"
    elif kind == "cobb":
        m.value, m.unit = cobb_deg(points, plane.col_axis), "°"
    else:
        m.stats = roi_stats(volume, kind, points[0], points[1], plane.col_axis, plane.row_axis,
                            float(plane.depth_step) / 2)  # fmt: skip
        m.value, m.unit = m.stats.mean, value_unit(modality, volume.is_rgb)
    return m


class MeasurementList:
    """The session's measurements, in the order drawn; listeners hear ("added" | "removed" |
    "cleared", measurement or None).

    Measurements belong to the study they were drawn on. The list keeps every measurement of
    the session and shows (iterates, counts, saves, clears) only those on the series of the
    open study, its ``scope``: opening study B hides A's, opening A again shows them, and
    nothing the reader drew is lost. Scoping by the series UID each measurement already
    carries, rather than a second key by StudyInstanceUID, means a measurement's study cannot
    disagree with its series, and the scope is exactly what a saved viewer state reopens (its
    ``study_path``), so a state saves the measurements its restore brings back. ``None`` (the
    default, no study open) shows them all.
    """

    def __init__(self) -> None:
        self._all: list[Measurement] = []
        self.scope: frozenset[str] | None = None
        self._next_id = 1
        self._listeners: list[Callable[[str, Measurement | None], None]] = []

    @property
    def items(self) -> list[Measurement]:
        """The open study's measurements, in the order drawn."""
        return [m for m in self._all if self._in_scope(m)]

    def _in_scope(self, m: Measurement) -> bool:
        return self.scope is None or m.series_uid in self.scope

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def subscribe(self, fn: Callable[[str, Measurement | None], None]) -> None:
        self._listeners.append(fn)

    def unsubscribe(self, fn) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def _emit(self, what: str, m: Measurement | None) -> None:
        for fn in list(self._listeners):
            fn(what, m)

    def set_scope(self, series_uids: Iterable[str] | None) -> None:
        """Show the measurements on these series (the open study's); listeners hear "cleared"
        (what they list was replaced)."""
        scope = None if series_uids is None else frozenset(series_uids)
        if scope != self.scope:
            self.scope = scope
            self._emit("cleared", None)

    def add(self, m: Measurement) -> Measurement:
        m.id = self._next_id
        self._next_id += 1
        if not m.name:  # numbered within its study: study B's first length is "Length 1"
            same = sum(1 for x in self.items if x.kind == m.kind)
            m.name = f"{TITLES[m.kind]} {same + 1}"
        self._all.append(m)
        self._emit("added", m)
        return m

    def remove(self, m: Measurement) -> None:
        if m in self._all:
            self._all.remove(m)
            self._emit("removed", m)

    def clear(self) -> None:
        """Delete the open study's measurements (other studies' are not on screen to see go)."""
        self._all = [m for m in self._all if not self._in_scope(m)]
        self._emit("cleared", None)

    def on_series(self, series_uid: str) -> list[Measurement]:
        return [m for m in self.items if m.series_uid == series_uid]

    def to_json(self) -> list[dict]:
        """The open study's measurements (what a saved state of this study holds)."""
        return [m.to_json() for m in self.items]

    def apply_json(self, data: list[dict]) -> None:
        """Replace the open study's measurements by a saved one's (a restored reading); the
        other studies' are kept. A saved id another study's measurement holds is renumbered:
        the views tell drawn measurements apart by id."""
        restored = [Measurement.from_json(d) for d in data]
        kept = [m for m in self._all if not self._in_scope(m)]
        taken = {m.id for m in kept}
        top = max((m.id for m in [*kept, *restored]), default=0)
        for m in restored:
            if m.id in taken or m.id <= 0:
                top += 1
                m.id = top
            taken.add(m.id)
        self._all = kept + restored
        self._next_id = top + 1
        self._emit("cleared", None)


def measurement_lines(measurements: list[Measurement]) -> list[str]:
    """One line per measurement, as the report prints them."""
    return [f"{m.name} ({m.view} slice {m.slice_index}): {m.text()}" for m in measurements]


__all__ = [
    "POINTS_NEEDED",
    "ROI_KINDS",
    "TITLES",
    "Measurement",
    "MeasurementList",
    "RoiStats",
    "angle_deg",
    "cobb_deg",
    "length_mm",
    "measure",
    "measurement_lines",
    "plane_xy",
    "roi_stats",
    "value_unit",
    "world_of",
]
