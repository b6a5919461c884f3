"""Synthetic neck CT phantoms: C1-C7 with cortical shell and cancellous core, optional fractures.

Each bone part is an analytic signed distance (mm, negative inside) evaluated in an anatomical
frame (u = left, v = posterior, w = superior, all mm); a random rigid pose maps that frame into
the LPS world of the CT grid. A vertebra's solid is the union (min) of its parts; a fracture is a
plane through the vertebra that opens a dark gap and shifts the fragment on one side.

Labels follow the RSNA 2022 segmentations as the paper relabels them (Table 4.1): 0 background,
1..7 = C1..C7, 8 = other spine (here the skull base/occipital condyles and T1-T3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from app.findings.truth import write_truth
from app.study.geometry import ImageVolume
from models.cervical_fracture.fracture import (
    BODY_SHARE,
    GAP_MM,
    SHIFT_MM,
    fractured_sdf,
    random_fracture,
)
from models.cervical_fracture.labels import LABEL_TABLE, OTHER_SPINE, VERTEBRAE

TASK_ID = "cervical-fracture"
# Where fractures happen in the RSNA 2022 training set: C2 and C6-C7 most often.
_FRACTURE_LEVEL_WEIGHTS = np.array([0.12, 0.24, 0.08, 0.09, 0.12, 0.17, 0.18])


@dataclass
class CervicalSample:
    """One phantom: CT in HU, label map on the same grid, per-vertebra fracture truth."""

    ct: ImageVolume
    labels: ImageVolume
    fractures: dict[str, int]  # "C1".."C7" -> 0/1
    seed: int
    options: dict = field(default_factory=dict)

    @property
    def patient_overall(self) -> int:
        return int(any(self.fractures.values()))

    def truth_labels(self) -> dict[str, int]:
        return {**self.fractures, "patient_overall": self.patient_overall}


# ---- signed distances (mm; negative inside) --------------------------------------------------
def _ellipse(u, v, cu, cv, a, b):
    r = np.sqrt(((u - cu) / a) ** 2 + ((v - cv) / b) ** 2)
    return (r - 1.0) * np.minimum(a, b)


def _slab(w, cw, half):
    return np.abs(w - cw) - half


def _cyl(u, v, w, cu, cv, cw, a, b, half):
    return np.maximum(_ellipse(u, v, cu, cv, a, b), _slab(w, cw, half))


def _box(u, v, w, c, half):
    du = np.abs(u - c[0]) - half[0]
    dv = np.abs(v - c[1]) - half[1]
    dw = np.abs(w - c[2]) - half[2]
    outside = np.sqrt(np.maximum(du, 0) ** 2 + np.maximum(dv, 0) ** 2 + np.maximum(dw, 0) ** 2)
    return outside + np.minimum(np.maximum(np.maximum(du, dv), dw), 0)


def _ring(u, v, w, cu, cv, cw, outer, inner, half):
    d = np.maximum(_ellipse(u, v, cu, cv, *outer), -_ellipse(u, v, cu, cv, *inner))
    return np.maximum(d, _slab(w, cw, half))


def _ellipsoid(u, v, w, c, r):
    q = np.sqrt(((u - c[0]) / r[0]) ** 2 + ((v - c[1]) / r[1]) ** 2 + ((w - c[2]) / r[2]) ** 2)
    return (q - 1.0) * min(r)


@dataclass
class _Vertebra:
    level: int  # 1..7 cervical, 0 skull base, 9.. thoracic
    label: int
    center: np.ndarray  # (u, v, w) of the body centre (C1: of the dens axis)
    scale: float
    height: float

    def sdf(self, u, v, w):
        c = self.center
        u, v, w = u - c[0], v - c[1], w - c[2]
        s = self.scale
        h = self.height / 2
        if self.level == 1:  # atlas: a ring with lateral masses, no body; the dens sits inside
            ring = _ring(u, v, w, 0, 9 * s, 0, (22 * s, 21 * s), (14 * s, 15 * s), 3.2)
            masses = _box(u, v, w, (0, 2 * s, 0), (19 * s, 6 * s, h))
            masses = np.maximum(masses, -_ellipse(u, v, 0, 4 * s, 9 * s, 9 * s))
            transverse = _box(u, v, w, (0, 2 * s, 0), (33 * s, 3.5, 3))
            return np.minimum(np.minimum(ring, masses), transverse)
        if self.level >= 9:  # thoracic: bigger body, long transverse processes
            body = _cyl(u, v, w, 0, 0, 0, 12 * s, 10 * s, h)
            arch = _ring(u, v, w, 0, 19 * s, 0, (15 * s, 13 * s), (9 * s, 8 * s), 5)
            arch = np.maximum(arch, -(v - 9 * s))
            transverse = _box(u, v, w, (0, 22 * s, 1), (34 * s, 4, 4))
            spinous = _box(u, v, w, (0, 45 * s, -6), (3, 12, 3.5))
            return np.minimum(np.minimum(body, arch), np.minimum(transverse, spinous))
        # C2-C7: elliptic body, posterior arch around the canal, transverse and spinous processes
        a, b = 8.5 * s, 7.5 * s
        body = _cyl(u, v, w, 0, 0, 0, a, b, h)
        canal_v = b + 8 * s
        arch = _ring(u, v, w, 0, canal_v, -0.5, (17 * s, 13 * s), (11.5 * s, 8 * s), 4.5)
        arch = np.maximum(arch, -(v - (b - 2)))
        transverse = _box(u, v, w, (0, 2 * s, 0), (a + 12 * s, 3.5, 3.5))
        transverse = np.maximum(transverse, -_ellipse(u, v, 0, 2 * s, a + 5 * s, 3))
        spin_len = {2: 14, 3: 8, 4: 9, 5: 10, 6: 13, 7: 19}[self.level] * s
        spin_v = canal_v + 13 * s + spin_len / 2 - 2
        spinous = _box(u, v, w, (0, spin_v, -1.5), (2.6 * s, spin_len / 2, 3.2))
        d = np.minimum(np.minimum(body, arch), np.minimum(transverse, spinous))
        if self.level == 2:  # the dens rises from the C2 body into the atlas ring
            dens = _cyl(u, v, w, 0, -1.0 * s, h + 7, 5.0 * s, 5.0 * s, 8)
            d = np.minimum(d, dens)
        return d

    def z_extent(self) -> tuple[float, float]:
        top = self.height / 2 + (16 if self.level == 2 else 0)
        return self.center[2] - self.height / 2 - 9, self.center[2] + top + 2


def _spine_layout(rng: np.random.Generator, size: float) -> list[_Vertebra]:
    """Vertebrae from T3 up to C1 plus the skull base, with a lordotic curve."""
    heights = {9: 17, 10: 18, 11: 19, 7: 13.5, 6: 13, 5: 12.5, 4: 12.5, 3: 12.5, 2: 16, 1: 11}
    order = [11, 10, 9, 7, 6, 5, 4, 3, 2, 1]  # inferior to superior
    scales = {11: 1.22, 10: 1.2, 9: 1.17, 7: 1.12, 6: 1.07, 5: 1.03, 4: 1.0, 3: 0.97, 2: 0.95}
    scales[1] = 1.0
    disc = rng.uniform(4.0, 5.5)
    w = 0.0
    c2_top = 0.0
    out = []
    for level in order:
        h = heights[level] * size * rng.uniform(0.95, 1.05)
        if level == 1:  # the atlas ring sits around the dens, just above the C2 body
            center_w = c2_top + 9.5 * size
        else:
            center_w = w + h / 2
        label = level if level <= 7 else OTHER_SPINE
        out.append(_Vertebra(level, label, np.array([0.0, 0.0, center_w]), scales[level] * size, h))
        if level == 2:
            c2_top = center_w + h / 2
        w = center_w + h / 2 + disc * size
    lordosis = rng.uniform(4.0, 10.0)
    bottom, top = out[0].center[2], out[-1].center[2]
    for vert in out:
        t = (vert.center[2] - bottom) / (top - bottom)
        vert.center[1] = -lordosis * np.sin(np.pi * t)
    # C1's dens axis is the C2 dens; its ring is centred on that
    c2 = next(v for v in out if v.level == 2)
    c1 = next(v for v in out if v.level == 1)
    c1.center[0], c1.center[1] = c2.center[0], c2.center[1] - 1.0
    return out


def _rotation(rng: np.random.Generator, max_deg: tuple[float, float, float]) -> np.ndarray:
    ax, ay, az = (np.deg2rad(rng.uniform(-m, m)) for m in max_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def generate(seed: int, **options) -> CervicalSample:
    """One neck CT phantom.

    Options: ``shape`` (rows = cols, default 128), ``spacing_mm`` (in-plane, default random
    1.05-1.3), ``slice_mm`` (default 1.5), ``fractures`` (list of "C1".."C7" to fracture;
    default random: ``fracture_prob`` (0.5) of phantoms get 1, or up to ``max_fractures`` (2)),
    ``noise_hu`` (default random 12-30), ``n_slices`` (default: cover T2 to the skull base),
    ``gap_mm`` / ``shift_mm`` (fracture gap and displacement ranges, default ``GAP_MM`` /
    ``SHIFT_MM``), ``body_share`` (share of fractures through the body, default 0.6).
    """
    rng = np.random.default_rng(seed)
    n = int(options.get("shape", 128))
    spacing = float(options.get("spacing_mm", rng.uniform(1.05, 1.3)))
    slice_mm = float(options.get("slice_mm", 1.5))
    size = float(options.get("size", rng.uniform(0.92, 1.08)))
    verts = _spine_layout(rng, size)

    # fractures draw from their own stream: the same seed with and without a fracture gives
    # the same anatomy, pose and noise
    frng = np.random.default_rng([seed, 1])
    wanted = options.get("fractures")
    if wanted is None:
        wanted = []
        if frng.uniform() < float(options.get("fracture_prob", 0.5)):
            max_k = int(options.get("max_fractures", 2))
            k = 1 if frng.uniform() < 0.7 else int(frng.integers(2, max_k + 1))
            p = _FRACTURE_LEVEL_WEIGHTS / _FRACTURE_LEVEL_WEIGHTS.sum()
            wanted = [VERTEBRAE[i] for i in frng.choice(7, size=k, replace=False, p=p)]
    shape_of = {
        "gap_mm": tuple(options.get("gap_mm", GAP_MM)),
        "shift_mm": tuple(options.get("shift_mm", SHIFT_MM)),
        "body_share": float(options.get("body_share", BODY_SHARE)),
    }
    fractures = {
        int(name[1]): random_fracture(
            frng, next(v for v in verts if v.level == int(name[1])), **shape_of
        )
        for name in wanted
    }

    c1 = next(v for v in verts if v.level == 1)
    t3 = verts[0]
    skull_w = c1.center[2] + c1.height / 2 + rng.uniform(1.5, 3.0)
    # z coverage: from inside T2/T3 to ~12 mm above the skull base
    z_lo = t3.center[2] + rng.uniform(-2, 8)
    z_hi = skull_w + rng.uniform(10, 16)
    n_slices = int(options.get("n_slices", round((z_hi - z_lo) / slice_mm)))
    if "n_slices" in options:  # keep the spine in the middle of a requested length
        mid = (z_lo + z_hi) / 2
        z_lo = mid - n_slices * slice_mm / 2

    rot = _rotation(rng, (7.0, 3.0, 6.0))
    shift_uv = np.array([rng.uniform(-8, 8), rng.uniform(-6, 10), 0.0])
    # world = rot @ (anat - anat_center) + world_center; the volume is centred on the neck
    anat_center = np.array([0.0, 5.0, 0.0])
    fov = n * spacing
    origin = np.array([-fov / 2 + spacing / 2, -fov / 2 + spacing / 2, z_lo])
    direction = np.eye(3)

    neck_a = rng.uniform(52, 62) * size
    neck_b = rng.uniform(50, 58) * size
    noise_hu = float(options.get("noise_hu", rng.uniform(12, 30)))
    muscle = rng.uniform(40, 60)
    fat = rng.uniform(-110, -80)
    cortical = rng.uniform(1100, 1500)
    cancellous = rng.uniform(200, 300)
    c7 = next(v for v in verts if v.level == 7)
    c6 = next(v for v in verts if v.level == 6)
    c4 = next(v for v in verts if v.level == 4)
    c3 = next(v for v in verts if v.level == 3)
    c2 = next(v for v in verts if v.level == 2)
    shoulder_w = c7.center[2] - c7.height / 2

    ct = np.empty((n_slices, n, n), dtype=np.float32)
    lab = np.zeros((n_slices, n, n), dtype=np.uint8)
    jj, ii = np.mgrid[0:n, 0:n].astype(np.float64)
    inv_rot = rot.T
    chunk = max(1, 2_000_000 // (n * n))
    for k0 in range(0, n_slices, chunk):
        ks = np.arange(k0, min(n_slices, k0 + chunk), dtype=np.float64)
        x = origin[0] + ii[None] * spacing + 0 * ks[:, None, None]
        y = origin[1] + jj[None] * spacing + 0 * ks[:, None, None]
        z = origin[2] + ks[:, None, None] * slice_mm + 0 * ii[None]
        rel = np.stack([x - shift_uv[0], y - shift_uv[1], z - (z_lo + z_hi) / 2], axis=-1)
        anat = rel @ inv_rot.T + anat_center + np.array([0, 0, (z_lo + z_hi) / 2])
        u, v, w = anat[..., 0], anat[..., 1], anat[..., 2]
        block = np.full(u.shape, -1000.0, dtype=np.float32)
        blab = np.zeros(u.shape, dtype=np.uint8)

        # soft tissue outline: neck, widening into the shoulders below C7 and the head above C1
        below = np.clip(shoulder_w - w, 0, None)
        above = np.clip(w - skull_w + 8, 0, None)
        a_n = neck_a + 2.2 * below + 1.2 * above
        b_n = neck_b + 0.6 * below + 1.0 * above
        neck = _ellipse(u, v, 0, 6 + 0.2 * above, a_n, b_n)
        jaw = np.maximum(_ellipse(u, v, 0, -14, 56, 56), c3.center[2] - 6 - w)
        neck = np.minimum(neck, jaw)  # the floor of the mouth and chin around the mandible
        block[neck < 0] = fat
        block[neck < -rng.uniform(4, 7)] = muscle
        # airway: larynx (C3-C6) then trachea, anterior to the spine
        air_v = c4.center[1] - rng.uniform(24, 28)
        larynx = (w < c3.center[2]) & (w > c6.center[2])
        airway = _ellipse(u, v, 0, air_v, 9, 7) < 0
        trachea = (w <= c6.center[2]) & (_ellipse(u, v, 0, air_v - 2, 8, 7.5) < 0)
        thyroid = (
            larynx
            & (w > c6.center[2] + 4)
            & (
                _ring(
                    u, v, w, 0, air_v, (c4.center[2] + c6.center[2]) / 2, (15, 12), (12.5, 9.5), 12
                )
                < 0
            )
        )
        thyroid &= v < air_v + 4
        block[thyroid] = 180.0
        block[(larynx & airway) | trachea] = -950.0
        # hyoid at C3 and the mandible in front of C1-C3: bone, but not spine (label 0)
        hyoid = _ring(u, v, w, 0, air_v + 2, c3.center[2] + 4, (24, 18), (20, 14), 2.5) < 0
        hyoid &= v < air_v + 6
        mandible = _ring(u, v, w, 0, -8, c2.center[2] + 6, (50, 55), (43, 48), 14) < 0
        mandible &= v < -28
        block[hyoid | mandible] = 700.0
        # lung apices and clavicles low in the field
        lungs = (_ellipsoid(np.abs(u), v, w, (42, 10, shoulder_w - 40), (22, 26, 35)) < 0) & (
            neck < -12
        )
        block[lungs] = -820.0
        clav = _box(np.abs(u), v, w, (45, -35, shoulder_w - 12), (32, 5, 5)) < 0
        block[clav] = 900.0
        # skull base: a tilted occipital plate with the foramen magnum, labelled other spine
        plate_w = skull_w + 0.18 * (v - c1.center[1])
        plate = (
            (w > plate_w)
            & (w < plate_w + rng.uniform(6, 9))
            & (_ellipse(u, v, 0, c1.center[1] + 8, 48, 52) < 0)
        )
        plate &= _ellipse(u, v, 0, c1.center[1] + 9, 14, 17) > 0
        condyles = _ellipsoid(np.abs(u), v, w, (14, c1.center[1] + 2, skull_w + 1), (7, 9, 5)) < 0
        brain = (w > plate_w + 7) & (_ellipse(u, v, 0, c1.center[1] + 8, 46, 50) < 0)
        block[brain] = 35.0
        skull = plate | condyles
        block[skull] = cortical * 0.8
        blab[skull] = OTHER_SPINE

        # vertebrae (each evaluated only within its own slab of slices)
        for vert in verts:
            lo, hi = vert.z_extent()
            if w.max() < lo or w.min() > hi:
                continue
            sel = (w >= lo) & (w <= hi)
            d = fractured_sdf(vert, fractures.get(vert.level), u[sel], v[sel], w[sel])
            inside = d < 0
            hu = np.where(d > -rng.uniform(1.2, 1.8), cortical, cancellous).astype(np.float32)
            vals = block[sel]
            vals[inside] = hu[inside]
            block[sel] = vals
            labs = blab[sel]
            labs[inside] = vert.label
            blab[sel] = labs
        ct[k0 : k0 + len(ks)] = block
        lab[k0 : k0 + len(ks)] = blab

    # scanner blur and noise; mild trabecular texture comes from the noise after blurring
    ct = gaussian_filter(ct, sigma=(0.5, 0.7, 0.7))
    ct += rng.normal(0.0, noise_hu, size=ct.shape).astype(np.float32)
    ct = np.clip(ct, -1024, 3071)
    spacing_kji = (slice_mm, spacing, spacing)
    ct_vol = ImageVolume(ct, spacing_kji, origin, direction)
    lab_vol = ImageVolume(lab, spacing_kji, origin.copy(), direction.copy())
    truth = {name: int(int(name[1]) in fractures) for name in VERTEBRAE}
    opts = {"shape": n, "spacing_mm": spacing, "slice_mm": slice_mm, "size": size}
    return CervicalSample(ct_vol, lab_vol, truth, seed, opts)


def write_study(sample: CervicalSample, out_dir: Path) -> Path:
    """The CT as a DICOM series plus truth.json (label map NIfTI and fracture labels)."""
    from models.common.study_writer import phantom_patient, phantom_source, write_phantom_series

    out_dir = Path(out_dir)
    patient = phantom_patient(
        f"PHANTOM^CSPINE{sample.seed}",
        f"PHANTOM-CSPINE-{sample.seed:04d}",
        "Synthetic cervical spine CT phantom (not a patient)",
        "CSPINE",
    )
    write_phantom_series(
        sample.ct, out_dir, patient=patient, modality="CT",
        series_description="Synthetic neck CT, bone kernel", window=(400.0, 1800.0),
    )  # fmt: skip
    write_truth(
        out_dir,
        TASK_ID,
        sample.truth_labels(),
        phantom_source(sample.seed),
        labelmaps=[("Vertebrae (truth)", sample.labels, LABEL_TABLE)],
    )
    return out_dir


def write_demo(out_dir: Path, seed: int = 0) -> list[Path]:
    """Two small studies: one with fractures (C2 and C6), one without."""
    base = Path(out_dir) / TASK_ID
    with_fx = generate(seed, fractures=["C2", "C6"], shape=128)
    without = generate(seed + 1, fractures=[], shape=128)
    return [
        write_study(with_fx, base / "phantom_fracture_C2_C6"),
        write_study(without, base / "phantom_no_fracture"),
    ]
