"""Synthetic sagittal T2-weighted lumbar MR: a few slices, 11 landmarks, per-object labels.

The CCF-Net paper (Zhang et al.) localises and classifies eleven objects on one sagittal T2
slice: the vertebrae L1-L5 and the discs T12-L1, L1-L2, L2-L3, L3-L4, L4-L5, L5-S1 (the
Tianchi spinal disease dataset's labels), each normal or diseased. This generator draws the
mid-sagittal slice (the labelled one) and its neighbours: vertebral bodies with marrow signal
and dark cortical endplates, discs with a bright nucleus, the CSF-filled thecal sac with conus
and cauda equina, posterior elements, paraspinal fat and muscle, abdominal contents; then a
surface-coil bias field and Rician noise.

Disease: a degenerated disc is darker (dehydrated nucleus), thinner and may bulge into the
canal; a diseased vertebra has endplate (Modic-like) signal change and small osteophytes.
Adjacent objects tend to share disease, as the paper's context module assumes.

Geometry: standard sagittal DICOM orientation (rows toward the feet, columns toward the back:
ImageOrientationPatient 0\\1\\0\\0\\0\\-1), slices stacked toward the patient's right.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from models.common import xray_render as xr
from models.spine_xray.phantom import body_outline, local_frame

TASK_ID = "lumbar-mri"
VERTEBRAE: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5")
DISCS: tuple[str, ...] = ("T12-L1", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")
OBJECTS: tuple[str, ...] = VERTEBRAE + DISCS  # label map value = index + 1
STATUS = ("normal", "diseased")
# Degeneration is commonest at the lowest discs.
DEFAULT_DISC_PROBS = (0.12, 0.15, 0.2, 0.3, 0.45, 0.45)
DEFAULT_VERTEBRA_PROB = 0.15
CONTEXT_BOOST = 0.35  # added to a vertebra's disease probability per diseased neighbouring disc

# Column levels drawn (T11 partly in view, down to L5; the sacrum follows).
_LEVELS = ("T11", "T12", "L1", "L2", "L3", "L4", "L5")
_HEIGHT = np.array([22.0, 23.5, 25.0, 26.0, 27.0, 27.0, 26.0])
_DEPTH = np.array([28.0, 30.0, 32.0, 33.0, 34.0, 34.0, 33.0])
_WIDTH = np.array([37.0, 40.0, 42.0, 45.0, 48.0, 50.0, 52.0])
_DISC = np.array([6.0, 7.0, 8.5, 9.5, 10.5, 11.0, 10.0])  # below each level; last is L5-S1

# T2 signal (arbitrary units, 1 = CSF).
SIG = {
    "fat": 0.78, "muscle": 0.22, "marrow": 0.42, "cortex": 0.04, "annulus": 0.18,
    "nucleus": 0.82, "nucleus_dark": 0.24, "csf": 1.0, "cord": 0.42, "ligament": 0.08,
    "bowel": 0.38, "vessel": 0.05,
}  # fmt: skip


@dataclass
class LumbarSample:
    """A small sagittal T2 series with landmark and disease truth."""

    volume: np.ndarray  # (slices, rows, cols) uint16
    spacing: tuple[float, float, float]  # (slice, row, column) mm
    origin: np.ndarray  # LPS of voxel (0, 0, 0)
    direction: np.ndarray  # columns: LPS directions of i, j, k
    mid_slice: int  # index of the labelled (mid-sagittal) slice
    landmarks_px: dict[str, tuple[float, float]]  # name -> (i, j) on the mid slice
    status: dict[str, str]  # name -> "normal" / "diseased"
    objects: np.ndarray  # uint8 (slices, rows, cols), n = OBJECTS[n - 1]
    seed: int
    window: tuple[float, float]
    params: dict = field(default_factory=dict)

    def image_volume(self, array: np.ndarray | None = None):
        from app.study.geometry import ImageVolume

        arr = self.volume if array is None else array
        return ImageVolume(arr, self.spacing, self.origin.copy(), self.direction.copy())

    @property
    def landmarks_lps(self) -> dict[str, np.ndarray]:
        vol = self.image_volume()
        return {
            n: vol.index_to_world(np.array([i, j, float(self.mid_slice)]))
            for n, (i, j) in self.landmarks_px.items()
        }

    def label_vector(self) -> np.ndarray:
        return np.array([float(self.status[n] == "diseased") for n in OBJECTS], dtype=np.float32)


def generate(
    seed: int,
    rows: int = 384,
    cols: int = 384,
    pixel_mm: float = 0.7,
    n_slices: int = 5,
    slice_mm: float = 4.0,
    disc_probs: tuple[float, ...] | None = None,
    vertebra_prob: float = DEFAULT_VERTEBRA_PROB,
    status: dict[str, str] | None = None,
    noise: float = 0.03,
) -> LumbarSample:
    """Render one sagittal T2 lumbar series for ``seed``.

    ``status`` forces objects' labels (names from ``OBJECTS``; missing ones are normal). The
    labelled slice is the middle one (``n_slices // 2``).
    """
    if n_slices < 1:
        raise ValueError("n_slices must be at least 1")
    rng = np.random.default_rng(seed)
    grid = xr.Grid(rows, cols, pixel_mm, pixel_mm)
    st = _choose_status(rng, disc_probs or DEFAULT_DISC_PROBS, vertebra_prob, status)
    size = rng.uniform(0.92, 1.08)
    spine = _build_column(rng, grid, size, st)
    mid = n_slices // 2
    offsets = (np.arange(n_slices) - mid) * slice_mm
    vol = np.zeros((n_slices, rows, cols), dtype=np.float32)
    objects = np.zeros((n_slices, rows, cols), dtype=np.uint8)
    bias = _bias_field(rng, grid)
    for k, dx in enumerate(offsets):
        # Each slice gets its own texture draws, seeded from the sample's generator.
        img, obj = _render_slice(np.random.default_rng(rng.integers(1 << 31)), grid, spine, st,
                                 float(dx), size)  # fmt: skip
        img = img * bias
        n1 = rng.standard_normal(img.shape).astype(np.float32) * noise
        n2 = rng.standard_normal(img.shape).astype(np.float32) * noise
        vol[k] = np.sqrt((img + n1) ** 2 + n2**2)  # magnitude image: Rician noise
        objects[k] = obj
    pixels = np.round(np.clip(vol, 0, None) * 1000).astype(np.uint16)
    # Sagittal: i toward posterior, j toward inferior, k toward the patient's right.
    direction = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    origin = np.array([mid * slice_mm, -0.45 * grid.width_mm, 0.5 * grid.height_mm])
    lo, hi = np.percentile(pixels[mid], [1, 99.5])
    return LumbarSample(
        volume=pixels,
        spacing=(slice_mm, pixel_mm, pixel_mm),
        origin=origin,
        direction=direction,
        mid_slice=mid,
        landmarks_px={
            n: (float(p[0] / pixel_mm), float(p[1] / pixel_mm))
            for n, p in spine["landmarks"].items()
        },  # fmt: skip
        status=st,
        objects=objects,
        seed=seed,
        window=(float((lo + hi) / 2), float(max(hi - lo, 1))),
        params={"size": float(size)},
    )


def _choose_status(rng, disc_probs, vertebra_prob, forced) -> dict[str, str]:
    if forced is not None:
        bad = {k: v for k, v in forced.items() if k not in OBJECTS or v not in STATUS}
        if bad:
            raise ValueError(f"bad status entries {bad}; objects {OBJECTS}, values {STATUS}")
        return {n: forced.get(n, "normal") for n in OBJECTS}
    if len(disc_probs) != len(DISCS):
        raise ValueError(f"disc_probs needs {len(DISCS)} values ({', '.join(DISCS)})")
    draws = rng.random(len(OBJECTS))
    out = {d: STATUS[int(draws[5 + k] < disc_probs[k])] for k, d in enumerate(DISCS)}
    for k, v in enumerate(VERTEBRAE):
        # Vertebra Lk sits between discs k (above) and k + 1 (below) in DISCS order.
        near = (out[DISCS[k]] == "diseased") + (out[DISCS[k + 1]] == "diseased")
        out[v] = STATUS[int(draws[k] < vertebra_prob + CONTEXT_BOOST * near)]
    return {n: out[n] for n in OBJECTS}


def _build_column(rng, grid, size, st):
    """Body centres/tilts along a lordotic column; landmark positions in image mm."""
    n = len(_LEVELS)
    h = _HEIGHT * size * rng.uniform(0.95, 1.05, n)
    d = _DEPTH * size * rng.uniform(0.96, 1.04, n)
    w = _WIDTH * size
    disc = _DISC * size * rng.uniform(0.9, 1.1, n)
    disc_names = ("T11-T12",) + DISCS
    degenerate = np.array([st.get(name) == "diseased" for name in disc_names])
    disc = np.where(degenerate, disc * rng.uniform(0.45, 0.7, n), disc)
    a_top, a_bot = np.deg2rad(rng.uniform(-16, -8)), np.deg2rad(rng.uniform(18, 30))
    alpha = np.linspace(a_top, a_bot, n)
    total = float(h.sum() + disc.sum())
    p = np.array([0.43 * grid.width_mm + rng.normal(0, 4), 0.5 * grid.height_mm - 0.55 * total])
    p[1] += rng.normal(0, 4)
    bodies, discs, landmarks = [], [], {}
    for k in range(n):
        ax = np.array([np.sin(alpha[k]), np.cos(alpha[k])])
        c = p + ax * h[k] / 2
        bodies.append({"name": _LEVELS[k], "center": c, "alpha": float(alpha[k]),
                       "h": float(h[k]), "d": float(d[k]), "w": float(w[k])})  # fmt: skip
        nxt = alpha[min(k + 1, n - 1)]
        dax = np.array([np.sin((alpha[k] + nxt) / 2), np.cos((alpha[k] + nxt) / 2)])
        bottom = c + ax * h[k] / 2
        discs.append({"name": disc_names[k], "center": bottom + dax * disc[k] / 2,
                      "alpha": float((alpha[k] + nxt) / 2), "h": float(disc[k]),
                      "d": float(0.5 * (d[k] + d[min(k + 1, n - 1)]))})  # fmt: skip
        p = bottom + dax * disc[k]
        if _LEVELS[k] in VERTEBRAE:
            landmarks[_LEVELS[k]] = c.copy()
    for dd in discs:
        if dd["name"] in DISCS:
            landmarks[dd["name"]] = dd["center"].copy()
    sacrum = {"top": p, "alpha": float(a_bot + np.deg2rad(rng.uniform(10, 20)))}
    skin = float(bodies[3]["center"][0] + 95 * size + rng.normal(0, 5))
    return {"bodies": bodies, "discs": discs, "sacrum": sacrum, "landmarks": landmarks,
            "skin_x": skin}  # fmt: skip


def _bias_field(rng, grid) -> np.ndarray:
    """Surface-coil sensitivity: brighter toward the back (the coil is under the patient)."""
    X, _ = grid.mm_coords()
    ramp = 0.7 + 0.45 * (X / grid.width_mm)
    return (ramp * (1 + 0.06 * xr.smooth_noise(rng, grid.shape, grid.mm_to_px_len(40)))).astype(
        np.float32
    )


def _paint(img, cover, value):
    img *= 1 - cover
    img += cover * value


def _render_slice(rng, grid, spine, st, dx: float, size: float):
    """One sagittal slice ``dx`` mm from the midline: (signal image, object label map)."""
    X, Y = grid.mm_coords()
    img = np.zeros(grid.shape, dtype=np.float32)
    obj = np.zeros(grid.shape, dtype=np.uint8)
    skin = spine["skin_x"] + 6 * np.sin(Y / 45.0)
    inside = X < skin
    # Subcutaneous fat over muscle, abdominal contents in front of the spine.
    _paint(img, inside.astype(np.float32), SIG["fat"])
    mus_back = (X < skin - rng.uniform(16, 30) * size) & inside
    _paint(img, xr.blur_local(mus_back.astype(np.float32), 1.5), SIG["muscle"])
    # Bowel starts a few centimetres in front of the spine and follows its curve.
    ant = np.array([b["center"] - [b["d"] / 2, 0] for b in spine["bodies"]])
    front = np.interp(Y, ant[:, 1], ant[:, 0]) - (28 + 6 * np.sin(Y / 37.0)) * size
    bowel = (X < front).astype(np.float32)
    tex = 0.05 * xr.smooth_noise(rng, grid.shape, grid.mm_to_px_len(6))
    tex += 0.25 * np.clip(xr.smooth_noise(rng, grid.shape, grid.mm_to_px_len(5)) - 1.6, 0, None)
    _paint(img, ndimage.gaussian_filter(bowel, 3), SIG["bowel"] + tex)
    bodies, discs = spine["bodies"], spine["discs"]
    # Aorta (flow void) down the front of the upper lumbar bodies, to the bifurcation at L4.
    if abs(dx + 10 * size) < 10 * size:
        ant = np.array([b["center"] + [-b["d"] / 2 - 12 * size, 0] for b in bodies[:6]])
        vessel = xr.polyline_mask(grid, xr.smooth_open(ant, 60), 16 * size)
        _paint(img, xr.blur_local(vessel.astype(np.float32), 1), SIG["vessel"])

    canal_half = 9.0 * size
    in_canal = abs(dx) < canal_half
    sac_scale = np.sqrt(max(0.0, 1 - (dx / canal_half) ** 2)) if in_canal else 0.0
    post_edges = []
    for b in bodies:
        f = local_frame(b["center"], b["alpha"])
        hd, h = b["d"] / 2, b["h"]
        post_edges.append(f([[hd, -h / 2], [hd, h / 2]]))
        # Posterior elements: spinous process at the midline, facet pillars off it.
        if abs(dx) < 5 * size:
            spin = np.array([[hd + 20, -h / 2 + 5], [hd + 40, -h / 2 + 9], [hd + 46, -h / 2 + 13],
                             [hd + 44, h / 2 - 5], [hd + 22, h / 2 - 1]])  # fmt: skip
            cov = xr.polygon_coverage(grid, f(xr.smooth_closed(spin, 50)))
            _paint(img, cov, SIG["cortex"])
            _paint(img, xr.polygon_coverage(grid, f(xr.smooth_closed(_shrink(spin, 1.6), 50))),
                   SIG["marrow"] * 0.9)  # fmt: skip
            lamina = f(xr.rounded_rect((hd + 19, 0), 8, h * 0.75, 3, 10))
            _paint(img, xr.polygon_coverage(grid, lamina), SIG["ligament"])
        elif abs(dx) > canal_half - 2:
            pillar = f(xr.rounded_rect((hd + 16, -1), 11, h + 6, 3, 8))
            _paint(img, xr.polygon_coverage(grid, pillar), SIG["marrow"] * 0.85)
    # Thecal sac: CSF between the posterior body walls and the laminae, down to S1-S2.
    s = spine["sacrum"]
    post_edges.append(local_frame(s["top"], s["alpha"])([[17 * size, 0], [20 * size, 18 * size]]))
    if in_canal:
        front_line = np.concatenate(post_edges) + [2.5 * size, 0]
        back_line = front_line + [14 * size * sac_scale + 1e-3, 0]
        sac = np.concatenate([front_line, back_line[::-1]])
        _paint(img, xr.blur_local(xr.polygon_coverage(grid, sac), 0.7), SIG["csf"])
        if abs(dx) < 4 * size:  # cord ending in the conus at L1-L2, then nerve roots
            top = front_line[:3] + [7 * size * sac_scale, 0]
            cord_end = front_line[5] + [7 * size * sac_scale, 0]
            cord = xr.polyline_mask(grid, np.concatenate([top, [cord_end]]), 7 * size)
            _paint(img, xr.blur_local(cord.astype(np.float32), 0.8), SIG["cord"])
            for r in range(3):
                root = np.array([cord_end + [(r - 1) * 2.5, 0], front_line[-1] + [4 + 3 * r, 10]])
                m = xr.polyline_mask(grid, root, 0.9)
                _paint(img, 0.6 * m.astype(np.float32), SIG["cord"] * 0.8)
    # Vertebral bodies: dark cortex, marrow inside, disease as endplate signal change.
    marrow = SIG["marrow"] * (1 + 0.12 * xr.smooth_noise(rng, grid.shape, 3.0))
    for b in bodies:
        f = local_frame(b["center"], b["alpha"])
        if abs(dx) > b["w"] / 2:
            continue
        outer = body_outline(b["d"], b["h"], b["h"], 0.8, 1.0)
        cov = xr.polygon_coverage(grid, f(outer))
        _paint(img, cov, SIG["cortex"])
        inner = xr.polygon_coverage(grid, f(_shrink(outer, 1.3)))
        _paint(img, inner, marrow)
        # Basivertebral vein: a small bright notch in the middle of the back wall.
        notch = f(xr.ellipse_outline((b["d"] / 2 - 3, 0), 3.5, 1.2))
        _paint(img, 0.7 * xr.polygon_coverage(grid, notch), SIG["csf"] * 0.7)
        if b["name"] in VERTEBRAE and st[b["name"]] == "diseased":
            _vertebral_disease(rng, grid, img, f, b)
        if b["name"] in VERTEBRAE:
            obj[cov >= 0.5] = OBJECTS.index(b["name"]) + 1
    # Discs: dark annulus, nucleus bright when healthy; a degenerated disc may bulge back.
    for dd in discs:
        f = local_frame(dd["center"], dd["alpha"])
        diseased = st.get(dd["name"]) == "diseased"
        hd, h = dd["d"] / 2, dd["h"]
        bulge = rng.uniform(2, 5) * size if diseased else 0.6
        disc = np.array([[-hd, -h / 2], [hd, -h / 2], [hd + bulge, 0], [hd, h / 2], [-hd - 0.5, h / 2],
                         [-hd - 1, 0]])  # fmt: skip
        cov = xr.polygon_coverage(grid, f(xr.smooth_closed(disc, 60)))
        _paint(img, cov, SIG["annulus"])
        nuc = xr.ellipse_outline((0.5, 0), hd * 0.62, h * 0.3)
        ncov = xr.blur_local(xr.polygon_coverage(grid, f(nuc)), 1.2)
        value = SIG["nucleus_dark"] if diseased else SIG["nucleus"] * rng.uniform(0.85, 1.05)
        _paint(img, ncov, value)
        if dd["name"] in DISCS:
            obj[cov >= 0.5] = OBJECTS.index(dd["name"]) + 1
    # Sacrum.
    f = local_frame(s["top"], s["alpha"])
    sac = np.array([[-17, 0], [17, 0], [24, 30], [18, 62], [7, 92], [-3, 88], [-9, 58], [-15, 25]])
    sac = sac * size
    _paint(img, xr.polygon_coverage(grid, f(xr.smooth_closed(sac, 80))), SIG["cortex"])
    _paint(img, xr.polygon_coverage(grid, f(xr.smooth_closed(_shrink(sac, 1.5), 80))),
           SIG["marrow"] * 1.05)  # fmt: skip
    img = ndimage.gaussian_filter(img, 0.6)  # partial volume / k-space truncation
    return img, obj


def _vertebral_disease(rng, grid, img, f, b) -> None:
    """Modic-like endplate bands (bright on T2, or dark) and small anterior osteophytes."""
    hd, h = b["d"] / 2, b["h"]
    bright = rng.random() < 0.65
    value = SIG["marrow"] * (1.8 if bright else 0.35)
    band = rng.uniform(3.0, 6.0)
    for sign in (-1, 1):
        if rng.random() < 0.85:
            y0 = sign * (h / 2 - 1.3 - band / 2)
            rect = f(xr.rounded_rect((rng.uniform(-3, 3), y0), 2 * hd - 5, band, band / 2))
            _paint(img, xr.blur_local(xr.polygon_coverage(grid, rect), 1.2), value)
    for sign in (-1, 1):
        spur = f(np.array([[-hd, sign * (h / 2 - 3)], [-hd - rng.uniform(2, 4), sign * h / 2],
                           [-hd, sign * h / 2]]))  # fmt: skip
        _paint(img, xr.polygon_coverage(grid, spur, 4), SIG["cortex"])


def _shrink(points: np.ndarray, mm: float) -> np.ndarray:
    """Move outline points ``mm`` toward the centroid (an inner contour for a cortex)."""
    p = np.asarray(points, float)
    c = p.mean(axis=0)
    v = p - c
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return c + v * np.clip((n - mm) / np.maximum(n, 1e-6), 0, None)


# ---- writing -------------------------------------------------------------------------------


def write_study(sample: LumbarSample, out_dir: Path) -> Path:
    """Write the series as MR DICOM (one file per slice) plus truth.json; returns ``out_dir``."""
    from app.findings.truth import write_truth
    from models.common.study_writer import phantom_patient, phantom_source, write_phantom_series

    out_dir = Path(out_dir)
    patient = phantom_patient(
        f"PHANTOM^LSPINE^{sample.seed}", f"PH-LMR-{sample.seed:05d}",
        "Synthetic lumbar spine MR (phantom, not a patient)", "LSPINE",
    )  # fmt: skip
    write_phantom_series(
        sample.image_volume(), out_dir, patient=patient, modality="MR",
        series_description="SAG T2 TSE (synthetic)", window=sample.window,
        file_names=[f"sag_t2_{k:03d}.dcm" for k in range(sample.volume.shape[0])], tags=MR_TAGS,
    )  # fmt: skip
    colors = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48)]
    table = {n + 1: (name, colors[n % 5] if name in VERTEBRAE else (70, 240, 240))
             for n, name in enumerate(OBJECTS)}  # fmt: skip
    write_truth(
        out_dir,
        TASK_ID,
        labels={
            "objects": dict(sample.status),
            "diseased": [n for n in OBJECTS if sample.status[n] == "diseased"],
            "labelled_slice_index": sample.mid_slice,
            "landmarks_px": {n: [round(i, 2), round(j, 2)] for n, (i, j) in
                             sample.landmarks_px.items()},  # fmt: skip
        },
        source=phantom_source(sample.seed, "models.lumbar_ccfnet.phantom"),
        labelmaps=[("Vertebrae and discs (truth)", sample.image_volume(sample.objects), table)],
        landmarks=[{"name": n, "position_lps": [round(float(c), 3) for c in p],
                    "status": sample.status[n]} for n, p in sample.landmarks_lps.items()],
    )  # fmt: skip
    return out_dir


# MR acquisition tags a reader expects on a sagittal T2 TSE (the writer is generic).
MR_TAGS = {
    "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"],
    "ScanningSequence": "SE",
    "SequenceVariant": "SK",
    "MRAcquisitionType": "2D",
    "RepetitionTime": "3200",
    "EchoTime": "105",
    "EchoTrainLength": "17",
    "MagneticFieldStrength": "1.5",
    "ProtocolName": "L-SPINE SAG T2 (synthetic)",
}


def write_demo(out_dir: Path, seed: int = 0, rows: int = 320, cols: int = 320,
               pixel_mm: float = 0.84, n_slices: int = 5) -> list[Path]:  # fmt: skip
    """A normal lumbar spine and one with lower-disc degeneration and an L5 endplate change."""
    base = Path(out_dir) / TASK_ID
    cases = [
        ("normal", {}),
        ("degenerated_L4-S1", {"L4-L5": "diseased", "L5-S1": "diseased", "L5": "diseased"}),
    ]
    out = []
    for n, (name, status) in enumerate(cases):
        sample = generate(seed * 100 + n, rows=rows, cols=cols, pixel_mm=pixel_mm,
                          n_slices=n_slices, status=status)  # fmt: skip
        out.append(write_study(sample, base / f"{n + 1:02d}_{name}"))
    return out
