"""The standard key images of a run, chosen from what the result holds (never from the task id).

Each picture is drawn by ``app.viewstate`` (``render_overlays``: the viewer's own composition on
the viewer's planes), so a layer looks the same in the report as on screen.

- A volume with a label map: the axial and sagittal slice through each flagged region (the
  centroid of the label-map value named by a positive finding's ``region_id``); when nothing is
  flagged, one overview pair through the centre of the label map.
- A radiograph (one slice): the image with its visible boxes/landmarks/label maps, and one
  picture per heatmap (shown or hidden by default) that explains a positive finding, or the
  most probable finding's map when none is positive; each with its colour bar.
- A volume with a shown heatmap (an explanation asked for, e.g. a vertebra's SHAP map): the
  axial and sagittal slice through the map's strongest positive value, with its colour bar,
  for the maps chosen as on a radiograph; the other pictures are drawn without heatmaps.
- Anything else: the native slice (and axial/sagittal for a volume) through the middle.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from app.findings.types import (
    AnalysisResult,
    Finding,
    HeatmapOverlay,
    LabelMapOverlay,
    LandmarkOverlay,
    Overlay,
)
from app.findings.wording import decide
from app.study.model import Series
from app.viewstate.compose import scale_strip
from app.viewstate.layers import HEATMAP_THRESHOLD
from app.viewstate.picture import font_of_size, render_overlays

MAX_REGIONS = 8  # at most this many flagged regions get their own pair of slices
MAX_HEATMAPS = 4


@dataclass
class KeyImage:
    caption: str
    rgb: np.ndarray  # (rows, cols, 3) uint8


def _label_value(overlay: LabelMapOverlay, region_id: str) -> int | None:
    for value, (name, _) in overlay.labels.items():
        if name == region_id:
            return int(value)
    if region_id.strip().isdigit():  # a label value, named in the table or not
        return int(region_id)
    return None


def render_slice(
    series: Series,
    overlays: list[Overlay],
    plane: str,
    world_point,
    window: tuple[float, float] | None = None,
    max_size: int = 1024,
) -> np.ndarray:
    """RGB (row 0 at the top) of ``plane`` through ``world_point`` with the visible overlays."""
    return render_overlays(series, overlays, plane, world_point, window, max_size).rgb


def _centroids(image: np.ndarray, values: list[int], volume) -> dict[int, np.ndarray]:
    """LPS centroid of each label value present in the map (one pass over the array).

    Big maps are read every second voxel: the centroid moves by well under a voxel.
    """
    step = 2 if image.size > 8_000_000 else 1
    sub = image[::step, ::step, ::step]
    centres = ndimage.center_of_mass(np.ones(sub.shape, dtype=np.uint8), sub, values)
    out = {}
    for v, c in zip(values, centres, strict=True):
        if c is None or not np.all(np.isfinite(c)):
            continue
        k, j, i = (float(x) * step for x in c)
        out[v] = volume.index_to_world(np.array([i, j, k]))
    return out


def _finding_caption(f: Finding, no_call: bool = False) -> str:
    """The decision in words with its numbers: "C3: fracture (p=0.91, threshold 0.50)"."""
    return f"{decide(f, no_call).text} (p={f.probability:.2f}, threshold {f.threshold:.2f})"


def standard_key_images(
    result: AnalysisResult,
    series: Series,
    window: tuple[float, float] | None = None,
    max_size: int = 768,
) -> list[KeyImage]:
    if series.image.is_2d:
        return _radiograph_images(result, series, result.overlays, window, max_size)
    # a shown heatmap gets pictures of its own (cut through its peak, with its colour bar)
    overlays = [o for o in result.overlays if o.visible and not isinstance(o, HeatmapOverlay)]
    maps = _volume_heatmap_images(result, series, overlays, window, max_size)
    labelmaps = [o for o in overlays if isinstance(o, LabelMapOverlay) and o.image is not None]
    images: list[KeyImage] = []
    for lm in labelmaps:
        flagged: list[tuple[Finding, int]] = []
        for f in result.findings:
            if f.abnormal and f.region_id:
                value = _label_value(lm, f.region_id)
                if value is not None and all(v != value for _, v in flagged):
                    flagged.append((f, value))
        flagged = flagged[:MAX_REGIONS]
        arr = np.asarray(lm.image.array)
        centres = _centroids(arr, [v for _, v in flagged], lm.image) if flagged else {}
        for f, value in flagged:
            if value not in centres:
                continue
            region = lm.labels[value][0] if value in lm.labels else f.region_id
            for plane in ("axial", "sagittal"):
                rgb = render_slice(series, overlays, plane, centres[value], window, max_size)
                caption = f"{_finding_caption(f, bool(result.no_call))}: {plane} through {region}"
                images.append(KeyImage(caption, rgb))
        if not flagged:
            # Overview through the middle one of the labelled regions (a whole-map centroid can
            # fall between them, e.g. in a disc).
            step = 2 if arr.size > 8_000_000 else 1
            present = [int(v) for v in np.unique(arr[::step, ::step, ::step]) if v > 0]
            if present:
                middle = present[(len(present) - 1) // 2]
                centre = _centroids(arr, [middle], lm.image).get(middle)
                name = lm.labels.get(middle, (str(middle),))[0]
                for plane in ("axial", "sagittal"):
                    if centre is None:
                        break
                    rgb = render_slice(series, overlays, plane, centre, window, max_size)
                    images.append(
                        KeyImage(
                            f"{lm.name}: {plane} overview through {name} (no region flagged)", rgb
                        )
                    )
    if not images:
        images = _middle_images(series, overlays, window, max_size)
    return maps + images


def _volume_heatmap_images(
    result: AnalysisResult, series: Series, plain: list[Overlay], window, max_size
) -> list[KeyImage]:
    """The shown heatmaps on a volume, chosen as on a radiograph: axial and sagittal through
    each map's peak, with the label maps and marks drawn over the study as well."""
    heatmaps = [
        o
        for o in result.overlays
        if isinstance(o, HeatmapOverlay) and o.visible and o.image is not None
    ]
    images: list[KeyImage] = []
    pictured: list[HeatmapOverlay] = []
    for hm, finding in _heatmaps_to_show(result, heatmaps):
        if any(_same_map(hm, other) for other in pictured):
            continue  # patient_overall explained by its vertebra: that vertebra's map again
        pictured.append(hm)
        point, k = heatmap_peak(hm, series)
        why = f" explains {_finding_caption(finding, bool(result.no_call))}" if finding else ""
        for plane, where in (
            ("axial", f"axial slice {k + 1} of {series.shape[0]}, through the map's peak"),
            ("sagittal", "sagittal through the map's peak"),
        ):
            rgb = render_slice(series, [hm, *plain], plane, point, window, max_size)
            images.append(KeyImage(f"{hm.name}{why}: {where}", with_colour_bar(rgb, hm)))
    return images


