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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from models.common import xray_render as xr

TASK_ID = "calcaneus-fracture"

LABELS: tuple[str, ...] = (
    "Calcaneal Tuberosity",
    "Primary Line",
    "Collapse Fracture Block",
    "Calcaneal Body",
    "Posterior Articular Surface",
    "Tongue Fracture Block",
)
# Per-label probability given a fractured heel. With these the mean number of labels per
# fractured image is about 2.9, close to the paper's label cardinality (2.94).
DEFAULT_LABEL_PROBS: dict[str, float] = {
    "Calcaneal Tuberosity": 0.45,
    "Primary Line": 0.75,
    "Collapse Fracture Block": 0.45,
    "Calcaneal Body": 0.55,
    "Posterior Articular Surface": 0.55,
    "Tongue Fracture Block": 0.3,
}
LABEL_COLORS: dict[str, tuple[int, int, int]] = {
    "Calcaneal Tuberosity": (230, 25, 75),
    "Primary Line": (255, 225, 25),
    "Collapse Fracture Block": (245, 130, 48),
    "Calcaneal Body": (60, 180, 75),
    "Posterior Articular Surface": (0, 130, 200),
    "Tongue Fracture Block": (145, 30, 180),
}
BONES: tuple[str, ...] = ("Calcaneus", "Talus", "Tibia", "Fibula", "Navicular", "Cuboid")
BONE_COLORS = [
    (200, 200, 90),
    (90, 160, 220),
    (150, 220, 150),
    (220, 150, 150),
    (200, 130, 220),
    (130, 220, 220),
]

# ---- outlines in the calcaneus frame (mm; x toward the toes, y toward the sole) ----------------
CALCANEUS = np.array([
    [-42, -8], [-34, -12], [-24, -14], [-16, -17], [-9, -21.5], [-2, -24], [4, -23.5], [8, -19.5],
    [11, -15], [18, -15.5], [27, -16.5], [35, -16], [39, -13], [40, -6], [37, -1], [31, 0],
    [20, 3], [5, 9], [-10, 15], [-22, 20], [-32, 24], [-40, 21.5], [-45, 12], [-46.5, 2],
    [-45, -4],
])  # fmt: skip
TALUS = np.array([
    [-21, -24], [-23, -31], [-19, -44], [-8, -54], [5, -54.5], [15, -48], [22, -42],
    [31, -40.5], [40, -38.5], [46, -32], [45.5, -24.5], [39, -20.5], [30, -21.5], [20, -21.5],
    [12, -22], [6, -25.5], [-2, -26.5], [-9, -24], [-15, -21.5],
])  # fmt: skip
TIBIA = np.array([
    [-23, -150], [-21, -80], [-22, -64], [-19.5, -57], [-16, -53.5], [-6, -58.8], [7, -57.8],
    [16, -51], [20, -54], [19.5, -62], [15, -80], [12, -150],
])  # fmt: skip
FIBULA = np.array([
    [-27, -150], [-17, -150], [-15, -75], [-8, -56], [-9, -44], [-14, -34], [-21, -38],
    [-25, -55], [-25, -80],
])  # fmt: skip
NAVICULAR = np.array([
    [48.5, -40.5], [55, -43], [60, -37], [60, -24], [55, -18], [48.5, -20], [47.5, -30],
])  # fmt: skip
CUBOID = np.array([[43, -12], [60, -16], [70, -10], [72, 6], [58, 10], [44, 6], [43, -3]])
CUNEIFORM = np.array([[62, -44], [80, -46], [82, -16], [63, -17], [61.5, -30]])
SOFT_TISSUE = np.array([
    [-52, -160], [-50, -90], [-49, -40], [-53, -12], [-55, 8], [-51, 25], [-40, 33.5],
    [-20, 35], [0, 33], [30, 30], [60, 28], [110, 27], [110, -46], [62, -48], [42, -57],
    [29, -76], [26, -160],
])  # fmt: skip
ACHILLES = np.array([[-47, -160], [-44, -90], [-42, -40], [-41, -17]])
KAGER_FAT = np.array([[-38, -85], [-37, -30], [-26, -36], [-25, -70]])

ANKLE_CENTRE = (0.0, -45.0)  # centre of the talar dome's curvature

