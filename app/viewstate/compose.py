"""Compose one view: the base image through its window plus the visible layers, as RGB pixels and
vector primitives (box outlines, landmark marks, captions) in plane millimetres.

Plane millimetres: x = column * column spacing, y = row * row spacing, with row 0 at the bottom
of the screen; this is where the UI places the image, so primitives line up with the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.findings.colormaps import colormap_lut
from app.findings.types import BoxOverlay, HeatmapOverlay, LabelMapOverlay, LandmarkOverlay
from app.study.geometry import ImageVolume
from app.viewstate.layers import Layer
from app.viewstate.planes import PlaneGrid, reslice
from app.viewstate.windowing import WindowLevel


@dataclass
class Polyline:
    points: np.ndarray  # (n, 2) plane mm
    color: tuple[int, int, int]
    closed: bool = True
    layer_id: int = 0


@dataclass
class Caption:
    x: float
    y: float
    text: str
    color: tuple[int, int, int]
    layer_id: int = 0


@dataclass
class ColorBar:
    """The active heatmap's scale. ``alpha`` (256, float 0-1) is how opaque each colour of
    ``lut`` is drawn: 0 below the layer's threshold, rising with the value above it."""

    lut: np.ndarray
    vmin: float
    vmax: float
    title: str  # the map's label; listed with the layer, never painted over the image
    alpha: np.ndarray | None = None
    threshold: float = 0.0  # fraction of the scale (of |value| for a signed map)


@dataclass
class ViewImage:
    rgb: np.ndarray  # (rows, cols, 3) uint8, row 0 at the bottom
    lines: list[Polyline] = field(default_factory=list)
    captions: list[Caption] = field(default_factory=list)
    colorbar: ColorBar | None = None


def caption_rows(captions: list[Caption], near_mm: float) -> list[int]:
    """For each caption, how many earlier ones are anchored within ``near_mm`` of it (two boxes
    sharing a corner): the view stacks those a line apart instead of on top of one another."""
    rows: list[int] = []
    for n, cap in enumerate(captions):
        rows.append(
            sum(
                1
                for other in captions[:n]
                if abs(other.x - cap.x) <= near_mm and abs(other.y - cap.y) <= near_mm
            )
        )
    return rows


def base_pixels(
    base: ImageVolume, window: WindowLevel, plane: PlaneGrid, depth: float
) -> np.ndarray:
    """The base image on the plane as grey (or colour) RGB uint8."""
    rows, cols = plane.shape
    if base.is_rgb and base.array.dtype == np.uint8:
        vals, valid = reslice(base, plane, depth, order=1)
        rgb = np.array(vals[..., :3], dtype=np.uint8, order="C")  # a copy: vals may be a view
        if window.invert:
            np.subtract(255, rgb, out=rgb)
    else:
        vals, valid = reslice(base, plane, depth, order=1)
        if vals.ndim == 3:
            vals = vals.mean(axis=-1)
        grey = window.to_uint8(vals)
        rgb = np.empty((rows, cols, 3), dtype=np.uint8)
        rgb[...] = grey[..., np.newaxis]
    if valid is not None:
        rgb[~valid] = 0
    return rgb


def _blend_labels(rgb: np.ndarray, layer: Layer, plane: PlaneGrid, depth: float) -> None:
    image = layer.overlay.image  # type: ignore[attr-defined]
    labels, _ = reslice(image, plane, depth, order=0, fill=0)
    where = np.flatnonzero(labels)  # labels cover a small part of a slice: work on those only
    if where.size == 0:
        return
    lut = layer.label_lut()
    values = np.minimum(labels.reshape(-1)[where], len(lut) - 1).astype(np.intp)
    colour = lut[values]
    a = (colour[:, 3:4].astype(np.float32) / 255.0) * np.float32(layer.opacity)
    # The region's edge in its full colour, so a region stays readable at any opacity (on
    # screen and in the report alike).
    on_edge = _edges_at(labels, where)
    a[on_edge] = colour[on_edge, 3:4] / np.float32(255.0)
    flat = rgb.reshape(-1, 3)
    under = flat[where].astype(np.float32)
    flat[where] = (under + (colour[:, :3] - under) * a).astype(np.uint8)


