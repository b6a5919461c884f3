"""Per-vertebra levels from a predicted Vertebra mask (numpy only, used by the adapter).

Vertebral bodies are the connected components of the Vertebra mask, numbered from the top of
the image. They are found on the network's grid (small, so plain numpy label propagation is
quick) and carried onto the radiograph's grid; each is then measured on the radiograph: centroid,
and, on the lateral view, its height at the anterior and posterior quarter of its depth (in the
body's own axes, so lordosis does not read as wedging) and its height against its neighbours'.
"""

from __future__ import annotations

import numpy as np

from models.spine_xray.preprocess import Letterbox

MIN_AREA_FRACTION = 0.2  # of the median component: smaller ones are specks, not vertebrae


def label_components(mask: np.ndarray) -> np.ndarray:
    """4-connected components of a 2-D bool mask: int32 labels 1..n (raster order of their
    smallest pixel index), 0 outside. Min-label propagation with pointer jumping."""
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    big = h * w + 1
    lab = np.where(mask, np.arange(1, h * w + 1, dtype=np.int64).reshape(h, w), big)
    while True:
        new = lab.copy()
        np.minimum(new[1:], lab[:-1], out=new[1:])
        np.minimum(new[:-1], lab[1:], out=new[:-1])
        np.minimum(new[:, 1:], lab[:, :-1], out=new[:, 1:])
        np.minimum(new[:, :-1], lab[:, 1:], out=new[:, :-1])
        new = np.where(mask, new, big)
        flat = np.append(new.ravel(), big)
        new = np.where(mask, np.minimum(new, flat[np.minimum(new, big) - 1]), big)  # jump
        if np.array_equal(new, lab):
            break
        lab = new
    lab = np.where(mask, lab, 0)
    _, inverse = np.unique(lab, return_inverse=True)
    return inverse.reshape(h, w).astype(np.int32)  # 0 stays 0: it is the smallest value


def _dilate_labels(lab: np.ndarray) -> np.ndarray:
    """Grow labels by one pixel into the background (so the radiograph-grid mask, thresholded
    after interpolation, finds a label under its edge pixels too)."""
    out = lab.copy()
    for axis, shift in ((0, 1), (0, -1), (1, 1), (1, -1)):
        moved = np.roll(lab, shift, axis=axis)
        if axis == 0:
            moved[0 if shift == 1 else -1] = 0
        else:
            moved[:, 0 if shift == 1 else -1] = 0
        out = np.where(out == 0, moved, out)
    return out


def _erode(mask: np.ndarray) -> np.ndarray:
    """One-pixel 4-neighbour erosion (the image border counts as background)."""
    p = np.pad(mask, 1)
    return p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]


def vertebra_components(
    low_mask: np.ndarray, full_mask: np.ndarray, box: Letterbox, cut: np.ndarray | None = None
) -> np.ndarray:
    """Vertebra components found on the network grid, on the radiograph's grid: uint8 labels
    1..n from the top (by centroid row), 0 elsewhere, restricted to ``full_mask``.

    Neighbouring bodies are a few pixels apart on the network grid (a disc is 4-7 pixels high
    there, less at a tilted corner), so one stray pixel can join them: the mask is eroded by a
    pixel and ``cut`` (the predicted discs, on the lateral view) removed before labelling; the
    labels then grow back over the whole body."""
    part = np.asarray(low_mask, bool)[: box.used_rows, : box.used_cols]
    if cut is not None:
        part = part & ~np.asarray(cut, bool)[: box.used_rows, : box.used_cols]
    lab = label_components(_erode(part))
    n = int(lab.max())
    if n == 0:
        return np.zeros((box.rows, box.cols), np.uint8)
    areas = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    keep = np.nonzero(areas >= MIN_AREA_FRACTION * np.median(areas))[0] + 1
    mean_row = np.bincount(lab.ravel(), weights=np.indices(lab.shape)[0].ravel(),
                           minlength=n + 1)[1:] / np.maximum(areas, 1)  # fmt: skip
    order = keep[np.argsort(mean_row[keep - 1], kind="stable")]
    remap = np.zeros(n + 1, np.int32)
    remap[order] = np.arange(1, len(order) + 1)
    lab = _dilate_labels(remap[lab])
    r = np.minimum(((np.arange(box.rows) + 0.5) * box.used_rows / box.rows).astype(int),
                   box.used_rows - 1)  # fmt: skip
    c = np.minimum(((np.arange(box.cols) + 0.5) * box.used_cols / box.cols).astype(int),
                   box.used_cols - 1)  # fmt: skip
    full = lab[r[:, None], c[None, :]]
    full[~np.asarray(full_mask, bool)] = 0
    return full.astype(np.uint8)


