"""One VTK view of one plane: the composed image, overlay outlines and the crosshair, its camera
(fit, zoom, pan) and its read-back for screenshots and the report.

The view does not know about volumes: ``ViewArea`` composes pixels (``app.viewstate``) and hands
them over with the plane; the view reports what the user does through signals. What it writes
over the image is ``slice_annotations``; what it does with the mouse and keys, and the ruler, is
``slice_input``; the props it draws with are ``vtk_props``.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore
from PySide6.QtCore import Qt, Signal
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkRenderingCore import vtkImageActor, vtkRenderer, vtkWindowToImageFilter

from app.ui.slice_annotations import SliceAnnotations
from app.ui.slice_input import SliceInteraction
from app.ui.vtk_props import line_actor, polydata
from app.ui.vtkqt import QVTKRenderWindowInteractor
from app.viewstate.compose import ViewImage
from app.viewstate.planes import PlaneGrid

CROSSHAIR_COLOUR = (0.15, 0.55, 0.75)


# the mixins come first so that their Qt event handlers replace VTK's own interactor's
class SliceView(SliceInteraction, SliceAnnotations, QVTKRenderWindowInteractor):
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
        self._rgb_ref: np.ndarray | None = None  # keeps the buffer VTK reads from alive
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

        self.lines_mapper, self.lines_actor = line_actor(self.renderer)
        self.cross_mapper, self.cross_actor = line_actor(self.renderer, width=None)
        # opaque on purpose: any translucent prop adds a translucent pass to every frame
        self.cross_actor.GetProperty().SetOpacity(1.0)
        self._build_interaction()  # the ruler's props
        self._build_annotations()

    # ---- content --------------------------------------------------------------
    def set_plane(self, plane: PlaneGrid, show_letters: bool = True, refit: bool = True) -> None:
        self.plane = plane
        if not refit:
            return
        self._show_letters(plane.edge_letters(), show_letters)
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
            self.lines_mapper.SetInputData(polydata(segments, 0.5))
        self._had_lines = bool(segments)
        self.lines_actor.SetVisibility(bool(segments))
        self._show_captions(view.captions, view.colorbar)

    def set_crosshair(self, xy: tuple[float, float] | None) -> None:
        if xy is None or self.plane is None:
            self.cross_actor.VisibilityOff()
            return
        w, h = self.plane.extent_mm
        x, y = xy
        if self._cross_points is None:
            colour = tuple(int(c * 255) for c in CROSSHAIR_COLOUR)
            segs = [(np.zeros((2, 2)), colour, False), (np.zeros((2, 2)), colour, False)]
            poly = polydata(segs, 0.4)
            self.cross_mapper.SetInputData(poly)
            self._cross_points = poly.GetPoints()
        # move the four end points in place: no new polydata (and no new GPU buffers) per frame
        pts = self._cross_points
        for n, (px, py) in enumerate(((0.0, y), (w, y), (x, 0.0), (x, h))):
            pts.SetPoint(n, float(px), float(py), 0.4)
        pts.Modified()
        self.cross_actor.VisibilityOn()

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

    def resizeEvent(self, ev) -> None:  # noqa: N802
        super().resizeEvent(ev)
        # keep the fitted framing when the window is resized before any user zoom or pan
        if self.plane is not None and not self._user_camera:
            self.reset_camera()
