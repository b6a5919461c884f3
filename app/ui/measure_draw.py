"""Drawing measurements in a ``SliceView``: lines, ellipses, boxes and their labels.

One ``MeasureOverlay`` per view adds its own actors to the view's renderer and refreshes them
just before each render (a VTK ``StartEvent`` observer), so whatever redraws the view (a
scroll, a window change, a new series) also shows the measurements of the slice now on
screen; the actors are rebuilt only when what is to be drawn changed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from vtkmodules.vtkRenderingCore import vtkTextActor

from app.ui.slice_view import SliceView
from app.ui.vtk_props import line_actor, polydata, text_actor
from app.viewstate.measurements import Measurement, plane_xy

DONE_COLOUR = (255, 230, 0)  # finished measurements: yellow, as the ruler
PENDING_COLOUR = (255, 140, 0)  # the one being drawn: orange
_Z = 0.8  # above the image (0), overlay lines (0.5) and the ruler (0.7)


def shape_points(kind: str, xy: np.ndarray) -> list[np.ndarray]:
    """Plane-mm polylines that draw a measurement of ``kind`` from its (n, 2) points."""
    if kind in ("ellipse", "rectangle") and len(xy) == 2:
        (x0, y0), (x1, y1) = xy
        if kind == "rectangle":
            return [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]])]
        t = np.linspace(0, 2 * math.pi, 73)
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2, abs(y1 - y0) / 2
        return [np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)]
    if kind == "cobb":
        return [xy[n : n + 2] for n in range(0, len(xy), 2) if len(xy[n : n + 2]) == 2]
    return [xy] if len(xy) >= 2 else []


def label_anchor(kind: str, xy: np.ndarray) -> tuple[float, float]:
    """Where the value is written (plane mm); an ROI's label hangs below its left edge."""
    if kind in ("ellipse", "rectangle"):
        return float(xy[:, 0].min()), float(xy[:, 1].min())
    if kind == "angle":
        return float(xy[1, 0]), float(xy[1, 1])
    if kind == "cobb":
        return float(xy[:, 0].mean()), float(xy[:, 1].mean())
    return float(xy[-1, 0]), float(xy[-1, 1])


class MeasureOverlay:
    """The measurements of the shown slice, and the one being drawn, on one view."""

    def __init__(
        self, view: SliceView, shown: Callable[[SliceView], tuple[object, str] | None], source
    ) -> None:
        self.view = view
        self.shown = shown  # view -> (its ViewArea, view name), or None when not on screen
        self.source = source  # the MeasurementList
        self.pending: tuple[str, np.ndarray] | None = None  # (kind, plane-mm points so far)
        self._key: tuple | None = None
        self.mapper, self.actor = line_actor(view.renderer)
        self.actor.VisibilityOff()
        self.texts: list[vtkTextActor] = []
        self.drawn: list[Measurement] = []  # what the last refresh drew (for tests)
        view.renderer.AddObserver("StartEvent", lambda *_: self.refresh())

    def _text(self) -> vtkTextActor:
        actor = text_actor(self.view.renderer, 14, tuple(c / 255.0 for c in DONE_COLOUR))
        actor.GetPositionCoordinate().SetCoordinateSystemToWorld()
        return actor

    def visible(self) -> list[Measurement]:
        """The measurements drawn on the slice this view shows now."""
        where = self.shown(self.view)
        if where is None:
            return []
        area, name = where
        if area.series is None or area.cross is None or name not in area.cross.planes:
            return []
        plane = area.cross.planes[name]
        depth = area.cross.depth(name)
        uid = area.series.series_uid
        return [m for m in self.source if m.series_uid == uid and m.on_plane(plane.normal, depth)]

    def refresh(self) -> None:
        where = self.shown(self.view)
        items = self.visible()
        pend = self.pending if where is not None else None
        plane = where[0].cross.planes[where[1]] if items or pend else None
        key = (
            tuple(m.id for m in items),
            id(plane),
            None if pend is None else (pend[0], pend[1].tobytes()),
        )
        if key == self._key:
            return
        self._key = key
        self.drawn = items
        segments = []
        labels: list[tuple[str, float, float, bool]] = []
        for m in items:
            xy = plane_xy(plane, m.points)
            for line in shape_points(m.kind, xy):
                segments.append((line, DONE_COLOUR, False))
            x, y = label_anchor(m.kind, xy)
            if m.kind in ("ellipse", "rectangle"):  # three short lines: stays on the image
                labels.append((f"{m.name}\n{m.text().replace('  ', chr(10))}", x, y, True))
            else:
                labels.append((f"{m.name}: {m.text()}", x, y, False))
        if pend is not None:
            for line in shape_points(pend[0], pend[1]):
                segments.append((line, PENDING_COLOUR, False))
        if segments:
            self.mapper.SetInputData(polydata(segments, _Z))
        self.actor.SetVisibility(bool(segments))
        while len(self.texts) < len(labels):
            self.texts.append(self._text())
        for actor, (text, x, y, below) in zip(self.texts, labels, strict=False):
            actor.SetInput(text)
            actor.GetTextProperty().SetVerticalJustification(2 if below else 0)  # top / bottom
            actor.GetPositionCoordinate().SetValue(x, y, _Z)
            actor.VisibilityOn()
        for actor in self.texts[len(labels) :]:
            actor.VisibilityOff()

    def invalidate(self) -> None:
        """Something drawn changed (a measurement added or removed): rebuild on next render."""
        self._key = None
