"""AP + lateral spine phantom: determinism, the paper's masks, damage, DICOM/JPEG round trip."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from models.spine_xray import phantom as P
from models.spine_xray.anatomy import LEVELS

SMALL = {"rows": 320, "cols": 256, "pixel_mm": 0.9}
WEDGE = {"damaged": True, "damage_level": "L1", "damage_type": "wedge", "wedge_ratio": (0.5, 0.5)}


def _load(path: Path):
    from app.study import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(path)


def test_same_seed_same_patient() -> None:
    a, b = P.generate(21, **SMALL), P.generate(21, **SMALL)
    assert np.array_equal(a.ap, b.ap) and np.array_equal(a.lat, b.lat)
    assert a.label == b.label and a.damaged_level == b.damaged_level
    assert not np.array_equal(a.lat, P.generate(22, **SMALL).lat)


def test_masks_are_named_as_in_the_paper_and_not_empty() -> None:
    s = P.generate(1, damaged=False, **SMALL)
    assert tuple(s.ap_masks) == ("AP Pedicle", "AP Spinous Process", "AP Vertebra")
    assert tuple(s.lat_masks) == ("LAT Anterior Vertebral Line", "LAT Disk Height",
                                  "LAT Posterior Vertebral Line", "LAT Spinous Process",
                                  "LAT Vertebra")  # fmt: skip
    for name, m in {**s.ap_masks, **s.lat_masks}.items():
        assert m.dtype == bool and m.sum() > 50, name
    # Anatomy: pedicles project over the bodies; discs lie between bodies; the anterior line
    # is in front of (left of, on this lateral view) the posterior line; spinous processes
    # are behind the bodies.
    ap, lat = s.ap_masks, s.lat_masks
    assert (ap["AP Pedicle"] & ap["AP Vertebra"]).sum() > 0.9 * ap["AP Pedicle"].sum()
    assert not (lat["LAT Disk Height"] & lat["LAT Vertebra"]).any()
    cols = np.arange(s.lat.shape[1])[None, :]
    mean_x = {n: (cols * m).sum() / m.sum() for n, m in lat.items()}
    assert mean_x["LAT Anterior Vertebral Line"] < mean_x["LAT Vertebra"]
    assert mean_x["LAT Vertebra"] < mean_x["LAT Posterior Vertebral Line"]
    assert mean_x["LAT Posterior Vertebral Line"] < mean_x["LAT Spinous Process"]
    # Bone is brighter than the soft tissue beside it on both views.
    for img, body in ((s.ap, ap["AP Vertebra"]), (s.lat, lat["LAT Vertebra"])):
        ring = np.roll(body, 40, axis=1) & ~body
        assert img[body].mean() > img[ring].mean() + 150


def _level_areas(levels: np.ndarray) -> np.ndarray:
    return np.array([(levels == k + 1).sum() for k in range(len(LEVELS))], dtype=float)


def test_damaged_vertebra_is_shorter_on_both_views() -> None:
    s = P.generate(3, **WEDGE, **SMALL)
    assert s.label == "Damaged" and s.damaged_level == "L1" and s.damage_type == "wedge"
    k = LEVELS.index("L1")
    v = s.vertebrae[k]
    assert v.anterior_height < 0.6 * v.posterior_height
    for levels in (s.lat_levels, s.ap_levels):
        area = _level_areas(levels)
        neighbours = (area[k - 1] + area[k + 1]) / 2
        assert area[k] < 0.85 * neighbours, (area[k], neighbours)
    normal = P.generate(3, damaged=False, **SMALL)
    area = _level_areas(normal.lat_levels)
    assert area[k] > 0.9 * (area[k - 1] + area[k + 1]) / 2


def test_burst_widens_the_body() -> None:
    s = P.generate(4, damaged=True, damage_level="L2", damage_type="burst", **SMALL)
    k = LEVELS.index("L2")
    v, above = s.vertebrae[k], s.vertebrae[k - 1]
    assert v.mid_height < 0.85 * above.mid_height and v.width > above.width


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown level"):
        P.generate(0, damaged=True, damage_level="C5", **SMALL)
    with pytest.raises(ValueError, match="unknown damage type"):
        P.generate(0, damaged=True, damage_type="crush", **SMALL)


def test_dicom_views_load_as_one_study_with_their_masks(tmp_path: Path) -> None:
    from app.findings.truth import load_truth

    s = P.generate(5, **WEDGE, **SMALL)
    out = P.write_study(s, tmp_path / "case")
    result = _load(out)
    dx = [x for x in result.all_series() if x.modality == "DX"]
    assert len(dx) == 2
    assert len({st.study_uid for st in result.studies if any(x in dx for x in st.series)}) == 1
    views = {x.view_position: x for x in dx}
    assert set(views) == {"AP", "LL"}
    import pydicom

    assert list(pydicom.dcmread(out / "AP" / "spine_ap.dcm").PatientOrientation) == ["L", "F"]
    assert list(pydicom.dcmread(out / "LAT" / "spine_lat.dcm").PatientOrientation) == ["P", "F"]
    for view, series, pixels, masks in (("AP", views["AP"], s.ap, s.ap_masks),
                                        ("LAT", views["LL"], s.lat, s.lat_masks)):  # fmt: skip
        assert series.kind == "projection"
        assert series.spacing_mm == pytest.approx((1.0, 0.9, 0.9))
        assert np.array_equal(series.image.array[0], pixels)
        truth = load_truth(out / view / f"spine_{view.lower()}.dcm", reference=series.image)
        assert truth.labels["class"] == "Damaged" and truth.labels["damaged_level"] == "L1"
        maps = {ov.name: ov.image for ov in truth.overlays}
        for name, mask in masks.items():
            img = maps[name]
            assert np.allclose(img.affine_lps(), series.image.affine_lps())
            assert np.array_equal(img.array[0] > 0, mask)
        body = maps[f"{'AP Vertebra' if view == 'AP' else 'LAT Vertebra'}"].array[0] > 0
        assert series.image.array[0][body].mean() > np.median(series.image.array[0])


def test_jpeg_views_like_the_papers_dataset(tmp_path: Path) -> None:
    from PIL import Image

    s = P.generate(6, damaged=False, **SMALL)
    out = P.write_study(s, tmp_path / "case", fmt="jpeg")
    jpg = out / "AP" / "AP.jpg"
    with Image.open(jpg) as im:
        assert im.mode == "RGB" and im.size == (s.ap.shape[1], s.ap.shape[0])
    with Image.open(out / "LAT" / "masks" / "LAT_Disk_Height.png") as im:
        assert np.array_equal(np.asarray(im) > 0, s.lat_masks["LAT Disk Height"])
    (series,) = [x for x in _load(jpg).all_series()]
    assert series.spacing_mm == pytest.approx((1.0, 1.0, 1.0))
    grey = series.image.array[0] if not series.image.is_rgb else series.image.array[0, ..., 0]
    expected = np.round(s.ap / 4095 * 255)
    assert np.abs(grey.astype(float) - expected).mean() < 4  # JPEG is lossy
    with pytest.raises(ValueError, match="unknown format"):
        P.write_study(s, tmp_path / "x", fmt="png")