def _same_map(a: HeatmapOverlay, b: HeatmapOverlay) -> bool:
    ga, gb = a.image, b.image
    return (
        ga.shape == gb.shape
        and np.allclose(ga.origin, gb.origin)
        and np.allclose(ga.spacing, gb.spacing)
        and np.array_equal(np.asarray(ga.array), np.asarray(gb.array))
    )


def heatmap_peak(hm: HeatmapOverlay, series: Series) -> tuple[np.ndarray, int]:
    """LPS point of the heatmap's strongest positive value (its largest magnitude when nothing
    is positive: the evidence for the finding, else against it) and the series slice there."""
    values = np.asarray(hm.image.array, np.float64)
    flat = int(np.argmax(values)) if values.max() > 0 else int(np.argmax(np.abs(values)))
    k, j, i = np.unravel_index(flat, values.shape)
    point = hm.image.index_to_world(np.array([i, j, k], dtype=float))
    index = series.image.world_to_index(point)
    return point, int(np.clip(round(float(index[2])), 0, series.shape[0] - 1))


def _radiograph_images(
    result: AnalysisResult, series: Series, overlays: list[Overlay], window, max_size
) -> list[KeyImage]:
    centre = series.image.index_to_world(np.array([0.0, 0.0, 0.0]))
    plain = [o for o in overlays if o.visible and not isinstance(o, HeatmapOverlay)]
    # Every class map may explain a positive finding, shown or hidden in the viewer by default.
    heatmaps = [
        replace(o, visible=True)
        for o in overlays
        if isinstance(o, HeatmapOverlay) and o.image is not None
    ]
    images = [
        KeyImage(
            "Image with " + (", ".join(o.name for o in plain) if plain else "no overlay"),
            render_slice(series, plain, "native", centre, window, max_size),
        )
    ]
    for hm, finding in _heatmaps_to_show(result, heatmaps):
        why = f" explains {_finding_caption(finding, bool(result.no_call))}" if finding else ""
        rgb = render_slice(series, [hm, *plain], "native", centre, window, max_size)
        images.append(KeyImage(f"{hm.name}{why}", with_colour_bar(rgb, hm)))
    return images