def _heights(rr: np.ndarray, cc: np.ndarray, posterior_sign: float) -> tuple[float, float, float]:
    """(anterior, middle, posterior) heights in pixels of one body: its pixels in the frame of
    their principal axes (u along the depth, v along the height), v's extent in three bands of u
    (the 10-30 %, 40-60 % and 70-90 % of the depth: clear of the rounded corners)."""
    pts = np.stack([cc, rr], 1).astype(np.float64)
    pts -= pts.mean(0)
    _, vecs = np.linalg.eigh(np.cov(pts.T))
    u_axis = vecs[:, 1]  # the longer axis: a lumbar body is deeper than it is tall
    if u_axis[0] * posterior_sign < 0:  # u increases toward the posterior
        u_axis = -u_axis
    v_axis = np.array([-u_axis[1], u_axis[0]])
    u, v = pts @ u_axis, pts @ v_axis
    lo, hi = u.min(), u.max()

    def extent(a: float, b: float) -> float:
        sel = (u >= lo + a * (hi - lo)) & (u <= lo + b * (hi - lo))
        return float(np.ptp(v[sel]) + 1.0) if sel.sum() > 2 else float("nan")

    return extent(0.1, 0.3), extent(0.4, 0.6), extent(0.7, 0.9)


def vertebra_measures(components: np.ndarray, masks: np.ndarray, names: tuple[str, ...],
                      view: str, spacing: tuple[float, float]) -> list[dict]:  # fmt: skip
    """Per vertebra (top to bottom): name, centroid (pixels and mm from the top-left pixel) and,
    on the lateral view, anterior / middle / posterior heights (mm), the anterior/posterior
    ratio and the middle height against the neighbours' mean."""
    tag = "AP" if view == "ap" else "LAT"
    n = int(components.max())
    out = []
    posterior_sign = 1.0
    if view == "lateral":  # which way the patient faces: the spinous processes are posterior
        sp = masks[names.index("LAT Spinous Process")]
        vb = masks[names.index("LAT Vertebra")]
        if sp.any() and vb.any():
            posterior_sign = 1.0 if np.nonzero(sp)[1].mean() >= np.nonzero(vb)[1].mean() else -1.0
    mids = []
    rr_all, cc_all = np.nonzero(components)
    lab = components[rr_all, cc_all]
    order = np.argsort(lab, kind="stable")
    bounds = np.searchsorted(lab[order], np.arange(1, n + 2))
    for k in range(1, n + 1):
        sel = order[bounds[k - 1] : bounds[k]]
        rr, cc = rr_all[sel], cc_all[sel]
        item: dict = {"index": k, "name": f"{tag} vertebra {k}"}
        if rr.size == 0:
            out.append(item)
            mids.append(float("nan"))
            continue
        item["centroid_px"] = [round(float(cc.mean()), 1), round(float(rr.mean()), 1)]
        item["centroid_mm"] = [round(float(cc.mean()) * spacing[1], 2),
                               round(float(rr.mean()) * spacing[0], 2)]  # fmt: skip
        item["area_mm2"] = round(float(rr.size) * spacing[0] * spacing[1], 1)
        mid = float("nan")
        if view == "lateral" and rr.size > 20:
            a, mid, p = (h * spacing[0] for h in _heights(rr, cc, posterior_sign))
            item.update(anterior_height_mm=round(a, 2), middle_height_mm=round(mid, 2),
                        posterior_height_mm=round(p, 2),
                        wedge_ratio=round(a / p, 3) if p > 0 else None)  # fmt: skip
        mids.append(mid)
        out.append(item)
    if view == "lateral":
        for k, item in enumerate(out):
            nb = [mids[j] for j in (k - 1, k + 1) if 0 <= j < len(mids) and np.isfinite(mids[j])]
            if nb and np.isfinite(mids[k]):
                item["height_vs_neighbours"] = round(mids[k] / float(np.mean(nb)), 3)
            elif "wedge_ratio" in item:
                item["height_vs_neighbours"] = 1.0  # a lone body has nothing to compare with
    return out
