"""Where the reader is: the crosshair (one world point shared by the linked views) and the whole
viewer state as one serialisable object (open study, series, window, slice positions, layers,
the open study's measurements, the layout).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.atomic import atomic_write_text
from app.study.geometry import ImageVolume
from app.viewstate.layout import LAYOUTS
from app.viewstate.planes import ORIENTATIONS, PlaneGrid, native_plane, plane_for
from app.viewstate.windowing import WindowLevel


class CrosshairState:
    """One LPS point; each linked view shows the plane of its family through that point."""

    def __init__(self, volume: ImageVolume, orientations: tuple[str, ...] = ORIENTATIONS) -> None:
        self.volume = volume
        if volume.is_2d:
            self.planes: dict[str, PlaneGrid] = {"native": native_plane(volume)}
        else:
            self.planes = {o: plane_for(volume, o) for o in orientations}
        self.point = self.centre()

    def centre(self) -> np.ndarray:
        nk, nj, ni = self.volume.shape
        return self.volume.index_to_world(np.array([(ni - 1) / 2, (nj - 1) / 2, (nk - 1) / 2]))

    def reset(self) -> None:
        self.point = self.centre()

    def depth(self, view: str) -> float:
        plane = self.planes[view]
        return plane.snap_depth(plane.depth_of(self.point))

    def slice_index(self, view: str) -> int:
        plane = self.planes[view]
        lo, _ = plane.depth_range
        return int(round((self.depth(view) - lo) / plane.depth_step)) if plane.depth_step else 0

    def scroll(self, view: str, steps: int) -> bool:
        """Move the point along the view's normal by whole slices; True when it moved."""
        plane = self.planes[view]
        before = self.depth(view)
        target = plane.snap_depth(before + steps * plane.depth_step)
        self.point = self.point + (target - plane.depth_of(self.point)) * plane.normal
        return abs(target - before) > 1e-9

    def go_to_end(self, view: str, last: bool) -> None:
        plane = self.planes[view]
        target = plane.depth_range[1] if last else plane.depth_range[0]
        self.point = self.point + (target - plane.depth_of(self.point)) * plane.normal

    def set_point(self, xyz: np.ndarray) -> None:
        """Move to a world point, clamped into the volume's depth range in every view."""
        p = np.asarray(xyz, dtype=float).copy()
        for plane in self.planes.values():
            d = plane.depth_of(p)
            p = p + (plane.clamp_depth(d) - d) * plane.normal
        self.point = p

    def set_in_plane(self, view: str, xyz: np.ndarray) -> None:
        """Click in a view: move within that view's plane, keeping its depth."""
        plane = self.planes[view]
        p = np.asarray(xyz, dtype=float)
        p = p + (self.depth(view) - plane.depth_of(p)) * plane.normal
        self.set_point(p)


@dataclass
class ViewerState:
    """Everything needed to bring a reading session back (the pixel data is reloaded from disk)."""

    study_path: str = ""
    series_uid: str = ""
    window: WindowLevel | None = None
    crosshair_lps: list[float] | None = None
    zoom: dict[str, float] = field(default_factory=dict)
    layers: list[dict] = field(default_factory=list)
    task: str = ""
    measurements: list[dict] = field(default_factory=list)  # MeasurementList.to_json()
    # the view area's layout ("1x1", "1x2", "1+2", "2x2"; app.viewstate.layout). What each cell
    # shows follows from it, the shown series and the study (plan_cells), so it is not saved;
    # "" (a file from before layouts were saved) keeps the layout the study hangs in
    layout: str = ""

    def to_json(self) -> dict:
        return {
            "version": 1,
            "study_path": self.study_path,
            "series_uid": self.series_uid,
            "window": self.window.to_json() if self.window else None,
            "crosshair_lps": [round(float(v), 4) for v in self.crosshair_lps]
            if self.crosshair_lps is not None
            else None,
            "zoom": {k: float(v) for k, v in self.zoom.items()},
            "layers": self.layers,
            "task": self.task,
            "measurements": self.measurements,
            "layout": self.layout,
        }

    @classmethod
    def from_json(cls, data: dict) -> ViewerState:
        if int(data.get("version", 1)) != 1:
            raise ValueError(f"unsupported viewer state version {data.get('version')}")
        window = WindowLevel.from_json(data["window"]) if data.get("window") else None
        layout = str(data.get("layout") or "")
        from app.viewstate.measurements import Measurement

        for m in data.get("measurements", []):  # a bad one is said when the file is opened
            Measurement.from_json(m)
        return cls(
            study_path=str(data.get("study_path", "")),
            series_uid=str(data.get("series_uid", "")),
            window=window,
            crosshair_lps=list(data["crosshair_lps"]) if data.get("crosshair_lps") else None,
            zoom=dict(data.get("zoom", {})),
            layers=list(data.get("layers", [])),
            task=str(data.get("task", "")),
            measurements=list(data.get("measurements", [])),
            # an unknown name (a newer or hand-edited file) keeps the study's own layout
            layout=layout if layout in LAYOUTS else "",
        )

    def save(self, path: Path) -> Path:
        return atomic_write_text(path, json.dumps(self.to_json(), indent=2))

    @classmethod
    def load(cls, path: Path) -> ViewerState:
        return cls.from_json(json.loads(Path(path).read_text()))