# Fragments that move: the joint-depression block under the posterior facet, and the tongue
# (posterior facet with the upper tuberosity, hinged at its anterior end).
COLLAPSE_BLOCK = np.array([[-13, -32], [7, -32], [7, -9], [-2, -7], [-13, -9]])
TONGUE_FRAGMENT = np.array([[-50, -40], [8, -40], [8, -15], [-4, -11], [-25, -8.5], [-50, -6]])


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
        grid = xr.Grid(*self.image.shape, *self.pixel_spacing_mm)
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
    grid = xr.Grid(rows, cols, pixel_mm, pixel_mm)
    present = _choose_labels(rng, p_fracture, label_probs, labels)

    scale = rng.uniform(*scale_range)
    angle = rng.uniform(-max_rotation_deg, max_rotation_deg)
    pitch = rng.uniform(-3, 3)  # calcaneal pitch varies: the hindfoot turns about the ankle
    # Calcaneus frame origin placed so heel, ankle and midfoot fit in a 150 mm field. ``zoom`` is
    # the patient's size; anatomy stays in true millimetres whatever the pixel size.
    zoom = scale
    anchor = np.array([0.42 * grid.width_mm, 0.60 * grid.height_mm]) + rng.normal(0, 2.5, 2)

    def place_leg(pts: np.ndarray) -> np.ndarray:
        return xr.rotate(np.asarray(pts, float) * zoom, angle) + anchor

    def place(pts: np.ndarray) -> np.ndarray:
        return place_leg(xr.rotate(np.asarray(pts, float), pitch, ANKLE_CENTRE))

    def outline(points: np.ndarray, jitter: float = 0.6, leg: bool = False) -> np.ndarray:
        fn = place_leg if leg else place
        return xr.smooth_closed(fn(xr.jitter_outline(points, rng, jitter)), 200)

    # Soft tissue: leg, heel pad and midfoot, with the Achilles tendon and Kager's fat pad.
    soft = xr.polygon_mask(grid, outline(SOFT_TISSUE, 1.5, leg=True))
    mu = xr.soft_tissue_attenuation(soft, grid, 75.0 * zoom)
    achilles = xr.polyline_mask(grid, place_leg(ACHILLES), 7.0 * zoom) & soft
    mu += ndimage.gaussian_filter(achilles.astype(np.float32), 4) * 0.002 * 30
    fat = xr.polygon_mask(grid, outline(KAGER_FAT, 1.0, leg=True)) & soft
    mu -= (xr.MU_SOFT - xr.MU_FAT) * xr.projected_thickness(fat, grid, 45.0 * zoom)

    bones = np.zeros(grid.shape, dtype=np.uint8)
    depth = {"Talus": 34, "Tibia": 32, "Fibula": 14, "Navicular": 28, "Cuboid": 30}
    cortex = {"Talus": 1.2, "Tibia": 2.2, "Fibula": 1.8, "Navicular": 1.0, "Cuboid": 1.0}
    for name, pts in (("Tibia", TIBIA), ("Fibula", FIBULA), ("Talus", TALUS),
                      ("Navicular", NAVICULAR), ("Cuboid", CUBOID)):  # fmt: skip
        cover = xr.polygon_coverage(grid, outline(pts, leg=name in ("Tibia", "Fibula")))
        mask = cover >= 0.5
        mu += xr.bone_attenuation(mask, grid, depth[name] * zoom, cortex[name] * zoom, rng,
                                  coverage=cover)  # fmt: skip
        bones[mask & (bones == 0)] = BONES.index(name) + 1
    cune = xr.polygon_coverage(grid, outline(CUNEIFORM))
    mu += xr.bone_attenuation(cune >= 0.5, grid, 30 * zoom, 1.0 * zoom, rng, coverage=cune)
    # The medial malleolus projects over the talus on a true lateral view.
    mall = xr.polygon_mask(grid, place_leg(xr.ellipse_outline((2, -57), 10, 6)))
    mu += xr.MU_CANCELLOUS * xr.projected_thickness(mall, grid, 8 * zoom)

    # Calcaneus with its sustentaculum (medial shelf seen end-on over the middle facet).
    calc_outline = outline(CALCANEUS, 0.5)
    calc_cover = xr.polygon_coverage(grid, calc_outline)
    calc = calc_cover >= 0.5
    mu_calc = xr.bone_attenuation(calc, grid, 40 * zoom, 1.1 * zoom, rng, trabecular=0.14,
                                  coverage=calc_cover)  # fmt: skip
    sust = xr.polygon_mask(grid, place(xr.ellipse_outline((14, -11.5), 7, 3, -8)))
    mu_calc += xr.bone_attenuation(sust & calc, grid, 6 * zoom, 0.8 * zoom, rng)
    # The "neutral triangle" below the angle of Gissane has sparse trabeculae.
    tri = xr.polygon_mask(grid, place(np.array([[2, -10], [18, -11], [8, 6]]))) & calc
    mu_calc *= 1.0 - 0.25 * ndimage.gaussian_filter(tri.astype(np.float32), 6)

    frac = _FractureDrawer(grid, rng, place, zoom, angle + pitch)
    mu_calc, calc = frac.draw(present, mu_calc, calc)
    mu += mu_calc
    bones[calc] = BONES.index("Calcaneus") + 1

    img, field_mask = xr.expose(mu, grid, rng, xr.Exposure(noise=0.01))
    side = "left" if rng.random() < 0.5 else "right"
    img = xr.draw_marker(img, grid, side[0].upper(), (0.86 * grid.width_mm, 0.08 * grid.height_mm))
    pixels = xr.to_uint(img, 12)
    regions = np.where(calc, frac.regions, 0).astype(np.uint8)  # only inside the heel bone
    rough = _rough_mask(rng, grid, regions > 0, calc, rough_dilate_mm, rough_shift_mm,
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


def _choose_labels(rng, p_fracture, label_probs, forced) -> dict[str, bool]:
    if forced is not None:
        unknown = set(forced) - set(LABELS)
        if unknown:
            raise ValueError(f"unknown calcaneus labels {sorted(unknown)}; known: {LABELS}")
        return {n: bool(forced.get(n, False)) for n in LABELS}
    probs = {**DEFAULT_LABEL_PROBS, **(label_probs or {})}
    draws = rng.random(len(LABELS) + 2)
    if draws[0] >= p_fracture:
        return dict.fromkeys(LABELS, False)
    present = {n: bool(draws[k + 1] < probs[n]) for k, n in enumerate(LABELS)}
    if present["Collapse Fracture Block"] and present["Tongue Fracture Block"]:
        drop = "Tongue Fracture Block" if draws[-1] < 0.6 else "Collapse Fracture Block"
        present[drop] = False
    if not any(present.values()):
        weights = np.array([probs[n] for n in LABELS], dtype=float)
        present[LABELS[int(rng.choice(len(LABELS), p=weights / weights.sum()))]] = True
    return present


class _FractureDrawer:
    """Draws each present label's fracture in the calcaneus and records where it drew."""

    def __init__(self, grid: xr.Grid, rng, place, zoom: float, angle: float) -> None:
        self.grid, self.rng, self.place, self.zoom, self.angle = grid, rng, place, zoom, angle
        self.regions = np.zeros(grid.shape, dtype=np.uint8)
        self.lucent = np.zeros(grid.shape, dtype=np.float32)
        self.facet_drop = 0.0  # mm the posterior facet's top moved down (for Boehler's angle)

    def code(self, name: str) -> int:
        return LABELS.index(name) + 1

    def line(self, name: str, start, end, n: int = 9, rough: float = 0.7) -> None:
        pts = self.place(xr.jagged_line(start, end, self.rng, n, rough))
        width = self.rng.uniform(0.4, 0.8) * self.zoom
        m = xr.polyline_mask(self.grid, pts, width)
        self.lucent = np.maximum(self.lucent, m.astype(np.float32))
        self.mark(name, xr.dilate_mm(m, self.grid, 0.7))

    def mark(self, name: str, mask: np.ndarray) -> None:
        self.regions[mask] = self.code(name)

    def move(self, name, mu, calc, fragment_pts, shift_mm=(0.0, 0.0), hinge=None, turn_deg=0.0):
        """Move a fragment (translation in the calcaneus frame, or a turn about a hinge point)."""
        g = self.grid
        frag = xr.polygon_mask(g, self.place(fragment_pts)) & calc
        # Work in pixel (row, col) coordinates: out(p) = in(A^-1 (p - c) + c) - shift.
        a = np.deg2rad(turn_deg)
        if hinge is not None:
            c = self.place(np.array([hinge]))[0] / np.array([g.col_mm, g.row_mm])
            centre = np.array([c[1], c[0]])
        else:
            centre = np.zeros(2)
        rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # (row, col), y down
        d = xr.rotate(np.array([shift_mm]) * self.zoom, self.angle)[0]
        shift_px = np.array([d[1] / g.row_mm, d[0] / g.col_mm])
        inv = np.linalg.inv(rot)
        offset = centre - inv @ (centre + shift_px)

        def warp(arr, order=1):
            return ndimage.affine_transform(arr, inv, offset=offset, order=order, cval=0)

        moved_mu = warp(np.where(frag, mu, 0).astype(np.float32))
        moved = warp(frag.astype(np.float32), 1) > 0.5
        # Where the fragment is driven into the bone left behind, densities partly add up: the
        # impaction's sclerotic band.
        rest = np.where(frag, 0, mu)
        mu = rest + moved_mu - 0.6 * np.minimum(rest, moved_mu)
        calc = (calc & ~frag) | moved
        edge = moved & ~ndimage.binary_erosion(moved, iterations=2)
        rim = xr.dilate_mm(edge, g, 0.8) & calc
        inner_edge = rim & ~xr.dilate_mm(~calc, g, 1.2)  # the boundary inside the bone
        self.lucent = np.maximum(self.lucent, 0.5 * ndimage.binary_erosion(inner_edge))
        self.mark(name, xr.dilate_mm(rim, g, 0.5) & calc)
        return mu, calc

    def draw(self, present: dict[str, bool], mu: np.ndarray, calc: np.ndarray):
        r = self.rng
        if present["Collapse Fracture Block"]:
            drop = r.uniform(2.5, 5.5)
            self.facet_drop += drop
            mu, calc = self.move("Collapse Fracture Block", mu, calc, COLLAPSE_BLOCK,
                                 shift_mm=(r.uniform(-1, 1), drop))  # fmt: skip
        if present["Tongue Fracture Block"]:
            turn = r.uniform(6, 14)  # posterior end up, facet rotates down about its front
            self.facet_drop += 0.15 * turn
            mu, calc = self.move("Tongue Fracture Block", mu, calc, TONGUE_FRAGMENT,
                                 hinge=(8, -15), turn_deg=-turn)  # fmt: skip
            self.line("Tongue Fracture Block", (-4, -11.5), (-45, -6 + r.uniform(-2, 2)), 10)
        if present["Primary Line"]:
            self.line("Primary Line", (r.uniform(7, 12), -18), (r.uniform(-8, 6), 15), 10, 0.9)
        if present["Calcaneal Tuberosity"]:
            x0 = r.uniform(-36, -28)
            self.line("Calcaneal Tuberosity", (x0, -16), (x0 - r.uniform(4, 10), 19), 9)
        if present["Calcaneal Body"]:
            y0 = r.uniform(-2, 6)
            self.line("Calcaneal Body", (-22, y0), (22, y0 + r.uniform(-4, 4)), 11, 1.0)
            if r.random() < 0.5:
                x0 = r.uniform(-15, 10)
                self.line("Calcaneal Body", (x0, y0), (x0 + r.uniform(-6, 6), 12), 6)
        if present["Posterior Articular Surface"]:
            x0 = r.uniform(-9, 2)
            self.line("Posterior Articular Surface", (x0, -27), (x0 + r.uniform(-3, 3), -15), 6)
            self.line("Posterior Articular Surface", (x0 - 6, -22), (x0 + 6, -21), 5, 0.5)
        soft = ndimage.gaussian_filter(self.lucent, 0.35 / self.grid.row_mm)
        return mu * (1 - 0.55 * np.clip(soft, 0, 1)), calc

    def bohler_angle(self) -> float:
        """Boehler's angle (degrees) from the tuberosity, facet and anterior-process tops."""
        tub, facet, ant = np.array([-42, -8]), np.array([-2, -24 + self.facet_drop]), [35, -16]
        a1 = np.degrees(np.arctan2(tub[1] - facet[1], facet[0] - tub[0]))
        a2 = np.degrees(np.arctan2(ant[1] - facet[1], ant[0] - facet[0]))
        return float(a1 + a2)


def _rough_mask(rng, grid, fine, calc, dilate_mm, shift_mm, drop_prob) -> np.ndarray:
    """A quick, imperfect annotation: grown, blobby, shifted, with blocks missing."""
    if not fine.any():
        return np.zeros(grid.shape, dtype=bool)
    grown = xr.dilate_mm(fine, grid, rng.uniform(*dilate_mm)).astype(np.float32)
    px = 2.0 / grid.row_mm
    wobbly = ndimage.gaussian_filter(grown, px) + 0.12 * xr.smooth_noise(rng, grid.shape, px * 2)
    rough = wobbly > 0.45
    dx, dy = rng.normal(0, shift_mm, 2)
    rough = xr.shift_mm(rough.astype(np.float32), grid, dx, dy, order=0) > 0.5
    cell = max(4, int(round(rng.uniform(6, 10) / grid.row_mm)))
    keep = rough.copy()
    for r0 in range(0, grid.rows, cell):
        for c0 in range(0, grid.cols, cell):
            block = rough[r0 : r0 + cell, c0 : c0 + cell]
            if block.any() and rng.random() < drop_prob:
                keep[r0 : r0 + cell, c0 : c0 + cell] = False
    if not keep.any():  # never drop everything: an annotation has at least one stroke
        keep = rough
    return keep


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
