"""Draw a slice of a series with its overlays as an RGB image, without Qt, VTK or matplotlib.

Used by the PDF report and the CLI's PNG outputs (the viewer draws with VTK). Every pixel of the
output is a point in LPS world space: the image and each overlay are sampled at those points
through their own geometry, so a label map or heatmap on another grid lands where it belongs.

Display conventions (radiological): axial and coronal views put the patient's right on the
screen's left; axial puts anterior at the top; sagittal puts anterior on the left and superior
at the top. ``native`` shows the acquisition grid as stored (the only plane for a radiograph).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.findings.colormaps import apply_colormap
from app.findings.types import (
    BoxOverlay,
    HeatmapOverlay,
    LabelMapOverlay,
    LandmarkOverlay,
    Overlay,
)
from app.study.geometry import ImageVolume
from app.study.model import CT_PRESETS, Series

PLANES = ("axial", "coronal", "sagittal", "native")

# (screen-right, screen-down) as LPS unit vectors for the patient planes.
_PLANE_AXES = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}


@dataclass
class SliceFrame:
    """Output pixel (row, col) sits at ``origin + col * u + row * v`` in LPS mm."""

    origin: np.ndarray
    u: np.ndarray  # world step per output column (mm vector)
    v: np.ndarray  # world step per output row
    width: int
    height: int
    plane: str
    thickness_mm: float  # how far from the plane a point/box still counts as "on" it

    @property
    def normal(self) -> np.ndarray:
        n = np.cross(self.u, self.v)
        return n / max(np.linalg.norm(n), 1e-12)

    def pixel_points(self) -> np.ndarray:
        """(height, width, 3) LPS positions of every output pixel centre."""
        cols = np.arange(self.width, dtype=float)
        rows = np.arange(self.height, dtype=float)
        return (
            self.origin[None, None, :]
            + cols[None, :, None] * self.u[None, None, :]
            + rows[:, None, None] * self.v[None, None, :]
        )

    def to_pixel(self, xyz) -> tuple[float, float, float]:
        """LPS point -> (col, row, signed distance from the plane in mm)."""
        d = np.asarray(xyz, dtype=float) - self.origin
        col = float(d @ self.u / (self.u @ self.u))
        row = float(d @ self.v / (self.v @ self.v))
        return col, row, float(d @ self.normal)


def slice_frame(volume: ImageVolume, plane: str, world_point, max_size: int = 1024) -> SliceFrame:
    """The output grid for ``plane`` through ``world_point`` covering the whole volume."""
    if plane not in PLANES:
        raise ValueError(f"unknown plane '{plane}'; expected one of {', '.join(PLANES)}")
    world_point = np.asarray(world_point, dtype=float).reshape(3)
    nk, nj, ni = volume.shape
    if plane == "native" or volume.is_2d:
        k = (
            0
            if volume.is_2d
            else int(np.clip(np.rint(volume.world_to_index(world_point)[2]), 0, nk - 1))
        )
        step = max(1, math.ceil(max(ni, nj) / max_size))
        di, dj = volume.spacing_ijk[0], volume.spacing_ijk[1]
        return SliceFrame(
            origin=volume.index_to_world(np.array([0.0, 0.0, float(k)])),
            u=volume.direction[:, 0] * di * step,
            v=volume.direction[:, 1] * dj * step,
            width=math.ceil(ni / step),
            height=math.ceil(nj / step),
            plane="native",
            thickness_mm=float(volume.spacing[0]) / 2 if not volume.is_2d else math.inf,
        )
    e_u, e_v = (np.array(a) for a in _PLANE_AXES[plane])
    normal = np.cross(e_u, e_v)
    corners = np.array(
        [[i, j, k] for i in (-0.5, ni - 0.5) for j in (-0.5, nj - 0.5) for k in (-0.5, nk - 0.5)]
    )
    world = volume.index_to_world(corners)
    a, b = world @ e_u, world @ e_v
    pixel = float(min(volume.spacing))
    extent = max(a.max() - a.min(), b.max() - b.min())
    pixel = max(pixel, extent / max_size)
    width = max(1, int(round((a.max() - a.min()) / pixel)))
    height = max(1, int(round((b.max() - b.min()) / pixel)))
    origin = (
        e_u * (a.min() + pixel / 2) + e_v * (b.min() + pixel / 2) + normal * (world_point @ normal)
    )
    # A point counts as on this plane within half the volume's extent along the plane normal.
    step_along_normal = np.abs(volume.direction.T @ normal) * volume.spacing_ijk
    return SliceFrame(
        origin=origin,
        u=e_u * pixel,
        v=e_v * pixel,
        width=width,
        height=height,
        plane=plane,
        thickness_mm=max(float(step_along_normal.max()) / 2, pixel / 2),
    )


def sample(
    volume: ImageVolume, points: np.ndarray, order: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``volume`` at LPS ``points`` (..., 3) and a mask of points inside it.

    order 0 is nearest neighbour (label maps), order 1 trilinear (images, heatmaps).
    """
    shape = points.shape[:-1]
    ijk = _world_to_index(volume, points.reshape(-1, 3))
    dims = np.array(volume.shape[::-1], dtype=float)  # (ni, nj, nk)
    inside = np.all((ijk >= -0.5) & (ijk <= dims - 0.5), axis=1)
    arr = volume.array
    channels = arr.shape[3:] if arr.ndim == 4 else ()
    out = np.zeros((ijk.shape[0], *channels), dtype=np.float32)
    if inside.any():
        pts = ijk[inside]
        if order == 0:
            idx = np.clip(np.rint(pts).astype(np.intp), 0, dims.astype(np.intp) - 1)
            out[inside] = arr[idx[:, 2], idx[:, 1], idx[:, 0]]
        else:
            out[inside] = _trilinear(arr, pts)
    return out.reshape(*shape, *channels), inside.reshape(shape)


