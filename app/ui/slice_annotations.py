"""The text a ``SliceView`` draws over its image: orientation letters at the edges, the corner
text (series, slice, window), the overlays' captions and the active heatmap's colour bar.

A mixin of ``SliceView`` rather than an object of its own: the viewer and its tests reach these
actors as the view's attributes (``view.letters``, ``view.captions``, ``view.scalar_bar``).
"""

from __future__ import annotations

from vtkmodules.vtkRenderingCore import vtkCoordinate, vtkRenderer, vtkTextActor

from app.ui.colour_bar import BarTable, new_scalar_bar
from app.ui.vtk_props import text_actor
from app.viewstate.compose import Caption, ColorBar, caption_rows
from app.viewstate.planes import PlaneGrid

LETTER_COLOUR = (1.0, 0.85, 0.1)
CAPTION_FONT_PX = 13  # a box's or landmark's caption


class SliceAnnotations:
    """Letters, corner text, captions and colour bar of a view (``renderer`` and ``plane`` are
    the view's)."""

    renderer: vtkRenderer
    plane: PlaneGrid | None

    def _build_annotations(self) -> None:
        self.captions: list[vtkTextActor] = []
        self._caption_anchors: list[vtkCoordinate] = []
        self.letters: dict[str, vtkTextActor] = {}
        for edge in ("left", "right", "top", "bottom"):
            actor = text_actor(self.renderer, 18, LETTER_COLOUR, bold=True)
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
        self.corner_upper = text_actor(self.renderer, 14, (0.9, 0.9, 0.9))
        self.corner_lower = text_actor(self.renderer, 14, (0.9, 0.9, 0.9))
        for actor, y, vj in ((self.corner_upper, 0.985, 2), (self.corner_lower, 0.015, 0)):
            coord = actor.GetPositionCoordinate()
            coord.SetCoordinateSystemToNormalizedViewport()
            coord.SetValue(0.01, y)
            actor.GetTextProperty().SetVerticalJustification(vj)

        self.scalar_bar = new_scalar_bar()  # the active heatmap's (app.ui.colour_bar)
        self.renderer.AddViewProp(self.scalar_bar)
        self._bar_table = BarTable()

    def _show_letters(self, letters: dict[str, str], visible: bool) -> None:
        for edge, actor in self.letters.items():
            actor.SetInput(letters[edge])
            actor.SetVisibility(visible)

    def _show_captions(self, captions: list[Caption], colorbar: ColorBar | None) -> None:
        while len(self.captions) < len(captions):
            # anchored at a world point, offset in screen pixels (a stacked caption's line)
            actor = text_actor(self.renderer, CAPTION_FONT_PX, (1, 1, 1))
            anchor = vtkCoordinate()
            anchor.SetCoordinateSystemToWorld()
            position = actor.GetPositionCoordinate()
            position.SetCoordinateSystemToDisplay()
            position.SetReferenceCoordinate(anchor)
            self.captions.append(actor)
            self._caption_anchors.append(anchor)
        extent = max(self.plane.extent_mm) if self.plane is not None else 100.0
        rows = caption_rows(captions, 0.01 * extent)
        for actor, anchor, cap, row in zip(
            self.captions, self._caption_anchors, captions, rows, strict=False
        ):
            actor.SetInput(cap.text)
            actor.GetTextProperty().SetColor(*(c / 255.0 for c in cap.color))
            anchor.SetValue(cap.x, cap.y, 0.6)
            actor.GetPositionCoordinate().SetValue(0.0, (CAPTION_FONT_PX + 3) * row)
            actor.VisibilityOn()
        for actor in self.captions[len(captions) :]:
            actor.VisibilityOff()
        self._bar_table.show(self.scalar_bar, colorbar)

    def set_corner_text(self, upper_left: str, lower_left: str) -> None:
        if self.corner_upper.GetInput() != upper_left:
            self.corner_upper.SetInput(upper_left)
        if self.corner_lower.GetInput() != lower_left:
            self.corner_lower.SetInput(lower_left)

    def set_corner_visible(self, visible: bool) -> None:
        self.corner_upper.SetVisibility(visible)
        self.corner_lower.SetVisibility(visible)