def with_colour_bar(rgb: np.ndarray, hm: HeatmapOverlay) -> np.ndarray:
    """The image with the heatmap's colour scale on its right (top = high), values written on it."""
    h = rgb.shape[0]
    bar_w, pad = max(12, h // 25), max(4, h // 100)
    font = font_of_size(max(10, h // 30))
    lo, hi = hm.value_range
    texts = (f"{hi:g}", f"{lo:g}")
    # wide enough for the longer value (a SHAP range such as -0.00037 is eight characters)
    label_w = max(40, h // 8, 6 + int(max(font.getlength(t) for t in texts)))
    # drawn as the map is (the viewer's default threshold): transparent low values show grey
    bar = scale_strip(hm.value_range, hm.colormap, HEATMAP_THRESHOLD, h, bar_w)[::-1]
    out = np.zeros((h, rgb.shape[1] + pad + bar_w + label_w, 3), dtype=np.uint8)
    out[:, : rgb.shape[1]] = rgb
    out[:, rgb.shape[1] + pad : rgb.shape[1] + pad + bar_w] = bar
    image = Image.fromarray(out)
    draw = ImageDraw.Draw(image)
    x = rgb.shape[1] + pad + bar_w + 3
    draw.text((x, 0), texts[0], fill=(255, 255, 255), font=font)
    draw.text((x, h - font.size - 4), texts[1], fill=(255, 255, 255), font=font)
    return np.asarray(image).copy()


def _heatmaps_to_show(
    result: AnalysisResult, heatmaps: list[HeatmapOverlay]
) -> list[tuple[HeatmapOverlay, Finding | None]]:
    """Heatmaps of positive findings first; if none is positive, the most probable finding's."""

    def finding_for(hm: HeatmapOverlay) -> Finding | None:
        matches = [f for f in result.findings if hm.label and f.label == hm.label]
        side_match = [f for f in matches if f.side and f.side in hm.name.lower()]
        matches = side_match or matches
        return max(matches, key=lambda f: f.probability) if matches else None

    paired = [(hm, finding_for(hm)) for hm in heatmaps]
    # a normal class's map explains no abnormality, even when that class is not called
    positive = [(hm, f) for hm, f in paired if f is not None and f.abnormal and not f.normal_class]
    if positive:
        chosen = positive
    else:
        with_f = [(hm, f) for hm, f in paired if f is not None]
        chosen = sorted(with_f, key=lambda p: -p[1].probability)[:1] or paired[:1]
    return chosen[:MAX_HEATMAPS]


def _middle_images(series: Series, overlays, window, max_size) -> list[KeyImage]:
    """The acquired slice through the landmarks' mean position, else through the middle."""
    vol = series.image
    nk, nj, ni = vol.shape
    centre = vol.index_to_world(np.array([(ni - 1) / 2, (nj - 1) / 2, (nk - 1) / 2]))
    points = [
        m.position_lps for o in overlays if isinstance(o, LandmarkOverlay) for m in o.landmarks
    ]
    caption = "Middle slice as acquired"
    if points:
        centre = np.mean(np.asarray(points, dtype=float), axis=0)
        caption = "Slice through the landmarks, as acquired"
    rgb = render_slice(series, overlays, "native", centre, window, max_size)
    return [KeyImage(caption, rgb)]