def _world_to_index(volume: ImageVolume, xyz: np.ndarray) -> np.ndarray:
    """ImageVolume.world_to_index for many points; einsum, because a BLAS matmul of an (N, 3)
    array by a 3x3 one is ~15x slower when the BLAS threads compete for a busy CPU."""
    inv = np.linalg.inv(volume.affine_lps())
    return np.einsum("nj,ij->ni", xyz, inv[:3, :3]) + inv[:3, 3]


def _trilinear(arr: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    """Linear interpolation at fractional (i, j, k), clamped to the edges (thin axes included)."""
    nk, nj, ni = arr.shape[:3]
    dims = np.array([ni, nj, nk])
    p = np.clip(ijk, 0, dims - 1)
    p0 = np.floor(p).astype(np.intp)
    p1 = np.minimum(p0 + 1, dims - 1)
    f = (p - p0).astype(np.float32)
    # Gathers through flat indices: much faster than 3-D fancy indexing on a big volume.
    flat = arr.reshape(nk * nj * ni, -1) if arr.ndim == 4 else arr.reshape(-1)
    weight_axes = ((1 - f[:, 0], f[:, 0]), (1 - f[:, 1], f[:, 1]), (1 - f[:, 2], f[:, 2]))
    index_axes = (
        (p0[:, 0], p1[:, 0]),
        (p0[:, 1] * ni, p1[:, 1] * ni),
        (p0[:, 2] * nj * ni, p1[:, 2] * nj * ni),
    )
    out = np.zeros((len(p), *arr.shape[3:]), dtype=np.float32)
    for a in (0, 1):
        for b in (0, 1):
            for c in (0, 1):
                w = weight_axes[0][a] * weight_axes[1][b] * weight_axes[2][c]
                idx = index_axes[0][a] + index_axes[1][b] + index_axes[2][c]
                values = np.take(flat, idx, axis=0).astype(np.float32)
                out += (w[:, None] if arr.ndim == 4 else w) * values
    return out


def _same_grid(a: ImageVolume, frame: SliceFrame) -> bool:
    """True when the frame is the volume's own native slice grid at step 1 (fast path)."""
    return (
        frame.plane == "native"
        and frame.width == a.shape[2]
        and frame.height == a.shape[1]
        and np.allclose(frame.u, a.direction[:, 0] * a.spacing_ijk[0])
        and np.allclose(frame.v, a.direction[:, 1] * a.spacing_ijk[1])
    )


def default_display_window(series: Series) -> tuple[float, float]:
    """The stored window, else the bone preset for CT (a bone viewer), else a percentile range."""
    if series.window is not None:
        return series.window
    if (series.modality or "").upper() == "CT":
        return CT_PRESETS["Bone"]
    return series.default_window()


def render_slice(
    series: Series,
    overlays: list[Overlay],
    plane: str,
    world_point,
    window: tuple[float, float] | None = None,
    max_size: int = 1024,
) -> np.ndarray:
    """RGB uint8 (rows, cols, 3) of ``plane`` through ``world_point`` with visible overlays."""
    rgb, _ = render_slice_with_frame(series, overlays, plane, world_point, window, max_size)
    return rgb


def render_slice_with_frame(
    series: Series,
    overlays: list[Overlay],
    plane: str,
    world_point,
    window: tuple[float, float] | None = None,
    max_size: int = 1024,
) -> tuple[np.ndarray, SliceFrame]:
    volume = series.image
    frame = slice_frame(volume, plane, world_point, max_size)
    points = frame.pixel_points()
    if _same_grid(volume, frame):
        k = int(np.rint(volume.world_to_index(frame.origin)[2])) if not volume.is_2d else 0
        values = volume.array[k].astype(np.float32)
        inside = np.ones(values.shape[:2], dtype=bool)
    else:
        values, inside = sample(volume, points, order=1)
    rgb = _grey_to_rgb(values, inside, series, window)
    for overlay in overlays:
        if not overlay.visible:
            continue
        if isinstance(overlay, LabelMapOverlay) and overlay.image is not None:
            rgb = _blend_labelmap(rgb, overlay, points)
        elif isinstance(overlay, HeatmapOverlay) and overlay.image is not None:
            rgb = _blend_heatmap(rgb, overlay, points)
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    line = max(1, round(max(frame.width, frame.height) / 300))
    font = font_of_size(max(10, round(max(frame.width, frame.height) / 45)))
    for overlay in overlays:
        if not overlay.visible:
            continue
        if isinstance(overlay, BoxOverlay) and overlay.reference is not None:
            _draw_boxes(draw, overlay, frame, line, font)
        elif isinstance(overlay, LandmarkOverlay):
            _draw_landmarks(draw, overlay, frame, line, font)
    return np.asarray(image, dtype=np.uint8).copy(), frame


def _grey_to_rgb(values, inside, series: Series, window) -> np.ndarray:
    if values.ndim == 3:  # RGB source image: shown as stored
        rgb = np.clip(values, 0, 255).astype(np.uint8)
    else:
        center, width = window or default_display_window(series)
        lo = center - width / 2
        grey = np.clip((values - lo) / max(width, 1e-6), 0.0, 1.0)
        if series.invert:
            grey = 1.0 - grey
        g = np.round(grey * 255).astype(np.uint8)
        rgb = np.repeat(g[..., None], 3, axis=2)
    rgb[~inside] = 0
    return rgb


def label_colour(value: int, labels: dict) -> tuple[int, int, int]:
    if value in labels:
        return tuple(int(c) for c in labels[value][1])  # type: ignore[return-value]
    # A stable, saturated colour for values the table does not name.
    h = (value * 0.618034) % 1.0
    r, g, b = (abs(((h * 6 + s) % 6) - 3) - 1 for s in (0, 4, 2))
    return tuple(int(255 * min(max(c, 0), 1)) for c in (r, g, b))  # type: ignore[return-value]


def _blend_labelmap(rgb: np.ndarray, overlay: LabelMapOverlay, points: np.ndarray) -> np.ndarray:
    vals, inside = sample(overlay.image, points, order=0)
    vals = np.where(inside, vals, 0).astype(np.int64)
    present = [int(v) for v in np.unique(vals) if v != 0]
    if not present:
        return rgb
    colour = np.zeros((*vals.shape, 3), dtype=np.float32)
    for v in present:
        colour[vals == v] = label_colour(v, overlay.labels)
    mask = vals != 0
    alpha = float(np.clip(overlay.opacity, 0.0, 1.0))
    out = rgb.astype(np.float32)
    out[mask] = (1 - alpha) * out[mask] + alpha * colour[mask]
    # Full-colour outline so a region stays visible whatever the opacity.
    edge = np.zeros_like(mask)
    edge[1:, :] |= vals[1:, :] != vals[:-1, :]
    edge[:-1, :] |= vals[1:, :] != vals[:-1, :]
    edge[:, 1:] |= vals[:, 1:] != vals[:, :-1]
    edge[:, :-1] |= vals[:, 1:] != vals[:, :-1]
    edge &= mask
    out[edge] = colour[edge]
    return np.round(out).astype(np.uint8)


def _blend_heatmap(rgb: np.ndarray, overlay: HeatmapOverlay, points: np.ndarray) -> np.ndarray:
    vals, inside = sample(overlay.image, points, order=1)
    lo, hi = overlay.value_range
    norm = np.clip((vals - lo) / max(hi - lo, 1e-12), 0.0, 1.0) * inside
    colour = apply_colormap(norm, overlay.colormap).astype(np.float32)
    # Opacity grows with the value so that cold regions leave the anatomy readable.
    alpha = (np.clip(overlay.opacity, 0.0, 1.0) * np.sqrt(norm))[..., None]
    return np.round((1 - alpha) * rgb + alpha * colour).astype(np.uint8)


def font_of_size(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def _draw_boxes(draw: ImageDraw.ImageDraw, overlay: BoxOverlay, frame: SliceFrame, line, font):
    ref = overlay.reference
    for box in overlay.boxes:
        # Box indices name the first and last pixel inside; the outline goes just outside them.
        i_lo, i_hi = min(box.i0, box.i1) - 1, max(box.i0, box.i1) + 1
        j_lo, j_hi = min(box.j0, box.j1) - 1, max(box.j0, box.j1) + 1
        corners = [(i_lo, j_lo), (i_hi, j_lo), (i_hi, j_hi), (i_lo, j_hi)]
        world = ref.index_to_world(np.array([[i, j, float(box.k)] for i, j in corners]))
        px = [frame.to_pixel(w) for w in world]
        if max(abs(p[2]) for p in px) > frame.thickness_mm + 1e-6:
            continue  # the box lies on another slice
        poly = [(round(c), round(r)) for c, r, _ in px]
        draw.polygon(poly, outline=tuple(overlay.color), width=line)
        text = box.caption
        if box.score is not None:
            text = f"{text} {box.score:.2f}".strip()
        if text:
            x = min(p[0] for p in poly)
            y = min(p[1] for p in poly)
            draw.text(
                (x + line, max(0, y - font.size - 2 * line)),
                text,
                fill=tuple(overlay.color),
                font=font,
            )


def _draw_landmarks(
    draw: ImageDraw.ImageDraw, overlay: LandmarkOverlay, frame: SliceFrame, line, font
):
    r = max(3, 3 * line)
    for mark in overlay.landmarks:
        col, row, dist = frame.to_pixel(mark.position_lps)
        if abs(dist) > max(frame.thickness_mm, 3.0):
            continue
        draw.ellipse((col - r, row - r, col + r, row + r), outline=tuple(overlay.color), width=line)
        draw.text((col + r + line, row - r), mark.name, fill=tuple(overlay.color), font=font)
