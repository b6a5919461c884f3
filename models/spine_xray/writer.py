"""Writing a spine phantom as a study (``phantom.py`` generates it): the AP and lateral views
as DICOM, or as the paper's dataset lays them out (an RGB JPEG per view and one PNG per mask),
each view with its own truth.json and label maps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.common import xray_grid as xg
from models.common import xray_render as xr
from models.spine_xray.anatomy import LEVELS
from models.spine_xray.labels import MASK_COLORS
from models.spine_xray.task import TASK

if TYPE_CHECKING:
    from models.spine_xray.phantom import SpineSample


def write_study(sample: SpineSample, out_dir: Path, fmt: str = "dicom") -> Path:
    """Write AP and LAT views (``fmt`` "dicom" or "jpeg") each with its own truth.json.

    Layout: ``out_dir/AP/`` and ``out_dir/LAT/`` (a radiograph's truth label maps are in that
    image's own frame, so each view keeps its truth beside it). DICOM views share one
    StudyInstanceUID. JPEG mirrors the paper's dataset: an RGB .jpg per view and one binary
    .png per mask in ``masks/``, named as the paper names the masks.
    """
    if fmt not in ("dicom", "jpeg"):
        raise ValueError(f"unknown format {fmt!r}; use 'dicom' or 'jpeg'")
    from pydicom.uid import generate_uid

    out_dir = Path(out_dir)
    study_uid = generate_uid()
    views = (
        ("AP", sample.ap, sample.ap_masks, sample.ap_levels, sample.ap_window),
        ("LAT", sample.lat, sample.lat_masks, sample.lat_levels, sample.lat_window),
    )
    for view, pixels, masks, levels, window in views:
        vdir = out_dir / view
        vdir.mkdir(parents=True, exist_ok=True)
        if fmt == "dicom":
            _write_dicom_view(sample, view, pixels, window, vdir, study_uid)
            spacing = sample.pixel_spacing_mm
        else:
            _write_jpeg_view(view, pixels, masks, vdir)
            spacing = (1.0, 1.0)  # a plain image carries no pixel size
        _write_view_truth(sample, view, masks, levels, spacing, vdir)
    return out_dir


def _write_dicom_view(sample, view, pixels, window, vdir, study_uid) -> Path:
    from models.common.study_writer import phantom_patient, write_phantom_radiograph

    patient = phantom_patient(
        f"PHANTOM^SPINE^{sample.seed}", f"PH-SPINE-{sample.seed:05d}",
        "Synthetic lumbar spine AP and lateral (phantom, not a patient)", "LSPINE",
    )  # fmt: skip
    # Both views belong to one study (study_uid); row and column directions in the patient: AP
    # shows the right on the left, LAT faces left.
    return write_phantom_radiograph(
        pixels, vdir / f"spine_{view.lower()}.dcm", patient=patient,
        spacing_mm=sample.pixel_spacing_mm, series_description=f"L-spine {view}",
        view_position="AP" if view == "AP" else "LL", window=window, study_uid=study_uid,
        tags={"SeriesNumber": 1 if view == "AP" else 2,
              "PatientOrientation": ["L", "F"] if view == "AP" else ["P", "F"]},
    )  # fmt: skip


def _write_jpeg_view(view, pixels, masks, vdir) -> Path:
    from PIL import Image

    grey = np.round(pixels.astype(np.float32) / 4095 * 255).astype(np.uint8)
    path = vdir / f"{view}.jpg"
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(path, quality=92)
    (vdir / "masks").mkdir(exist_ok=True)
    for name, mask in masks.items():
        png = vdir / "masks" / f"{name.replace(' ', '_')}.png"
        Image.fromarray((mask * 255).astype(np.uint8)).save(png)
    return path


def _write_view_truth(sample, view, masks, levels, spacing, vdir) -> Path:
    from app.findings.truth import write_truth
    from models.common.study_writer import phantom_source

    grid = xg.Grid(*levels.shape, *spacing)
    maps = [(f"{view} vertebral levels (truth)", xr.radiograph_volume(levels, grid),
             {k + 1: (name, _level_color(k)) for k, name in enumerate(LEVELS)})]  # fmt: skip
    for name, mask in masks.items():
        maps.append((name, xr.radiograph_volume(mask.astype(np.uint8), grid),
                     {1: (name, MASK_COLORS[name])}))  # fmt: skip
    heights = {
        v.name: {"anterior_mm": round(v.anterior_height, 2),
                 "posterior_mm": round(v.posterior_height, 2)}
        for v in sample.vertebrae
    }  # fmt: skip
    return write_truth(
        vdir,
        TASK.id,
        labels={
            "class": sample.label,
            "damaged": sample.damaged,
            "damaged_level": sample.damaged_level,
            "damage_type": sample.damage_type,
            "view": view,
            "masks": list(masks),
            "vertebral_heights": heights,
        },
        source=phantom_source(sample.seed, "models.spine_xray.phantom"),
        labelmaps=maps,
    )


def _level_color(k: int) -> tuple[int, int, int]:
    palette = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
               (145, 30, 180), (70, 240, 240)]  # fmt: skip
    return palette[k % len(palette)]
