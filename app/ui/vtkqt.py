"""One place that binds VTK's Qt widget to PySide6 and loads VTK's OpenGL back end."""

from __future__ import annotations

import vtkmodules.qt

vtkmodules.qt.PyQtImpl = "PySide6"

import vtkmodules.vtkInteractionStyle  # noqa: E402,F401  (registers the default styles)
import vtkmodules.vtkRenderingFreeType  # noqa: E402,F401  (text actors)
import vtkmodules.vtkRenderingOpenGL2  # noqa: E402,F401  (the OpenGL back end)
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor  # noqa: E402

__all__ = ["QVTKRenderWindowInteractor"]
