"""Writing a phantom as a study: one block for every task's ``write_study``.

A phantom study is DICOM written by the project's generic writer (``app.study.dicom_writer``),
the few tags that kind of image needs and the generic writer does not write (patient
orientation of a lateral film, MR sequence tags), and ``truth.json`` beside it. The phantoms go
through the same loader as real scans, so what they write must look like what a modality writes.

Phantom modules import this inside ``write_study``: rendering (training workers) then never
loads pydicom or the app.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pydicom

from app.study.dicom_writer import PatientTags, write_radiograph, write_series
from app.study.geometry import ImageVolume


def phantom_patient(name: str, patient_id: str, description: str, body_part: str) -> PatientTags:
    """The patient and study tags of a phantom (``description`` should say it is not a patient)."""
    return PatientTags(
        name=name, patient_id=patient_id, study_description=description, body_part=body_part
    )


def phantom_source(seed: int, module: str = "") -> str:
    """truth.json's ``source``: the generator and seed that reproduce the study."""
    return f"synthetic phantom, seed {seed}" + (f" ({module})" if module else "")


def set_tags(paths: Iterable[Path], tags: dict[str, object]) -> None:
    """Add or replace DICOM attributes (keyword -> value) in files already written."""
    for path in paths:
        ds = pydicom.dcmread(path)
        for keyword, value in tags.items():
            setattr(ds, keyword, value)
        ds.save_as(path, enforce_file_format=True)


def write_phantom_radiograph(
    pixels: np.ndarray,
    path: Path,
    *,
    patient: PatientTags,
    spacing_mm: tuple[float, float],
    series_description: str,
    view_position: str,
    window: tuple[float, float] | None,
    modality: str = "DX",
    study_uid: str | None = None,
    tags: dict[str, object] | None = None,
) -> Path:
    """One radiograph as a DICOM file (its folder is created), plus ``tags``."""
    path = write_radiograph(
        pixels,
        Path(path),
        spacing_mm,
        modality=modality,
        patient=patient,
        series_description=series_description,
        view_position=view_position,
        window=window,
        study_uid=study_uid,
    )
    if tags:
        set_tags([path], tags)
    return path


def write_phantom_series(
    volume: ImageVolume,
    out_dir: Path,
    *,
    patient: PatientTags,
    modality: str,
    series_description: str,
    window: tuple[float, float] | None,
    file_names: list[str] | None = None,
    tags: dict[str, object] | None = None,
) -> list[Path]:
    """A volume as one DICOM file per slice in ``out_dir`` (k order), plus ``tags`` on each."""
    paths = write_series(
        volume,
        Path(out_dir),
        modality=modality,
        patient=patient,
        series_description=series_description,
        window=window,
        file_names=file_names,
    )
    if tags:
        set_tags(paths, tags)
    return paths
