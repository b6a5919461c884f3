"""Synthetic AP hip/pelvis radiographs with AO/OTA 31-A/B proximal femur fractures.

The render is a projection: every bone is a set of primitives (spheres, tapered cylinders,
ellipsoids) whose chord length through the body gives the attenuation line integral, with a
dense cortical shell around a lighter medulla, so cortex shows brighter than medulla as on a
real radiograph. Soft tissue (pelvis, thighs) is a lower-attenuation body outline.

Anatomy is drawn in a patient frame in mm: x along image columns (+x toward image right =
patient LEFT on an AP view, the radiological convention), y along rows (down = inferior),
origin at the midline at hip level. The patient-left femur is modelled; the right is its mirror.

Fractures (AO/OTA 2018, proximal femur 31-):
- B1 subcapital: line at the head-neck junction, valgus-impacted head (overlap = sclerotic band).
- B2 transcervical: oblique (Pauwels) line through the middle of the neck, displaced.
- B3 basicervical: line at the base of the neck, proximal to the intertrochanteric line.
- A1 simple pertrochanteric: one oblique line from the greater trochanter down to the medial
  cortex above the lesser trochanter; two fragments, lateral wall intact.
- A2 multifragmentary pertrochanteric: the same line plus a detached lesser trochanter
  (posteromedial) fragment, and sometimes a greater trochanter fragment; three or more parts.
- A3 intertrochanteric: reverse-oblique (from the lateral cortex below the greater trochanter
  up to the medial side) or transverse line; the shaft displaced medially.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from models.femur_ao.anatomy import (
    _pelvis_density,
    _random_femur,
    _sacrum_spine,
    _soft_tissue,
)
from models.femur_ao.fracture import SUBTYPES, _fractured_femur, _plan_fracture

CLASSES = ("normal", *SUBTYPES)
SIDES = ("right", "left")

# Field of view of a full AP pelvis (mm): the paper's detector is 2500 x 2048 px at ~0.15 mm.
FOV_MM = (307.0, 375.0)  # (rows, columns)


@dataclass
class HipSample:
    """One AP radiograph with per-side truth.

    ``image`` is uint16 (rows, cols), MONOCHROME2 (bone bright). ``head_boxes`` map side to
    (i0, j0, i1, j1) pixel boxes (column, row) around the proximal femur (head, neck and
    trochanters: the region the paper's experts boxed). ``fracture_mask`` marks fracture-line
    pixels. ``view`` is "bilateral", "right" or "left" (single hip).
    """

    image: np.ndarray
    spacing_mm: tuple[float, float]
    labels: dict[str, str]
    head_boxes: dict[str, tuple[float, float, float, float]]
    fracture_mask: np.ndarray
    view: str
    seed: int
    meta: dict = field(default_factory=dict)


def generate(
    seed: int,
    shape: tuple[int, int] = (614, 750),
    labels: dict[str, str] | None = None,
    view: str = "bilateral",
    fracture_probability: float = 0.75,
    noise: float = 1.0,
) -> HipSample:
    """Render an AP pelvis radiograph (both hips) or one hip (``view`` "right"/"left").

    ``labels`` fixes the per-side class ({"right": "A2", "left": "normal"}); otherwise one side
    is fractured with ``fracture_probability`` and the other is normal (as in the paper's data,
    where each bilateral image gave one fractured and one normal femur).
    ``shape`` is the full bilateral (rows, columns); a single-hip view is a crop of it.
    """
    if view not in ("bilateral", "right", "left"):
        raise ValueError(f"view must be 'bilateral', 'right' or 'left', not {view!r}")
    rng = np.random.default_rng(seed)
    if labels is None:
        labels = {"right": "normal", "left": "normal"}
        if rng.random() < fracture_probability:
            labels[SIDES[int(rng.integers(2))]] = SUBTYPES[int(rng.integers(len(SUBTYPES)))]
    for side in SIDES:
        if labels.get(side, "normal") not in CLASSES:
            raise ValueError(f"unknown class {labels[side]!r} for {side}; expected {CLASSES}")
    labels = {side: labels.get(side, "normal") for side in SIDES}
    rows, cols = shape
    sy, sx = FOV_MM[0] / rows, FOV_MM[1] / cols
    s = float(rng.uniform(0.9, 1.08))  # patient size
    hip_y = rng.normal(-8.0, 8.0)  # hip level relative to the image centre (mm)
    centre_x = rng.normal(0.0, 6.0)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    y = (yy - rows / 2 + 0.5) * sy - hip_y
    x = (xx - cols / 2 + 0.5) * sx - centre_x

    density = _soft_tissue(x, y, s, 0.0, float(rng.uniform(330, 370)) * s)
    density += _sacrum_spine(x, y, s, 0.0)
    fracture_mask = np.zeros(shape, bool)
    head_boxes, head_centres, n_lines = {}, {}, {}
    for side in SIDES:
        # Patient right is on the image left: mirror x for the right side.
        mx = -x if side == "right" else x
        f = _random_femur(rng, s)
        plan = None if labels[side] == "normal" else _plan_fracture(labels[side], f, rng, s)
        # Each side is drawn on its own half of the image only (the halves do not overlap).
        cols_half = (mx[0] > 0) if side == "left" else (mx[0] >= 0)
        sl = (
            slice(None),
            slice(int(np.argmax(cols_half)), int(len(cols_half) - np.argmax(cols_half[::-1]))),
        )
        fem, line = _fractured_femur(mx[sl], y[sl], f, plan, s)
        density[sl] += fem + _pelvis_density(mx[sl], y[sl], f, s)
        fracture_mask[sl] |= line
        x0, y0, x1, y1 = f.box()
        if side == "right":
            x0, x1 = -x1, -x0
        # mm -> pixel indices (i = column, j = row)
        i0 = (x0 + centre_x) / sx + cols / 2 - 0.5
        i1 = (x1 + centre_x) / sx + cols / 2 - 0.5
        j0 = (y0 + hip_y) / sy + rows / 2 - 0.5
        j1 = (y1 + hip_y) / sy + rows / 2 - 0.5
        head_boxes[side] = (float(i0), float(j0), float(i1), float(j1))
        hx = -f.head[0] if side == "right" else f.head[0]
        head_centres[side] = (
            float((hx + centre_x) / sx + cols / 2 - 0.5),
            float((f.head[1] + hip_y) / sy + rows / 2 - 0.5),
        )
        n_lines[side] = 0 if plan is None else len(plan.lines)

    image = _expose(density, rng, sx, noise)
    sample = HipSample(
        image=image,
        spacing_mm=(sy, sx),
        labels=labels,
        head_boxes=head_boxes,
        fracture_mask=fracture_mask,
        view="bilateral",
        seed=seed,
        meta={
            "patient_scale": s,
            "head_centre_px": head_centres,  # (column, row) per side
            "head_radius_px": float(23.0 * s / sx),
            "fracture_lines": n_lines,
        },
    )
    return sample if view == "bilateral" else single_hip(sample, view)


def _expose(density: np.ndarray, rng: np.random.Generator, px_mm: float, noise: float):
    """Detector response (log signal, bone bright), blur, noise, 12-bit storage."""
    blur = ndimage.gaussian_filter(density, sigma=max(0.4 / px_mm, 0.3))
    gain = rng.uniform(0.85, 1.15)
    signal = 1.0 - np.exp(-gain * blur / 3.2)
    signal = 250.0 + 3300.0 * signal
    signal += rng.normal(0.0, 18.0 * noise, signal.shape) + ndimage.gaussian_filter(
        rng.normal(0.0, 40.0 * noise, signal.shape), 6.0
    )
    return np.clip(signal, 0, 4095).astype(np.uint16)


def single_hip(sample: HipSample, side: str) -> HipSample:
    """Crop a bilateral sample to one hip (with part of the sacrum), like a hip-joint AP film."""
    rows, cols = sample.image.shape
    width = int(round(cols * 0.58))
    c0 = 0 if side == "right" else cols - width
    crop = (slice(0, rows), slice(c0, c0 + width))
    i0, j0, i1, j1 = sample.head_boxes[side]
    return HipSample(
        image=sample.image[crop].copy(),
        spacing_mm=sample.spacing_mm,
        labels={side: sample.labels[side]},
        head_boxes={side: (i0 - c0, j0, i1 - c0, j1)},
        fracture_mask=sample.fracture_mask[crop].copy(),
        view=side,
        seed=sample.seed,
        meta={
            **sample.meta,
            "head_centre_px": {
                side: (
                    sample.meta["head_centre_px"][side][0] - c0,
                    sample.meta["head_centre_px"][side][1],
                )
            },
        },
    )


def write_study(sample: HipSample, out_dir: Path) -> Path:
    """Write the radiograph as DICOM (DX, AP) and truth.json beside it; returns the DICOM path."""
    from app.findings.truth import write_truth
    from models.common.study_writer import phantom_patient, phantom_source, write_phantom_radiograph

    out_dir = Path(out_dir)
    body = "PELVIS" if sample.view == "bilateral" else "HIP"
    desc = "AP pelvis" if sample.view == "bilateral" else f"AP {sample.view} hip"
    patient = phantom_patient(
        "PHANTOM^SYNTHETIC",
        f"FEMUR-{sample.seed:04d}",
        f"Synthetic {desc} (phantom, not a patient)",
        body,
    )
    path = write_phantom_radiograph(
        sample.image, out_dir / "image.dcm", patient=patient, spacing_mm=sample.spacing_mm,
        series_description=f"Synthetic {desc}", view_position="AP", window=(1800.0, 3200.0),
    )  # fmt: skip
    boxes = [
        {"i0": b[0], "j0": b[1], "i1": b[2], "j1": b[3], "k": 0, "caption": side}
        for side, b in sample.head_boxes.items()
    ]
    write_truth(
        out_dir,
        task="femur-ao",
        labels=dict(sample.labels),
        source=phantom_source(sample.seed),
        boxes=[("Femoral heads (truth)", boxes)],
    )
    return path


DEMO_CASES = (
    ("normal_pelvis", {"right": "normal", "left": "normal"}),
    ("neck_fracture_B2_right", {"right": "B2", "left": "normal"}),
    ("trochanteric_A2_left", {"right": "normal", "left": "A2"}),
)


def write_demo(out_dir: Path, seed: int = 0) -> list[Path]:
    """Three small AP pelvis studies into ``out_dir/femur-ao/<name>/``."""
    paths = []
    for n, (name, labels) in enumerate(DEMO_CASES):
        sample = generate(seed + 101 * n, shape=(820, 1000), labels=labels)
        paths.append(write_study(sample, Path(out_dir) / "femur-ao" / name))
    return paths
