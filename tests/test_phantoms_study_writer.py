"""The phantoms' shared study writer: the tags it adds reach the file, and the loader reads a
phantom radiograph and series back with the patient, study and pixels given."""

from __future__ import annotations

import numpy as np
import pydicom

from app.study import load
from app.study.geometry import ImageVolume
from models.common.study_writer import (
    phantom_patient,
    phantom_source,
    write_phantom_radiograph,
    write_phantom_series,
)

PATIENT = phantom_patient("PHANTOM^T^1", "PH-T-00001", "Synthetic test (not a patient)", "FOOT")


def test_radiograph_with_study_uid_and_extra_tags(tmp_path):
    pixels = (np.arange(64 * 80, dtype=np.uint16) % 4096).reshape(64, 80)
    path = write_phantom_radiograph(
        pixels, tmp_path / "new" / "x.dcm", patient=PATIENT, spacing_mm=(0.2, 0.25),
        series_description="X lateral", view_position="LL", window=(2000.0, 4000.0),
        study_uid="1.2.3.4", tags={"PatientOrientation": ["A", "F"], "SeriesNumber": 2},
    )  # fmt: skip
    ds = pydicom.dcmread(path)
    assert ds.StudyInstanceUID == "1.2.3.4" and ds.SeriesNumber == 2
    assert list(ds.PatientOrientation) == ["A", "F"] and ds.ViewPosition == "LL"
    assert [float(v) for v in ds.ImagerPixelSpacing] == [0.2, 0.25]
    series = load(path).all_series()[0]
    assert np.array_equal(series.image.array[0], pixels)
    assert series.body_part == "FOOT"


def test_series_tags_reach_every_slice(tmp_path):
    volume = ImageVolume(np.full((3, 8, 8), 500.0, np.float32), (2.0, 1.0, 1.0))
    names = ["c.dcm", "a.dcm", "b.dcm"]
    paths = write_phantom_series(
        volume, tmp_path, patient=PATIENT, modality="MR", series_description="SAG T2",
        window=None, file_names=names, tags={"EchoTime": "105"},
    )  # fmt: skip
    assert [p.name for p in paths] == names
    assert {str(pydicom.dcmread(p).EchoTime) for p in paths} == {"105"}
    loaded = load(tmp_path)
    assert loaded.studies[0].patient.patient_id == "PH-T-00001"
    assert loaded.all_series()[0].shape == (3, 8, 8)


def test_source_names_the_generator_when_given():
    assert phantom_source(7) == "synthetic phantom, seed 7"
    assert phantom_source(7, "models.x.phantom") == "synthetic phantom, seed 7 (models.x.phantom)"
