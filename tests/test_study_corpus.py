"""Every file of pydicom's bundled corpus and of ../shared/data/real loads or fails cleanly.

"Cleanly" means: a LoadResult, or StudyLoadError naming the file and a reason; never another
exception, never a hang (pytest-timeout per file).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_files

from app.study import LoadResult, StudyLoadError, load

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("OSTEOVIEW_SHARED", REPO.parent / "shared")) / "data" / "real"


def _real_files() -> list[Path]:
    if not REAL_DATA.is_dir():
        return []
    return sorted(p for p in REAL_DATA.rglob("*") if p.is_file())


CORPUS = sorted(set(get_testdata_files()))
REAL = _real_files()


def _check(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = load(path)
        except StudyLoadError as exc:
            assert exc.reason.strip(), "a reason is given"
            assert Path(exc.path) == Path(path) or Path(exc.path).is_relative_to(
                Path(path).parent
            ), f"error names {exc.path}, not the file"
            return
    assert isinstance(result, LoadResult)
    assert result.all_series()
    for s in result.all_series():
        assert s.image.array.shape[:3] == s.shape
        assert s.image.array.size > 0
        assert len(s.spacing_mm) == 3 and all(v > 0 for v in s.spacing_mm)
    for e in result.errors:
        assert e.path and e.reason


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "path", CORPUS, ids=[os.path.relpath(p, os.path.dirname(CORPUS[0])) for p in CORPUS]
)
def test_pydicom_corpus_file(path: str) -> None:
    _check(Path(path))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", REAL, ids=[str(p.relative_to(REAL_DATA)) for p in REAL])
def test_real_data_file(path: Path) -> None:
    _check(path)


@pytest.mark.timeout(120)
def test_real_data_folders_load(real_data: Path) -> None:
    """Whole folders at once: good series load, the non-image side files are listed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = load(real_data / "xray_nema_wg04")
    # Every encoding decodes, 12-bit lossy JPEG included (imagecodecs); the README is skipped.
    assert result.errors == []
    assert len(result.all_series()) == 8


def test_twelve_bit_lossy_jpeg_matches_the_uncompressed_original(real_data: Path) -> None:
    folder = real_data / "xray_nema_wg04"
    lossy = load(folder / "RG2_JPLY.dcm").all_series()[0].image.array.astype(float)
    original = load(folder / "RG2_UNC.dcm").all_series()[0].image.array.astype(float)
    assert lossy.shape == original.shape == (1, 2140, 1760)
    # Lossy, so not identical: small mean error against a 10-bit range, strong correlation.
    assert np.abs(lossy - original).mean() < 8
    assert np.corrcoef(lossy.ravel(), original.ravel())[0, 1] > 0.99
