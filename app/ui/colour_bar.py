"""The active heatmap's colour bar in a VTK view: small, in the lower right corner, its numbers
in a fixed pixel size (VTK otherwise scales the text with the view, up to a letter 100 px high
over the anatomy), without a title (the map's name is in the layer list), each colour shown as
the map draws it (``app.viewstate.compose.ColorBar``)."""

from __future__ import annotations

import numpy as np
from vtkmodules.vtkCommonCore import vtkLookupTable
from vtkmodules.vtkRenderingAnnotation import vtkScalarBarActor

from app.viewstate.compose import ColorBar

BAR_FONT_PX = 11  # text in a view has a size in screen pixels, whatever the image's size
BAR_GREY = 110.0  # the colour bar where the map is not drawn


def new_scalar_bar() -> vtkScalarBarActor:
    bar = vtkScalarBarActor()
    bar.SetNumberOfLabels(3)
    bar.SetLabelFormat("%.2g")
    bar.SetPosition(0.93, 0.04)
    bar.SetWidth(0.06)
    bar.SetHeight(0.3)
    bar.SetMaximumWidthInPixels(56)
    bar.SetMaximumHeightInPixels(200)
    bar.SetBarRatio(0.35)
    bar.UnconstrainedFontSizeOn()
    for prop in (bar.GetLabelTextProperty(), bar.GetTitleTextProperty()):
        prop.SetFontSize(BAR_FONT_PX)
        prop.SetBold(False)
        prop.SetItalic(False)
        prop.SetShadow(True)
        prop.SetColor(1.0, 1.0, 1.0)
    bar.SetTitle("")
    bar.VisibilityOff()
    return bar


class BarTable:
    """The bar's lookup table, rebuilt only when the map's scale or threshold changes."""

    def __init__(self) -> None:
        self.lut = vtkLookupTable()
        self._key: tuple | None = None

    def show(self, actor: vtkScalarBarActor, bar: ColorBar | None) -> None:
        if bar is None:
            actor.VisibilityOff()
            return
        # grey where the map is transparent (below the threshold), the colour more solid as the
        # value rises (relative to the layer's opacity, which moves all of it)
        key = (id(bar.lut), bar.vmin, bar.vmax, round(bar.threshold, 4))
        if key != self._key:
            self._key = key
            alpha = np.ones(len(bar.lut)) if bar.alpha is None else np.asarray(bar.alpha)
            alpha = (alpha / max(float(alpha.max()), 1e-6))[:, None]
            shown = (BAR_GREY * (1.0 - alpha) + bar.lut * alpha) / 255.0
            self.lut.SetNumberOfTableValues(len(shown))
            for n, (r, g, b) in enumerate(shown):
                self.lut.SetTableValue(n, float(r), float(g), float(b), 1.0)
            self.lut.SetRange(bar.vmin, bar.vmax)
            self.lut.Build()
            actor.SetLookupTable(self.lut)
        actor.VisibilityOn()
