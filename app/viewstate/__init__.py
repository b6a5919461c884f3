"""Viewer logic without Qt or VTK: planes and reslicing, window/level, overlay layers, state.

``app.ui`` draws what these objects describe and turns mouse and key events into calls on them;
everything here is tested headless.
"""

from app.viewstate.compose import compose_view
from app.viewstate.layers import Layer, LayerList, layer_from_overlay
from app.viewstate.planes import PlaneGrid, native_plane, plane_for, reslice
from app.viewstate.state import CrosshairState, ViewerState
from app.viewstate.windowing import WindowLevel, presets_for

__all__ = [
    "CrosshairState",
    "Layer",
    "LayerList",
    "PlaneGrid",
    "ViewerState",
    "WindowLevel",
    "compose_view",
    "layer_from_overlay",
    "native_plane",
    "plane_for",
    "presets_for",
    "reslice",
]
