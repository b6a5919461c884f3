"""The VTK props a 2-D view draws with, made one way for every view and overlay: polylines with
a colour per line (overlay outlines, the crosshair, the ruler, measurements) and screen-sized
text (captions, letters, labels)."""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkCommonCore import vtkPoints, vtkUnsignedCharArray
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper, vtkRenderer, vtkTextActor


def polydata(segments: list[tuple[np.ndarray, tuple[int, int, int], bool]], z: float):
    """Polylines (points (n, 2), colour, closed) -> vtkPolyData with per-cell colours."""
    pts = vtkPoints()
    cells = vtkCellArray()
    colours = vtkUnsignedCharArray()
    colours.SetNumberOfComponents(3)
    colours.SetName("colours")
    n = 0
    for points, colour, closed in segments:
        ids = list(range(n, n + len(points)))
        for x, y in points:
            pts.InsertNextPoint(float(x), float(y), z)
        if closed:
            ids.append(n)
        cells.InsertNextCell(len(ids), ids)
        colours.InsertNextTuple3(*colour)
        n += len(points)
    poly = vtkPolyData()
    poly.SetPoints(pts)
    poly.SetLines(cells)
    poly.GetCellData().SetScalars(colours)
    return poly


def line_actor(
    renderer: vtkRenderer, width: float | None = 2
) -> tuple[vtkPolyDataMapper, vtkActor]:
    """A mapper and its actor, added to ``renderer``, for ``polydata`` lines ``width`` px wide
    (None: VTK's default)."""
    mapper = vtkPolyDataMapper()
    actor = vtkActor()
    actor.SetMapper(mapper)
    if width is not None:
        actor.GetProperty().SetLineWidth(width)
    renderer.AddActor(actor)
    return mapper, actor


def text_actor(
    renderer: vtkRenderer, size: int, colour: tuple[float, float, float], bold: bool = False
) -> vtkTextActor:
    """A shadowed text actor of ``size`` screen pixels, added to ``renderer``: the shadow keeps
    it legible on bright bone and dark air alike."""
    actor = vtkTextActor()
    prop = actor.GetTextProperty()
    prop.SetFontSize(size)
    prop.SetColor(*colour)
    prop.SetBold(bold)
    prop.SetShadow(True)
    renderer.AddViewProp(actor)
    return actor
