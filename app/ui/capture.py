"""Screen capture of the whole window: Qt paints the widgets, VTK reads back its own views
(Qt's grab() returns black for OpenGL render windows), and the two are laid together."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.atomic import atomic_write_bytes


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
