"""Viewer logic without Qt or VTK: planes and reslicing, window/level, overlay layers, which view
shows which input, where a finding points, the composition of a view (also the report's
pictures) and the viewer state.

``app.ui`` draws what these objects describe and turns mouse and key events into calls on them;
everything here is tested headless.
"""

from app.viewstate.compose import compose_view
from app.viewstate.inputs import InputPane, input_panes, layers_for
from app.viewstate.layers import Layer, LayerList, layer_from_overlay
from app.viewstate.picture import Picture, render_overlays
from app.viewstate.planes import PlaneGrid, native_plane, plane_for, reslice
from app.viewstate.regions import RegionTarget, find_target
from app.viewstate.state import CrosshairState, ViewerState
from app.viewstate.windowing import WindowLevel, presets_for

__all__ = [
    "CrosshairState",
    "InputPane",
    "Picture",
    "RegionTarget",
    "Layer",
    "LayerList",
    "PlaneGrid",
    "ViewerState",
    "WindowLevel",
    "compose_view",
    "find_target",
    "input_panes",
    "layer_from_overlay",
    "layers_for",
    "native_plane",
    "plane_for",
    "presets_for",
    "render_overlays",
    "reslice",
]