def _edges_at(labels: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``label_edges`` at the flat indices ``where``, computed on their bounding box only (a
    label map usually covers a small part of a big slice)."""
    rows, cols = np.divmod(where, labels.shape[1])
    r0, c0 = max(int(rows.min()) - 1, 0), max(int(cols.min()) - 1, 0)
    crop = labels[r0 : int(rows.max()) + 2, c0 : int(cols.max()) + 2]
    return label_edges(crop)[rows - r0, cols - c0]


def label_edges(labels: np.ndarray) -> np.ndarray:
    """Labelled pixels with a 4-neighbour of another value (the slice border does not count)."""
    edge = np.zeros(labels.shape, dtype=bool)
    vertical = labels[1:] != labels[:-1]
    edge[1:] |= vertical
    edge[:-1] |= vertical
    horizontal = labels[:, 1:] != labels[:, :-1]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    edge &= labels != 0
    return edge


def is_signed(value_range: tuple[float, float]) -> bool:
    """A signed map (SHAP values: evidence for and against) spans zero; it is drawn through a
    diverging colormap and thresholded on |value|."""
    lo, hi = value_range
    return lo < 0.0 < hi


def heatmap_alpha(value_range: tuple[float, float], threshold: float, opacity: float) -> np.ndarray:
    """(256,) float alpha for the 256 colours of a heatmap's scale: 0 where the value's
    magnitude (its place on the scale; |value| / peak for a signed map) is below ``threshold``,
    then rising linearly to ``opacity`` at the scale's end, as clinical CAD draws a map: the
    weak, spread-out part of a map leaves the image as it is."""
    t = np.linspace(0.0, 1.0, 256)
    if is_signed(value_range):
        lo, hi = value_range
        values = lo + t * (hi - lo)
        magnitude = np.abs(values) / max(abs(lo), abs(hi))
    else:
        magnitude = t
    thr = float(min(max(threshold, 0.0), 1.0))
    ramp = np.clip((magnitude - thr) / max(1.0 - thr, 1e-6), 0.0, 1.0)
    ramp[magnitude < thr] = 0.0
    if thr >= 1.0:
        ramp[:] = 0.0
    return ramp * float(min(max(opacity, 0.0), 1.0))


def scale_strip(
    value_range: tuple[float, float], colormap: str, threshold: float, length: int, thickness: int
) -> np.ndarray:
    """(length, thickness, 3) uint8: a heatmap's colour scale as it is drawn over an image, low
    values at index 0, on a grey checkerboard that shows through where the map is transparent
    (below the threshold) or faint (just above it). The layer list and the report draw it."""
    alpha = heatmap_alpha(value_range, threshold, 1.0)
    at = np.linspace(0, 255, length).round().astype(np.intp)
    yy, xx = np.mgrid[0:length, 0:thickness]
    checker = np.where(((yy // 4) + (xx // 4)) % 2 == 0, 90.0, 150.0)[..., None]
    a = alpha[at][:, None, None]
    colours = colormap_lut(colormap)[at][:, None, :].astype(float)
    return np.round(checker * (1.0 - a) + colours * a).astype(np.uint8)


def _blend_heatmap(rgb: np.ndarray, layer: Layer, plane: PlaneGrid, depth: float) -> np.ndarray:
    """rgb = (1 - a) * rgb + a * colormap(value), with a = ``heatmap_alpha`` of the value, in
    uint8 through lookup tables (no float image temporaries: a heatmap usually covers the whole
    radiograph). Below the threshold a = 0 and the pixel is left exactly as it was. Returns the
    alpha table used (for the colour bar)."""
    ov: HeatmapOverlay = layer.overlay  # type: ignore[assignment]
    alpha = heatmap_alpha(ov.value_range, layer.threshold, layer.opacity)
    vals, valid = reslice(ov.image, plane, depth, order=1, fill=np.nan, out_dtype=np.float32)
    lo, hi = ov.value_range
    scaled = (vals - np.float32(lo)) * np.float32(255.0 / max(hi - lo, 1e-12))
    finite = np.isfinite(scaled)
    inside = finite if valid is None else (valid & finite)
    if not inside.any():
        return alpha
    idx = np.clip(np.where(finite, scaled, 0.0), 0, 255).astype(np.uint8)
    # alpha in 1/256ths per colour; under * keep + colour * a <= 255 * 256: uint16 holds it
    a256 = np.round(alpha * 256).astype(np.uint16)
    keep = (256 - a256).astype(np.uint16)
    add = colormap_lut(ov.colormap).astype(np.uint16) * a256[:, None]
    keep_px = np.take(keep, idx)
    all_inside = bool(inside.all())
    for c in range(3):  # per channel: 1-D table lookups and integer arithmetic only
        ch = rgb[..., c].astype(np.uint16)
        ch *= keep_px
        ch += np.take(add[:, c], idx)
        ch >>= 8
        if all_inside:
            rgb[..., c] = ch
        else:
            rgb[..., c][inside] = ch[inside]
    return alpha


def _plane_xy(plane: PlaneGrid, world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points -> ((n, 2) plane mm, (n,) depth)."""
    rcd = plane.to_plane(world)
    xy = np.stack([rcd[..., 1] * plane.spacing[1], rcd[..., 0] * plane.spacing[0]], axis=-1)
    return xy, rcd[..., 2]


def _box_primitives(
    out: ViewImage, layer: Layer, plane: PlaneGrid, depth: float, tol: float
) -> None:
    ov: BoxOverlay = layer.overlay  # type: ignore[assignment]
    ref = layer.box_reference()
    if ref is None:
        return
    box_normal = ref.direction[:, 2] if ref.shape[0] > 1 else np.cross(*ref.direction[:, :2].T)
    if abs(float(box_normal @ plane.normal)) < 0.9:
        return  # boxes live in their slice plane; not drawn edge-on in other orientations
    half_k = 0.5 * ref.spacing[0] if ref.shape[0] > 1 else np.inf
    for box in ov.boxes:
        ijk = np.array(
            [
                [box.i0, box.j0, box.k],
                [box.i1, box.j0, box.k],
                [box.i1, box.j1, box.k],
                [box.i0, box.j1, box.k],
            ],
            dtype=float,
        )
        xy, d = _plane_xy(plane, ref.index_to_world(ijk))
        if np.abs(d - depth).max() > max(half_k, tol):
            continue
        out.lines.append(Polyline(xy, ov.color, True, layer.id))
        text = box.caption or ""
        if box.score is not None:
            text = f"{text} {box.score:.2f}".strip()
        if text:
            top = xy[np.argmax(xy[:, 1])]
            out.captions.append(Caption(float(xy[:, 0].min()), float(top[1]), text, ov.color,
                                        layer.id))  # fmt: skip


def _landmark_primitives(
    out: ViewImage, layer: Layer, plane: PlaneGrid, depth: float, tol: float
) -> None:
    ov: LandmarkOverlay = layer.overlay  # type: ignore[assignment]
    if not ov.landmarks:
        return
    pts = np.array([m.position_lps for m in ov.landmarks], dtype=float)
    xy, d = _plane_xy(plane, pts)
    arm = 3.0 * max(plane.spacing)  # marker size grows with the pixel size
    for mark, (x, y), dd in zip(ov.landmarks, xy, d, strict=True):
        if abs(dd - depth) > tol:
            continue
        out.lines.append(
            Polyline(np.array([[x - arm, y], [x + arm, y]]), ov.color, False, layer.id)
        )
        out.lines.append(
            Polyline(np.array([[x, y - arm], [x, y + arm]]), ov.color, False, layer.id)
        )
        text = mark.name if mark.probability is None else f"{mark.name} {mark.probability:.2f}"
        out.captions.append(Caption(float(x + arm), float(y + arm), text, ov.color, layer.id))


def compose_view(
    base: ImageVolume,
    window: WindowLevel,
    plane: PlaneGrid,
    depth: float,
    layers: list[Layer],
) -> ViewImage:
    """Pixels and primitives of one view; ``layers`` in drawing order (bottom first)."""
    out = ViewImage(base_pixels(base, window, plane, depth))
    tol = max(plane.depth_step, 1e-3) * 0.5 + 1e-6
    if plane.n_slices <= 1:
        tol = np.inf  # a single-slice image: everything on it is on this plane
    for layer in layers:
        if not layer.visible or layer.opacity <= 0:
            continue
        ov = layer.overlay
        if isinstance(ov, LabelMapOverlay) and ov.image is not None:
            _blend_labels(out.rgb, layer, plane, depth)
        elif isinstance(ov, HeatmapOverlay) and ov.image is not None:
            alpha = _blend_heatmap(out.rgb, layer, plane, depth)
            out.colorbar = ColorBar(
                colormap_lut(ov.colormap), *ov.value_range, ov.label or ov.name, alpha,
                layer.threshold,
            )  # fmt: skip
        elif isinstance(ov, BoxOverlay):
            _box_primitives(out, layer, plane, depth, tol)
        elif isinstance(ov, LandmarkOverlay):
            _landmark_primitives(out, layer, plane, depth, tol)
    return out
