"""One VTK view of one plane: the composed image, crosshair, overlay outlines and captions,
orientation letters, a colour bar, a ruler; mouse and keys as OHIF and 3D Slicer users expect.

The view does not know about volumes: ``ViewArea`` composes pixels (``app.viewstate``) and hands
them over with the plane; the view reports what the user does through signals.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6 import QtCore
from PySide6.QtCore import Qt, Signal
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkLookupTable, vtkPoints, vtkUnsignedCharArray
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkImageData, vtkPolyData
from vtkmodules.vtkRenderingAnnotation import vtkScalarBarActor
from vtkmodules.vtkRenderingCore import (
    vtkActor,
    vtkImageActor,
    vtkPolyDataMapper,
    vtkRenderer,
    vtkTextActor,
    vtkWindowToImageFilter,
)

from app.ui.vtkqt import QVTKRenderWindowInteractor
from app.viewstate.compose import ViewImage
from app.viewstate.planes import PlaneGrid

LETTER_COLOUR = (1.0, 0.85, 0.1)
CROSSHAIR_COLOUR = (0.15, 0.55, 0.75)
_CLICK_SLOP_PX = 3


def _polydata(segments: list[tuple[np.ndarray, tuple[int, int, int], bool]], z: float):
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


class SliceView(QVTKRenderWindowInteractor):
    """A VTK render window showing one plane. Signals carry plane millimetres (x, y)."""

    window_drag = Signal(float, float)  # dx, dy in screen pixels (left drag)
    scroll_requested = Signal(int)  # slices (+ toward the normal)
    clicked = Signal(float, float)  # plane mm, a left click without a drag
    hovered = Signal(float, float)  # plane mm under the cursor
    key_action = Signal(str)  # "preset:N", "invert", "reset", "home", "end"
    zoomed = Signal()  # the magnification changed (big images pick another level of detail)

    def __init__(self, name: str, parent=None) -> None:
        super().__init__(parent)
        self.name = name
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(160, 160)
        self.plane: PlaneGrid | None = None
        self.ruler_mode = False
        self._drag_button: Qt.MouseButton | None = None
        self._press_pos: QtCore.QPointF | None = None
        self._last_pos: QtCore.QPointF | None = None
        self._moved = False
        self._rgb_ref: np.ndarray | None = None  # keeps the buffer VTK reads from alive
        self._ruler: list[np.ndarray] = []
        self._fitted_for: tuple | None = None
        self._user_camera = False
        self._finalized = False
        self._cross_points = None
        self._had_lines = True

        rw = self.GetRenderWindow()
        # no multisampling: nothing here needs it, and under software OpenGL 8x MSAA
        # multiplies the cost of every frame
        rw.SetMultiSamples(0)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0.0, 0.0, 0.0)
        rw.AddRenderer(self.renderer)
        cam = self.renderer.GetActiveCamera()
        cam.ParallelProjectionOn()

        self.image_data = vtkImageData()
        self.image_actor = vtkImageActor()
        self.image_actor.GetMapper().SetInputData(self.image_data)
        self.image_actor.InterpolateOff()
        # draw the edge pixels whole: by default VTK stops at their centres, cutting half a
        # pixel off every side (what the report's pictures show in full)
        self.image_actor.GetMapper().BorderOn()
        self.image_actor.VisibilityOff()
        self.renderer.AddActor(self.image_actor)

        self.lines_mapper = vtkPolyDataMapper()
        self.lines_actor = vtkActor()
        self.lines_actor.SetMapper(self.lines_mapper)
        self.lines_actor.GetProperty().SetLineWidth(2)
        self.renderer.AddActor(self.lines_actor)

        self.cross_mapper = vtkPolyDataMapper()
        self.cross_actor = vtkActor()
        self.cross_actor.SetMapper(self.cross_mapper)
        # opaque on purpose: any translucent prop adds a translucent pass to every frame
        self.cross_actor.GetProperty().SetOpacity(1.0)
        self.renderer.AddActor(self.cross_actor)

        self.ruler_mapper = vtkPolyDataMapper()
        self.ruler_actor = vtkActor()
        self.ruler_actor.SetMapper(self.ruler_mapper)
        self.ruler_actor.GetProperty().SetLineWidth(2)
        self.renderer.AddActor(self.ruler_actor)
        self.ruler_text = self._text_actor(14, (1.0, 1.0, 0.4))
        self.ruler_text.GetPositionCoordinate().SetCoordinateSystemToWorld()
        self.ruler_text.VisibilityOff()

        self.captions: list[vtkTextActor] = []
        self.letters: dict[str, vtkTextActor] = {}
        for edge in ("left", "right", "top", "bottom"):
            actor = self._text_actor(18, LETTER_COLOUR, bold=True)
            prop = actor.GetTextProperty()
            coord = actor.GetPositionCoordinate()
            coord.SetCoordinateSystemToNormalizedViewport()
            x, y = {"left": (0.01, 0.5), "right": (0.99, 0.5), "top": (0.5, 0.985),
                    "bottom": (0.5, 0.015)}[edge]  # fmt: skip
            coord.SetValue(x, y)
            prop.SetJustification({"left": 0, "right": 2}.get(edge, 1))
            prop.SetVerticalJustification({"top": 2, "bottom": 0}.get(edge, 1))
            self.letters[edge] = actor

        # two plain text actors, not vtkCornerAnnotation: that one refits its font on every
        # frame, which costs more than drawing the image under software OpenGL
        self.corner_upper = self._text_actor(14, (0.9, 0.9, 0.9))
        self.corner_lower = self._text_actor(14, (0.9, 0.9, 0.9))
        for actor, y, vj in ((self.corner_upper, 0.985, 2), (self.corner_lower, 0.015, 0)):
            coord = actor.GetPositionCoordinate()
            coord.SetCoordinateSystemToNormalizedViewport()
            coord.SetValue(0.01, y)
            actor.GetTextProperty().SetVerticalJustification(vj)

        self.scalar_bar = vtkScalarBarActor()
        self.scalar_bar.SetNumberOfLabels(3)
        self.scalar_bar.SetMaximumWidthInPixels(60)
        self.scalar_bar.SetPosition(0.9, 0.2)
        self.scalar_bar.SetWidth(0.09)
        self.scalar_bar.SetHeight(0.5)
        self.scalar_bar.VisibilityOff()
        self.renderer.AddViewProp(self.scalar_bar)
        self._lut = vtkLookupTable()
        self._lut_key: tuple | None = None

    # ---- building blocks ------------------------------------------------------
    def _text_actor(self, size: int, colour, bold: bool = False) -> vtkTextActor:
        actor = vtkTextActor()
        prop = actor.GetTextProperty()
        prop.SetFontSize(size)
        prop.SetColor(*colour)
        prop.SetBold(bold)
        prop.SetShadow(True)
        self.renderer.AddViewProp(actor)
        return actor

    # ---- content --------------------------------------------------------------
    def set_plane(self, plane: PlaneGrid, show_letters: bool = True, refit: bool = True) -> None:
        self.plane = plane
        if not refit:
            return
        letters = plane.edge_letters()
        for edge, actor in self.letters.items():
            actor.SetInput(letters[edge])
            actor.SetVisibility(show_letters)
        key = (plane.orientation, plane.shape, plane.spacing)
        if key != self._fitted_for:
            self._fitted_for = key
            self._ruler = []
            self._update_ruler()
            self.reset_camera()

    def set_view_image(self, view: ViewImage) -> None:
        rgb = np.ascontiguousarray(view.rgb)
        rows, cols = rgb.shape[:2]
        sr, sc = self.plane.spacing if self.plane else (1.0, 1.0)
        self._rgb_ref = rgb
        if self.image_data.GetDimensions() != (cols, rows, 1):
            self.image_data.SetDimensions(cols, rows, 1)
        self.image_data.SetSpacing(sc, sr, 1.0)
        self.image_data.SetOrigin(0.0, 0.0, 0.0)
        scalars = numpy_to_vtk(rgb.reshape(-1, 3), deep=False)
        self.image_data.GetPointData().SetScalars(scalars)
        self.image_data.Modified()
        self.image_actor.VisibilityOn()
        self._set_primitives(view)

    def _set_primitives(self, view: ViewImage) -> None:
        segments = [(ln.points, ln.color, ln.closed) for ln in view.lines]
        if segments or self._had_lines:  # most frames have none: leave the mapper alone
            self.lines_mapper.SetInputData(_polydata(segments, 0.5))
        self._had_lines = bool(segments)
        self.lines_actor.SetVisibility(bool(segments))
        while len(self.captions) < len(view.captions):
            self.captions.append(self._text_actor(13, (1, 1, 1)))
            self.captions[-1].GetPositionCoordinate().SetCoordinateSystemToWorld()
        for actor, cap in zip(self.captions, view.captions, strict=False):
            actor.SetInput(cap.text)
            actor.GetTextProperty().SetColor(*(c / 255.0 for c in cap.color))
            actor.GetPositionCoordinate().SetValue(cap.x, cap.y, 0.6)
            actor.VisibilityOn()
        for actor in self.captions[len(view.captions) :]:
            actor.VisibilityOff()
        bar = view.colorbar
        if bar is None:
            self.scalar_bar.VisibilityOff()
        else:
            key = (id(bar.lut), bar.vmin, bar.vmax)
            if key != self._lut_key:
                self._lut_key = key
                self._lut.SetNumberOfTableValues(len(bar.lut))
                for n, (r, g, b) in enumerate(bar.lut):
                    self._lut.SetTableValue(n, r / 255.0, g / 255.0, b / 255.0, 1.0)
                self._lut.SetRange(bar.vmin, bar.vmax)
                self._lut.Build()
                self.scalar_bar.SetLookupTable(self._lut)
            self.scalar_bar.SetTitle(bar.title)
            self.scalar_bar.VisibilityOn()

    def set_crosshair(self, xy: tuple[float, float] | None) -> None:
        if xy is None or self.plane is None:
            self.cross_actor.VisibilityOff()
            return
        w, h = self.plane.extent_mm
        x, y = xy
        if self._cross_points is None:
            colour = tuple(int(c * 255) for c in CROSSHAIR_COLOUR)
            segs = [(np.zeros((2, 2)), colour, False), (np.zeros((2, 2)), colour, False)]
            poly = _polydata(segs, 0.4)
            self.cross_mapper.SetInputData(poly)
            self._cross_points = poly.GetPoints()
        # move the four end points in place: no new polydata (and no new GPU buffers) per frame
        pts = self._cross_points
        for n, (px, py) in enumerate(((0.0, y), (w, y), (x, 0.0), (x, h))):
            pts.SetPoint(n, float(px), float(py), 0.4)
        pts.Modified()
        self.cross_actor.VisibilityOn()

    def set_corner_text(self, upper_left: str, lower_left: str) -> None:
        if self.corner_upper.GetInput() != upper_left:
            self.corner_upper.SetInput(upper_left)
        if self.corner_lower.GetInput() != lower_left:
            self.corner_lower.SetInput(lower_left)

    def set_corner_visible(self, visible: bool) -> None:
        self.corner_upper.SetVisibility(visible)
        self.corner_lower.SetVisibility(visible)

    # ---- camera -----------------------------------------------------------------
    def reset_camera(self) -> None:
        if self.plane is None:
            return
        w, h = self.plane.extent_mm
        sr, sc = self.plane.spacing
        w, h = w + sc, h + sr
        cam = self.renderer.GetActiveCamera()
        cx, cy = w / 2 - sc / 2, h / 2 - sr / 2
        cam.SetFocalPoint(cx, cy, 0.0)
        cam.SetPosition(cx, cy, 1000.0)
        cam.SetViewUp(0.0, 1.0, 0.0)
        cam.SetClippingRange(1.0, 2000.0)
        aspect = max(self.width(), 1) / max(self.height(), 1)
        cam.SetParallelScale(max(h / 2, w / 2 / aspect) * 1.02)
        self._user_camera = False

    def zoom(self, factor: float) -> None:
        cam = self.renderer.GetActiveCamera()
        cam.SetParallelScale(cam.GetParallelScale() / factor)
        self._user_camera = True

    def centre_camera_on(self, x: float, y: float) -> None:
        """Pan (keeping the zoom) so that plane point (x, y) mm is in the middle of the view."""
        cam = self.renderer.GetActiveCamera()
        _, _, fz = cam.GetFocalPoint()
        _, _, pz = cam.GetPosition()
        cam.SetFocalPoint(float(x), float(y), fz)
        cam.SetPosition(float(x), float(y), pz)
        self._user_camera = True

    def camera_centre(self) -> tuple[float, float]:
        """The plane point (mm) in the middle of the view."""
        fx, fy, _ = self.renderer.GetActiveCamera().GetFocalPoint()
        return float(fx), float(fy)

    def pan_pixels(self, dx: float, dy: float) -> None:
        cam = self.renderer.GetActiveCamera()
        mm_per_px = 2 * cam.GetParallelScale() / max(self.height(), 1)
        fx, fy, fz = cam.GetFocalPoint()
        px, py, pz = cam.GetPosition()
        ox, oy = -dx * mm_per_px, dy * mm_per_px
        cam.SetFocalPoint(fx + ox, fy + oy, fz)
        cam.SetPosition(px + ox, py + oy, pz)
        self._user_camera = True

    def mm_per_screen_pixel(self) -> float:
        return 2 * self.renderer.GetActiveCamera().GetParallelScale() / max(self.height(), 1)

    def zoom_factor(self) -> float:
        """Current magnification relative to the fitted view (for the saved state)."""
        if self.plane is None:
            return 1.0
        w, h = self.plane.extent_mm
        aspect = max(self.width(), 1) / max(self.height(), 1)
        fit = max(h / 2, w / 2 / aspect) * 1.02
        return fit / self.renderer.GetActiveCamera().GetParallelScale()

    def to_plane_mm(self, pos: QtCore.QPointF) -> tuple[float, float]:
        ratio = self.devicePixelRatioF()
        height = self.GetRenderWindow().GetSize()[1]
        self.renderer.SetDisplayPoint(pos.x() * ratio, height - 1 - pos.y() * ratio, 0.0)
        self.renderer.DisplayToWorld()
        x, y, _, w = self.renderer.GetWorldPoint()
        if w:
            x, y = x / w, y / w
        return float(x), float(y)

    def render(self) -> None:
        if not self._finalized:
            self.GetRenderWindow().Render()

    def Finalize(self) -> None:  # noqa: N802 - VTK's name
        if not self._finalized:
            self._finalized = True
            super().Finalize()

    # ---- capture ------------------------------------------------------------------
    def capture(self) -> np.ndarray:
        """What the view shows, (rows, cols, 3) uint8, row 0 at the top (through VTK, not Qt)."""
        rw = self.GetRenderWindow()
        rw.Render()
        grab = vtkWindowToImageFilter()
        grab.SetInput(rw)
        grab.ReadFrontBufferOff()
        grab.ShouldRerenderOn()
        grab.Update()
        out = grab.GetOutput()
        w, h, _ = out.GetDimensions()
        arr = vtk_to_numpy(out.GetPointData().GetScalars()).reshape(h, w, -1)[..., :3]
        return np.ascontiguousarray(arr[::-1])

    # ---- ruler ----------------------------------------------------------------
    def _update_ruler(self) -> None:
        if len(self._ruler) != 2:
            self.ruler_actor.VisibilityOff()
            self.ruler_text.VisibilityOff()
            return
        a, b = self._ruler
        self.ruler_mapper.SetInputData(_polydata([(np.array([a, b]), (255, 255, 100), False)], 0.7))
        self.ruler_actor.VisibilityOn()
        self.ruler_text.SetInput(f"{self.ruler_length_mm():.1f} mm")
        self.ruler_text.GetPositionCoordinate().SetValue(float(b[0]), float(b[1]), 0.7)
        self.ruler_text.VisibilityOn()

    def ruler_length_mm(self) -> float:
        """Length in mm; plane axes are orthonormal in world space, so plane mm are world mm."""
        if len(self._ruler) != 2:
            return 0.0
        return float(np.linalg.norm(self._ruler[1] - self._ruler[0]))

    def set_ruler(self, a: tuple[float, float] | None, b: tuple[float, float] | None) -> None:
        self._ruler = [] if a is None or b is None else [np.array(a), np.array(b)]
        self._update_ruler()
        self.render()

    # ---- Qt events (not passed to VTK's own interactor: we define the behaviour) -----
    def mousePressEvent(self, ev) -> None:  # noqa: N802
        self.setFocus()
        self._drag_button = ev.button()
        self._press_pos = ev.position()
        self._last_pos = ev.position()
        self._moved = False
        if self.ruler_mode and ev.button() == Qt.MouseButton.LeftButton:
            p = self.to_plane_mm(ev.position())
            self.set_ruler(p, p)

    def mouseMoveEvent(self, ev) -> None:  # noqa: N802
        pos = ev.position()
        self.hovered.emit(*self.to_plane_mm(pos))
        if self._drag_button is None or self._last_pos is None:
            return
        dx, dy = pos.x() - self._last_pos.x(), pos.y() - self._last_pos.y()
        total = pos - self._press_pos
        if abs(total.x()) + abs(total.y()) > _CLICK_SLOP_PX:
            self._moved = True
        self._last_pos = pos
        if self._drag_button == Qt.MouseButton.LeftButton:
            if self.ruler_mode and self._ruler:
                self.set_ruler(tuple(self._ruler[0]), self.to_plane_mm(pos))
            elif self._moved:
                self.window_drag.emit(dx, dy)
        elif self._drag_button == Qt.MouseButton.RightButton:
            self.zoom(math.exp(-dy * 0.01))
            self.render()
            self.zoomed.emit()
        elif self._drag_button == Qt.MouseButton.MiddleButton:
            self.pan_pixels(dx, dy)
            self.render()

    def mouseReleaseEvent(self, ev) -> None:  # noqa: N802
        if (
            self._drag_button == Qt.MouseButton.LeftButton
            and not self._moved
            and not self.ruler_mode
        ):
            self.clicked.emit(*self.to_plane_mm(ev.position()))
        self._drag_button = None

    def wheelEvent(self, ev) -> None:  # noqa: N802
        steps = ev.angleDelta().y() // 120 or (1 if ev.angleDelta().y() > 0 else -1)
        if ev.angleDelta().y() != 0:
            self.scroll_requested.emit(int(steps))

    def keyPressEvent(self, ev) -> None:  # noqa: N802
        key = ev.key()
        scroll = {
            Qt.Key.Key_Up: 1,
            Qt.Key.Key_Down: -1,
            Qt.Key.Key_Right: 1,
            Qt.Key.Key_Left: -1,
            Qt.Key.Key_PageUp: 10,
            Qt.Key.Key_PageDown: -10,
        }
        if key in scroll:
            self.scroll_requested.emit(scroll[key])
        elif key == Qt.Key.Key_Home:
            self.key_action.emit("home")
        elif key == Qt.Key.Key_End:
            self.key_action.emit("end")
        elif Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            self.key_action.emit(f"preset:{key - Qt.Key.Key_1}")
        elif key == Qt.Key.Key_I:
            self.key_action.emit("invert")
        elif key == Qt.Key.Key_Space:
            self.key_action.emit("reset")
        elif key == Qt.Key.Key_R:
            self.key_action.emit("ruler")
        elif key == Qt.Key.Key_Escape:
            self.set_ruler(None, None)
        else:
            ev.ignore()

    def keyReleaseEvent(self, ev) -> None:  # noqa: N802
        ev.ignore()

    def enterEvent(self, ev) -> None:  # noqa: N802
        pass

    def leaveEvent(self, ev) -> None:  # noqa: N802
        pass

    def resizeEvent(self, ev) -> None:  # noqa: N802
        super().resizeEvent(ev)
        # keep the fitted framing when the window is resized before any user zoom or pan
        if self.plane is not None and not self._user_camera:
            self.reset_camera()
