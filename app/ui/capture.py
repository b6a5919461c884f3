"""Screen capture: of the whole window (Qt paints the widgets, VTK reads back its own views, as
Qt's grab() returns black for OpenGL render windows, and the two are laid together), and of each
view as the reader arranged it, with its caption, for the report (``capture_views``)."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.atomic import atomic_write_bytes
from app.viewstate.report_draft import view_caption


def _to_qimage(rgb: np.ndarray) -> QtGui.QImage:
    rgb = np.ascontiguousarray(rgb[..., :3])
    h, w = rgb.shape[:2]
    img = QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888)
    return img.copy()  # own the pixels


def qimage_to_array(img: QtGui.QImage) -> np.ndarray:
    img = img.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    w, h = img.width(), img.height()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=img.sizeInBytes())
    return buf.reshape(h, img.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()


def capture_window(window: QtWidgets.QWidget) -> np.ndarray:
    """(rows, cols, 3) uint8 of what the window shows, VTK views included."""
    from app.ui.slice_view import SliceView

    QtWidgets.QApplication.processEvents()
    ratio = window.devicePixelRatioF()
    shot = window.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
    painter = QtGui.QPainter(shot)
    for view in window.findChildren(SliceView):
        if not view.isVisible():
            continue
        pixels = view.capture()
        top_left = view.mapTo(window, QtCore.QPoint(0, 0))
        target = QtCore.QRect(
            int(top_left.x() * ratio),
            int(top_left.y() * ratio),
            int(view.width() * ratio),
            int(view.height() * ratio),
        )
        painter.drawImage(target, _to_qimage(pixels))
    painter.end()
    return qimage_to_array(shot)


def save_png(rgb: np.ndarray, path: str) -> None:
    """Encode with Qt in memory, then write atomically with Python: a read-only folder or a full
    disk raises an OSError naming the file and the reason (Qt's save() only returns False)."""
    buffer = QtCore.QBuffer()
    buffer.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
    if not _to_qimage(rgb).save(buffer, "PNG"):
        raise ValueError(f"{path}: Qt could not encode the screenshot as PNG")
    atomic_write_bytes(path, bytes(buffer.data()))


def capture_views(window) -> list[tuple[str, np.ndarray]]:
    """Each visible view as the reader arranged it (slice, window, zoom, layers), as RGB, with a
    caption saying how it is arranged: one view area, or one per input of a multi-input result.
    Same VTK read-back as the screenshot."""
    out = []
    for va in window.visible_view_areas():
        for area in [va, *getattr(va, "guests", [])]:  # other series the layout shows
            out += _capture_area(area)
    return out


def _capture_area(va) -> list[tuple[str, np.ndarray]]:
    if va.series is None or va.cross is None:
        return []
    va.update_now()
    shown = [la.name for la in va.drawn_layers() if la.visible and la.opacity > 0]
    out = []
    for name, view in va.views.items():
        if not view.isVisible() or view.width() < 8 or view.height() < 8:
            continue
        plane = va.cross.planes[name]
        title = name.capitalize() if name != "native" else (va.series.modality or "Image")
        if va.title:
            title = f"{va.title}, {title}" if va.volume_mode else va.title
        index = va.cross.slice_index(name) if plane.n_slices > 1 else None
        window_cw = (va.window.center, va.window.width) if va.window is not None else None
        caption = view_caption(
            title,
            index,
            plane.n_slices,
            window_cw,
            view.zoom_factor(),
            shown,
            inverted=bool(va.window is not None and va.window.invert),
        )
        out.append((caption, view.capture()))
    return out
