"""A demo study folder: truth.json, its label maps and README files are not series or errors."""

import numpy as np

from app.findings.truth import write_truth
from app.study import load
from app.study.dicom_writer import write_radiograph
from app.study.geometry import ImageVolume


def test_truth_and_docs_beside_a_study_are_not_loaded_as_series(tmp_path):
    pixels = (np.random.default_rng(0).random((40, 50)) * 1000).astype(np.uint16)
    write_radiograph(pixels, tmp_path / "image.dcm")
    mask = ImageVolume(np.zeros((1, 40, 50), np.uint8), (1.0, 0.15, 0.15))
    write_truth(tmp_path, "t", {"x": 1}, "test", labelmaps=[("m", mask, {1: ("a", (1, 2, 3))})])
    (tmp_path / "README.md").write_text("synthetic")
    (tmp_path / "notes.txt").write_text("not an image")

    result = load(tmp_path)

    assert [s.modality for s in result.all_series()] == ["DX"]
    # A stray text file is still reported; documentation and ground truth are not.
    assert [e.path.rsplit("/", 1)[-1] for e in result.errors] == ["notes.txt"]


def test_patient_tags_written_are_the_patient_info_read_back(tmp_path):
    from dataclasses import fields

    from app.study.dicom_writer import PatientTags
    from app.study.model import PatientInfo

    tags = PatientTags(name="DOE^JANE", patient_id="P1", accession="A9", body_part="PELVIS")
    write_radiograph(np.zeros((8, 8), np.uint16), tmp_path / "x.dcm", patient=tags)
    study = load(tmp_path / "x.dcm").studies[0]
    for f in fields(PatientInfo):
        assert getattr(study.patient, f.name) == getattr(tags, f.name), f.name
    assert study.series[0].body_part == "PELVIS"
