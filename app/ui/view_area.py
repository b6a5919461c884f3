"""The view area: one series shown in linked patient-aligned views (volumes) or one view of the
image as stored (radiographs), with the shared window/level, crosshair and layers, laid out in
1x1, 1x2, 2x2 or 1+2 (``app.viewstate.layout`` says which plane or which other series of the
study goes in each cell; another series gets a guest area of its own, linked to this one).

Pixels are composed by ``app.viewstate.compose_view``; this class only decides *what* to
recompose (the scrolled view's pixels; the others only move their crosshair) and renders.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6 import QtCore, QtWidgets
from PySide6.QtCore import Signal

from app.study.model import Series
from app.ui.layouts import GridPlacement, ViewGrid, ViewLinker
from app.ui.slice_view import SliceView
from app.viewstate.compose import compose_view
from app.viewstate.layers import Layer, LayerList
from app.viewstate.layout import (
    DEFAULT_LAYOUT,
    LAYOUTS,
    CellView,
    acquisition_first,
)
from app.viewstate.planes import sample_at
from app.viewstate.state import CrosshairState
from app.viewstate.windowing import WindowLevel, data_range, initial_window, presets_for

__all__ = ["ViewArea", "acquisition_first"]


class ViewArea(GridPlacement, QtWidgets.QWidget):
    status = Signal(str)  # value under the cursor and its LPS position
    window_changed = Signal()
    ruler_toggled = Signal(bool)
    moved = Signal(str)  # the crosshair moved (a scroll or a click in this view)

    def __init__(
        self,
        layers: LayerList,
        parent=None,
        layer_filter: Callable[[Layer], bool] | None = None,
        title: str = "",
    ) -> None:
        super().__init__(parent)
        self.layers = layers
        # which of the shared layers this area draws (one input of several: only its own)
        self.layer_filter = layer_filter
        self.title = title  # said in each view's corner, e.g. "lateral: DX spine LL"
        self.series: Series | None = None
        self.window: WindowLevel | None = None
        self.cross: CrosshairState | None = None
        self.presets: dict[str, tuple[float, float]] = {}
        self._span = 1.0
        self.views: dict[str, SliceView] = {}
        self._dirty_pixels: set[str] = set()
        self._update_pending = False
        self._to_draw: set[str] = set()
        self._composed: dict[str, tuple] = {}  # pixels composed on one turn, drawn on the next
        self._closed = False
        # one owned timer (dies with the widget), so no draw can fire after the views are gone
        self._draw_timer = QtCore.QTimer(self)
        self._draw_timer.setSingleShot(True)
        self._draw_timer.timeout.connect(self._draw_next)

        self.layout_name = DEFAULT_LAYOUT
        self.study_series: list[Series] = []  # the series other cells may show, in order
        self.guests: list[ViewArea] = []  # areas of the other series shown in this grid
        self.linker = ViewLinker(self)  # scroll and window/level between this and the guests
        self._layout = QtWidgets.QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.grid = ViewGrid()
        self._layout.addWidget(self.grid)
        self._placeholder = QtWidgets.QLabel(
            "Open a study: File > Open, drag and drop a file or folder, or give a path on the "
            "command line."
        )
        self._placeholder.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.grid.arrange(LAYOUTS["1x1"], [self._placeholder])
        self._on_layers = lambda what, layer: self.request_update()
        layers.subscribe(self._on_layers)

    # ---- series -------------------------------------------------------------------
    def _make_views(self, names: tuple[str, ...]) -> list[SliceView]:
        """The views of these planes (kept when they are already the ones shown); the new ones,
        to be placed in the grid before they are shown and initialised."""
        if tuple(self.views) == names:
            return []
        self._drop_views()
        for name in names:
            view = SliceView(name)
            view.window_drag.connect(self._on_window_drag)
            view.scroll_requested.connect(lambda k, v=name: self.scroll(v, k))
            view.clicked.connect(lambda x, y, v=name: self._on_click(v, x, y))
            view.hovered.connect(lambda x, y, v=name: self._on_hover(v, x, y))
            view.key_action.connect(lambda a, v=name: self._on_key(v, a))
            view.zoomed.connect(lambda v=name: self._on_zoom(v))
            self.views[name] = view
        return list(self.views.values())

    def _drop_views(self) -> None:
        for view in self.views.values():
            view.Finalize()
            view.setParent(None)
            view.deleteLater()
        self.views = {}

    def _show(self, series: Series, cells: list[CellView]) -> list[SliceView]:
        """This area's own series and planes (views created, not yet placed)."""
        self.series = series
        self.cross = CrosshairState(series.image, acquisition_first(series.image))
        fresh = self._make_views(tuple(cv.plane for cv in cells))
        self.window = initial_window(series)
        self.presets = presets_for(series)
        lo, hi = data_range(series)
        self._span = max(hi - lo, 1.0)
        return fresh

    def _start(self, fresh: list[SliceView]) -> None:
        """Placed views: shown, initialised, fitted and drawn."""
        for view in fresh:
            view.show()
            view.Initialize()
        volume = not self.series.image.is_2d
        for name, view in self.views.items():
            view.set_plane(self.cross.planes[name], show_letters=volume)
        self.update_now(set(self.views))
        for view in self.views.values():
            view.reset_camera()
            view.render()

    @property
    def volume_mode(self) -> bool:
        return self.series is not None and not self.series.image.is_2d

    # ---- updates ----------------------------------------------------------------
    def request_update(self, pixels_for: set[str] | None = None) -> None:
        """Coalesce updates: many mouse events between two paints cost one composition.

        Views are then redrawn one per event-loop turn, so a full redraw of three views under
        software OpenGL never blocks the loop for the time of all three.
        """
        changed = set(self.views) if pixels_for is None else pixels_for
        self._dirty_pixels |= changed
        for name in changed:
            self._composed.pop(name, None)  # composed before this change: stale
        self._to_draw = set(self.views)
        if not self._update_pending and not self._closed:
            self._update_pending = True
            self._draw_timer.start(0)

    def _draw_next(self) -> None:
        """One step per event-loop turn: compose a view's pixels, or upload and render them."""
        if not self._to_draw or self.series is None or self._closed:
            self._update_pending = False
            return
        # the view whose pixels changed first (it is the one the user is looking at)
        order = (
            [n for n in self.views if n in self._dirty_pixels]
            + [n for n in self.views if n in self._composed]
            + list(self.views)
        )
        name = next(n for n in order if n in self._to_draw)
        if name in self._dirty_pixels:
            self._dirty_pixels.discard(name)
            self._composed[name] = self._compose(name)
        else:
            self._to_draw.discard(name)
            self._draw(name)
        if self._to_draw:
            # a 1 ms timer, not a posted call: other timers (and input) get their turn first
            self._draw_timer.start(1)
        else:
            self._update_pending = False

    def update_now(self, pixels_for: set[str] | None = None) -> None:
        """Redraw every view now (synchronously): screenshots, tests, benchmarks."""
        self._draw_timer.stop()
        if pixels_for is not None:
            self._dirty_pixels |= pixels_for
        self._to_draw = set()
        self._update_pending = False
        for name in self.views:
            self._draw(name)

    def shutdown(self) -> None:
        """Stop drawing and release the render windows (the main window is closing)."""
        self._closed = True
        self.layers.unsubscribe(self._on_layers)
        self._draw_timer.stop()
        self._to_draw = set()
        self._update_pending = False
        for view in self.views.values():
            view.Finalize()
        for guest in self.guests:
            guest.shutdown()

    def _compose(self, name: str):
        shown = self._display_plane(name)
        return shown, compose_view(
            self.series.image, self.window, shown, self.cross.depth(name), self.drawn_layers()
        )

    def drawn_layers(self) -> list[Layer]:
        """The layers this area draws, bottom first."""
        if self.layer_filter is None:
            return list(self.layers)
        return [la for la in self.layers if self.layer_filter(la)]

    def _draw(self, name: str) -> None:
        if self._closed or self.series is None or self.cross is None or self.window is None:
            return
        view = self.views[name]
        plane = self.cross.planes[name]
        if self._display_plane(name).shape != view.plane.shape:
            self._dirty_pixels.add(name)  # another level of detail
        if name in self._dirty_pixels:
            self._dirty_pixels.discard(name)
            self._composed[name] = self._compose(name)
        if name in self._composed:
            shown, image = self._composed.pop(name)
            if shown is not view.plane:
                view.set_plane(shown, refit=False)
            view.set_view_image(image)
        if self.volume_mode:
            rcd = plane.to_plane(self.cross.point)
            view.set_crosshair((rcd[1] * plane.spacing[1], rcd[0] * plane.spacing[0]))
        else:
            view.set_crosshair(None)
        n = plane.n_slices
        title = name.capitalize() if name != "native" else self.series.modality
        if self.guests and not self.title and not self.volume_mode:  # several series: which
            title = " ".join(p for p in (self.series.modality, self.series.description) if p)
        if self.title:
            title = f"{self.title}  {title}" if self.volume_mode else self.title
        upper = f"{title}  {self.cross.slice_index(name) + 1}/{n}" if n > 1 else title
        lower = f"W {self.window.width:.0f}  L {self.window.center:.0f}" + (
            "  inverted" if self.window.invert else ""
        )
        view.set_corner_text(upper, lower)
        view.render()

    def _lod_factor(self, name: str) -> int:
        """Big 2-D images are composed at about the screen's resolution, not the detector's:
        a 2140x1760 radiograph fitted to an 800-pixel view is drawn from every 2nd pixel, and
        at full resolution once zoomed in."""
        plane = self.cross.planes[name]
        if plane.orientation != "native" or max(plane.shape) <= 1024:
            return 1
        ratio = self.views[name].mm_per_screen_pixel() / min(plane.spacing)
        return max(1, round(ratio))

    def _display_plane(self, name: str):
        return self.cross.planes[name].decimated(self._lod_factor(name))

    def _on_zoom(self, name: str) -> None:
        view = self.views[name]
        if view.plane is not None and self._display_plane(name).shape != view.plane.shape:
            self.request_update({name})

    # ---- navigation --------------------------------------------------------------
    def scroll(self, view: str, steps: int) -> bool:
        """Move ``view`` by whole slices; False at the end of the stack (cine stops there)."""
        if self.cross is None or not self.cross.scroll(view, steps):
            return False
        self._after_move(view)
        return True

    def go_to_end(self, view: str, last: bool) -> None:
        if self.cross is not None:
            self.cross.go_to_end(view, last=last)
            self._after_move(view)

    def _after_move(self, view: str | None) -> None:
        """The crosshair moved: the views whose depth changed need new pixels (and linked
        areas follow)."""
        self.request_update({view} if view else None)
        self.moved.emit(view or "")

    def centre_on(self, xyz: np.ndarray) -> None:
        """Put the crosshair (and so every view's slice) on a world point; an image (one plane,
        no slices to move through) is panned so that the point is in the middle of its view."""
        if self.cross is None:
            return
        self.cross.set_point(xyz)
        if not self.volume_mode:
            for name, view in self.views.items():
                plane = self.cross.planes[name]
                row, col, _ = plane.to_plane(np.asarray(xyz, dtype=float))
                view.centre_camera_on(col * plane.spacing[1], row * plane.spacing[0])
        self.request_update()

    def set_window(self, center: float, width: float) -> None:
        if self.window is None:
            return
        self.window.center, self.window.width = float(center), max(float(width), 1e-6)
        self.window_changed.emit()
        self.request_update()

    def apply_preset(self, index_or_name: int | str) -> None:
        names = list(self.presets)
        name = names[index_or_name] if isinstance(index_or_name, int) else index_or_name
        if name in self.presets:
            self.set_window(*self.presets[name])

    def toggle_invert(self) -> None:
        if self.window is not None:
            self.window.invert = not self.window.invert
            self.window_changed.emit()
            self.request_update()

    def reset(self) -> None:
        """Space: fitted zoom/pan, the default window, the crosshair in the centre."""
        if self.series is None or self.cross is None:
            return
        self.window = initial_window(self.series)
        self.cross.reset()
        for view in self.views.values():
            view.reset_camera()
            view.set_ruler(None, None)
        for guest in self.guests:
            guest.reset()
        self.window_changed.emit()
        self.request_update()

    def set_ruler_mode(self, on: bool) -> None:
        for view in [*self.views.values(), *(v for g in self.guests for v in g.views.values())]:
            view.ruler_mode = on
        self.ruler_toggled.emit(on)

    # ---- mouse ----------------------------------------------------------------------
    def _world(self, view: str, x: float, y: float) -> np.ndarray:
        plane = self.cross.planes[view]
        return plane.world(y / plane.spacing[0], x / plane.spacing[1], self.cross.depth(view))

    def _on_window_drag(self, dx: float, dy: float) -> None:
        if self.window is None:
            return
        self.window.drag(dx, dy, self._span)
        self.window_changed.emit()
        self.request_update()

    def _on_click(self, view: str, x: float, y: float) -> None:
        if self.cross is None or not self.volume_mode:
            return
        self.cross.set_in_plane(view, self._world(view, x, y))
        self.request_update(set(self.views) - {view})
        self.moved.emit(view)

    def _on_hover(self, view: str, x: float, y: float) -> None:
        if self.cross is None or self.series is None:
            return
        xyz = self._world(view, x, y)
        value = sample_at(self.series.image, xyz)
        where = f"({xyz[0]:.1f}, {xyz[1]:.1f}, {xyz[2]:.1f}) mm LPS"
        if value is None:
            self.status.emit(f"outside the image  {where}")
            return
        unit = " HU" if (self.series.modality or "").upper() == "CT" else ""
        self.status.emit(f"{value:.0f}{unit}  at {where}")

    def _on_key(self, view: str, action: str) -> None:
        if action.startswith("preset:"):
            index = int(action.split(":")[1])
            if index < len(self.presets):
                self.apply_preset(index)
        elif action == "invert":
            self.toggle_invert()
        elif action == "reset":
            self.reset()
        elif action == "ruler":
            self.set_ruler_mode(not next(iter(self.views.values())).ruler_mode)
        elif action in ("home", "end"):
            self.go_to_end(view, last=action == "end")

    # ---- capture -------------------------------------------------------------------
    def capture_views(self) -> dict[str, np.ndarray]:
        return {name: view.capture() for name, view in self.views.items()}
