"""Synthetic lateral calcaneus radiographs with the six MSRT fracture-region labels.

The labels are named as in the MSRT paper (Calcaneal Tuberosity, Primary Line, Collapse Fracture
Block, Calcaneal Body, Posterior Articular Surface, Tongue Fracture Block); each present label
draws fracture lines in its region of the heel bone, and the collapse and tongue labels also
displace their fragment (joint-depression and tongue-type patterns, which flatten Boehler's
angle). Truth per sample: the six labels, a fine fracture mask whose value says which label
drew each pixel, a rough (imperfect) fracture mask like a quick annotation or a weak segmenter
gives (the paper's model input, see its GridDropIn&Out section), and a bone label map.

Geometry: anatomy is defined in a calcaneus frame (x toward the toes, y toward the sole, mm)
and placed on the image by a random similarity transform; the image is MONOCHROME2, 12-bit.

The outlines are in ``anatomy.py``, the labels and the fractures they draw (and the rough mask)
in ``fracture.py``; this module places and projects the foot and writes a sample as a study.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from models.calcaneus_msrt.anatomy import (
    ACHILLES,
    ANKLE_CENTRE,
    CALCANEUS,
    CUBOID,
    CUNEIFORM,
    FIBULA,
    KAGER_FAT,
    NAVICULAR,
    SOFT_TISSUE,
    TALUS,
    TIBIA,
)
from models.calcaneus_msrt.fracture import FractureDrawer, choose_labels, rough_mask
from models.calcaneus_msrt.labels import LABEL_COLORS, LABELS
from models.common import xray_density as xd
from models.common import xray_grid as xg
from models.common import xray_outline as xo
from models.common import xray_render as xr

TASK_ID = "calcaneus-fracture"

BONES: tuple[str, ...] = ("Calcaneus", "Talus", "Tibia", "Fibula", "Navicular", "Cuboid")
BONE_COLORS = [
    (200, 200, 90),
    (90, 160, 220),
    (150, 220, 150),
    (220, 150, 150),
    (200, 130, 220),
    (130, 220, 220),
]


@dataclass
class CalcaneusSample:
    """One synthetic lateral calcaneus radiograph and its truth."""

    image: np.ndarray  # (rows, cols) uint16, 12-bit, MONOCHROME2 (bone bright)
    pixel_spacing_mm: tuple[float, float]  # (row, column)
    labels: dict[str, bool]  # the six MSRT labels
    fracture_regions: np.ndarray  # uint8: 0 none, n = LABELS[n - 1] drew this fracture pixel
    rough_mask: np.ndarray  # bool: imperfect annotation of the fracture region
    bones: np.ndarray  # uint8: n = BONES[n - 1]
    field: np.ndarray  # bool: inside the collimated field
    seed: int
    side: str  # "left" / "right" (marker only; the view is lateral)
    window: tuple[float, float]
    bohler_angle_deg: float
    params: dict = field(default_factory=dict)

    @property
    def fracture_mask(self) -> np.ndarray:
        return self.fracture_regions > 0

    @property
    def fractured(self) -> bool:
        return any(self.labels.values())

    def label_vector(self) -> np.ndarray:
        return np.array([float(self.labels[n]) for n in LABELS], dtype=np.float32)

    def volume(self, array: np.ndarray | None = None):
        """The study-frame ``ImageVolume`` (1, rows, cols) for the image or a same-shape map."""
        grid = xg.Grid(*self.image.shape, *self.pixel_spacing_mm)
        return xr.radiograph_volume(self.image if array is None else array, grid)


def generate(
    seed: int,
    rows: int = 512,
    cols: int = 512,
    pixel_mm: float = 0.3,
    p_fracture: float = 0.7,
    label_probs: dict[str, float] | None = None,
    labels: dict[str, bool] | None = None,
    max_rotation_deg: float = 6.0,
    scale_range: tuple[float, float] = (0.9, 1.1),
    rough_dilate_mm: tuple[float, float] = (1.5, 4.0),
    rough_shift_mm: float = 1.5,
    rough_drop_prob: float = 0.15,
) -> CalcaneusSample:
    """Render one lateral calcaneus radiograph for ``seed``.

    ``labels`` forces the six labels (missing ones False); otherwise a heel is fractured with
    probability ``p_fracture`` and each label is then drawn with ``label_probs`` (at least one;
    collapse and tongue patterns exclude each other, as joint-depression vs tongue type).
    """
    rng = np.random.default_rng(seed)
    grid = xg.Grid(rows, cols, pixel_mm, pixel_mm)
    present = choose_labels(rng, p_fracture, label_probs, labels)

    scale = rng.uniform(*scale_range)
    angle = rng.uniform(-max_rotation_deg, max_rotation_deg)
    pitch = rng.uniform(-3, 3)  # calcaneal pitch varies: the hindfoot turns about the ankle
    # Calcaneus frame origin placed so heel, ankle and midfoot fit in a 150 mm field. ``zoom`` is
    # the patient's size; anatomy stays in true millimetres whatever the pixel size.
    zoom = scale
    anchor = np.array([0.42 * grid.width_mm, 0.60 * grid.height_mm]) + rng.normal(0, 2.5, 2)

    def place_leg(pts: np.ndarray) -> np.ndarray:
        return xo.rotate(np.asarray(pts, float) * zoom, angle) + anchor

    def place(pts: np.ndarray) -> np.ndarray:
        return place_leg(xo.rotate(np.asarray(pts, float), pitch, ANKLE_CENTRE))

    def outline(points: np.ndarray, jitter: float = 0.6, leg: bool = False) -> np.ndarray:
        fn = place_leg if leg else place
        return xo.smooth_closed(fn(xo.jitter_outline(points, rng, jitter)), 200)

    # Soft tissue: leg, heel pad and midfoot, with the Achilles tendon and Kager's fat pad.
    soft = xg.polygon_mask(grid, outline(SOFT_TISSUE, 1.5, leg=True))
    mu = xd.soft_tissue_attenuation(soft, grid, 75.0 * zoom)
    achilles = xg.polyline_mask(grid, place_leg(ACHILLES), 7.0 * zoom) & soft
    mu += ndimage.gaussian_filter(achilles.astype(np.float32), 4) * 0.002 * 30
    fat = xg.polygon_mask(grid, outline(KAGER_FAT, 1.0, leg=True)) & soft
    mu -= (xd.MU_SOFT - xd.MU_FAT) * xd.projected_thickness(fat, grid, 45.0 * zoom)

    bones = np.zeros(grid.shape, dtype=np.uint8)
    depth = {"Talus": 34, "Tibia": 32, "Fibula": 14, "Navicular": 28, "Cuboid": 30}
    cortex = {"Talus": 1.2, "Tibia": 2.2, "Fibula": 1.8, "Navicular": 1.0, "Cuboid": 1.0}
    for name, pts in (("Tibia", TIBIA), ("Fibula", FIBULA), ("Talus", TALUS),
                      ("Navicular", NAVICULAR), ("Cuboid", CUBOID)):  # fmt: skip
        cover = xg.polygon_coverage(grid, outline(pts, leg=name in ("Tibia", "Fibula")))
        mask = cover >= 0.5
        mu += xd.bone_attenuation(mask, grid, depth[name] * zoom, cortex[name] * zoom, rng,
                                  coverage=cover)  # fmt: skip
        bones[mask & (bones == 0)] = BONES.index(name) + 1
    cune = xg.polygon_coverage(grid, outline(CUNEIFORM))
    mu += xd.bone_attenuation(cune >= 0.5, grid, 30 * zoom, 1.0 * zoom, rng, coverage=cune)
    # The medial malleolus projects over the talus on a true lateral view.
    mall = xg.polygon_mask(grid, place_leg(xo.ellipse_outline((2, -57), 10, 6)))
    mu += xd.MU_CANCELLOUS * xd.projected_thickness(mall, grid, 8 * zoom)

    # Calcaneus with its sustentaculum (medial shelf seen end-on over the middle facet).
    calc_outline = outline(CALCANEUS, 0.5)
    calc_cover = xg.polygon_coverage(grid, calc_outline)
    calc = calc_cover >= 0.5
    mu_calc = xd.bone_attenuation(calc, grid, 40 * zoom, 1.1 * zoom, rng, trabecular=0.14,
                                  coverage=calc_cover)  # fmt: skip
    sust = xg.polygon_mask(grid, place(xo.ellipse_outline((14, -11.5), 7, 3, -8)))
    mu_calc += xd.bone_attenuation(sust & calc, grid, 6 * zoom, 0.8 * zoom, rng)
    # The "neutral triangle" below the angle of Gissane has sparse trabeculae.
    tri = xg.polygon_mask(grid, place(np.array([[2, -10], [18, -11], [8, 6]]))) & calc
    mu_calc *= 1.0 - 0.25 * ndimage.gaussian_filter(tri.astype(np.float32), 6)

    frac = FractureDrawer(grid, rng, place, zoom, angle + pitch)
    mu_calc, calc = frac.draw(present, mu_calc, calc)
    mu += mu_calc
    bones[calc] = BONES.index("Calcaneus") + 1

    img, field_mask = xr.expose(mu, grid, rng, xr.Exposure(noise=0.01))
    side = "left" if rng.random() < 0.5 else "right"
    img = xr.draw_marker(img, grid, side[0].upper(), (0.86 * grid.width_mm, 0.08 * grid.height_mm))
    pixels = xr.to_uint(img, 12)
    regions = np.where(calc, frac.regions, 0).astype(np.uint8)  # only inside the heel bone
    rough = rough_mask(rng, grid, regions > 0, calc, rough_dilate_mm, rough_shift_mm,
                        rough_drop_prob)  # fmt: skip
    return CalcaneusSample(
        image=pixels,
        pixel_spacing_mm=(pixel_mm, pixel_mm),
        labels={n: bool(present[n]) for n in LABELS},
        fracture_regions=regions,
        rough_mask=rough,
        bones=bones,
        field=field_mask,
        seed=seed,
        side=side,
        window=xr.display_window(pixels, field_mask),
        bohler_angle_deg=frac.bohler_angle(),
        params={"scale": float(scale), "rotation_deg": float(angle), "pitch_deg": float(pitch)},
    )


# ---- writing -------------------------------------------------------------------------------


def write_study(sample: CalcaneusSample, out_dir: Path) -> Path:
    """Write the radiograph as DX DICOM plus truth.json (+ label maps); returns ``out_dir``."""
    from app.findings.truth import write_truth
    from models.common.study_writer import phantom_patient, phantom_source, write_phantom_radiograph

    out_dir = Path(out_dir)
    patient = phantom_patient(
        f"PHANTOM^CALCANEUS^{sample.seed}", f"PH-CALC-{sample.seed:05d}",
        "Synthetic lateral calcaneus (phantom, not a patient)", "FOOT",
    )  # fmt: skip
    write_phantom_radiograph(
        sample.image, out_dir / "calcaneus_lateral.dcm", patient=patient,
        spacing_mm=sample.pixel_spacing_mm, series_description=f"Calcaneus lateral {sample.side}",
        view_position="LL" if sample.side == "left" else "RL", window=sample.window,
        tags={"PatientOrientation": ["A", "F"]},  # toes to the image's right, sole down
    )  # fmt: skip
    present = [n for n in LABELS if sample.labels[n]]
    regions = {n + 1: (name, LABEL_COLORS[name]) for n, name in enumerate(LABELS)}
    write_truth(
        out_dir,
        TASK_ID,
        labels={
            **{n: sample.labels[n] for n in LABELS},
            "fractured": sample.fractured,
            "present": present,
            "side": sample.side,
            "bohler_angle_deg": round(sample.bohler_angle_deg, 1),
        },
        source=phantom_source(sample.seed, "models.calcaneus_msrt.phantom"),
        labelmaps=[
            ("Fracture regions (truth)", sample.volume(sample.fracture_regions), regions),
            (
                "Rough fracture mask (input)",
                sample.volume(sample.rough_mask.astype(np.uint8)),
                {1: ("Rough fracture mask", (255, 80, 80))},
            ),
            (
                "Bones (truth)",
                sample.volume(sample.bones),
                {n + 1: (b, BONE_COLORS[n]) for n, b in enumerate(BONES)},
            ),
        ],  # fmt: skip
    )
    return out_dir


def write_demo(out_dir: Path, seed: int = 0, rows: int = 512, cols: int = 512) -> list[Path]:
    """A normal heel, a joint-depression fracture and a tongue-type fracture."""
    base = Path(out_dir) / TASK_ID
    cases = [
        ("normal", {}),
        ("joint_depression", {"Primary Line": True, "Collapse Fracture Block": True,
                              "Posterior Articular Surface": True, "Calcaneal Body": True}),
        ("tongue_type", {"Primary Line": True, "Tongue Fracture Block": True,
                         "Calcaneal Tuberosity": True}),
    ]  # fmt: skip
    out = []
    for n, (name, labels) in enumerate(cases):
        sample = generate(seed * 100 + n, rows=rows, cols=cols, labels=labels)
        out.append(write_study(sample, base / f"{n + 1:02d}_{name}"))
    return out
