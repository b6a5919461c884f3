"""Write arrays as DICOM: CT/MR series one slice per file, and single radiographs.

Used by the synthetic phantom generators (demo studies, training data) and benchmarks, so that
phantoms go through the very same loader as real scans. What is written passes David Clunie's
``dciodvfy`` without errors (tests/test_dicom_conformance.py): every Type 1 attribute of the
IOD has a value and every Type 2 one is present, empty where a phantom has nothing to say.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from app.study.geometry import ImageVolume
from app.study.model import PatientInfo

_SOP_CLASS = {
    "CT": CTImageStorage,
    "MR": MRImageStorage,
    "DX": DigitalXRayImageStorageForPresentation,
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "SC": SecondaryCaptureImageStorage,
}


@dataclass
class PatientTags(PatientInfo):
    """The loader's PatientInfo (what a written file reads back as) with phantom defaults, plus
    the body part the file declares."""

    name: str = "PHANTOM^SYNTHETIC"
    patient_id: str = "PHANTOM-0001"
    birth_date: str = "19700101"
    sex: str = "O"
    study_date: str = "20260101"
    accession: str = "ACC0001"
    study_description: str = "Synthetic phantom (not a patient)"
    body_part: str = ""


def _base_dataset(
    modality: str, patient: PatientTags, study_uid: str, series_uid: str, series_desc: str
) -> Dataset:
    sop_class = _SOP_CLASS[modality]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.StudyDate = patient.study_date
    ds.StudyTime = "120000"
    ds.StudyID = "1"
    ds.ReferringPhysicianName = ""  # Type 2: no referrer for a phantom
    ds.AccessionNumber = patient.accession
    ds.StudyDescription = patient.study_description
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesDescription = series_desc
    ds.SeriesNumber = 1
    ds.Manufacturer = "OsteoView phantom generator"
    if patient.body_part:
        ds.BodyPartExamined = patient.body_part
    elif modality != "DX":  # DX states Image Laterality instead
        ds.Laterality = ""  # 2C: with no body part, whether it is paired is unknown
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    return ds


def _set_pixels(ds: Dataset, pixels: np.ndarray) -> None:
    pixels = np.ascontiguousarray(pixels)
    ds.Rows, ds.Columns = pixels.shape
    if pixels.dtype == np.int16:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    elif pixels.dtype == np.uint16:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    elif pixels.dtype == np.uint8:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    else:
        raise ValueError(f"unsupported pixel dtype {pixels.dtype}")
    ds.PixelData = pixels.tobytes()


def write_series(
    volume: ImageVolume,
    out_dir: Path,
    modality: str = "CT",
    patient: PatientTags | None = None,
    series_description: str = "Synthetic series",
    study_uid: str | None = None,
    rescale: tuple[float, float] = (1.0, -1024.0),
    window: tuple[float, float] | None = None,
    file_names: list[str] | None = None,
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL"),
) -> list[Path]:
    """Write ``volume`` (k, j, i) as one DICOM file per slice; returns the paths in k order.

    Stored values are ``(array - intercept) / slope`` as uint16 (CT) or the array as uint16 (MR).
    ``file_names`` lets callers shuffle names to prove the loader sorts by position.
    """
    patient = patient or PatientTags()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    frame_uid = generate_uid()
    slope, intercept = rescale if modality == "CT" else (1.0, 0.0)
    row_dir = volume.direction[:, 0]
    col_dir = volume.direction[:, 1]
    dk, dj, di = volume.spacing
    paths = []
    for k in range(volume.shape[0]):
        ds = _base_dataset(modality, patient, study_uid, series_uid, series_description)
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""  # Type 2: no anatomical landmark for a phantom
        ds.PatientPosition = "HFS"  # 2C for CT and MR: the phantoms lie head first supine
        ds.InstanceNumber = k + 1
        ds.AcquisitionNumber = 1
        if modality == "CT":
            ds.KVP = ""  # Type 2: no tube for a synthetic image
        elif modality == "MR":
            _mr_type2(ds)
        ds.ImageType = list(image_type)
        pos = volume.index_to_world(np.array([0.0, 0.0, float(k)]))
        ds.ImagePositionPatient = [f"{v:.4f}" for v in pos]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [f"{dj:.4f}", f"{di:.4f}"]  # row spacing, column spacing
        ds.SliceThickness = f"{dk:.4f}"
        stored = np.round((volume.array[k] - intercept) / slope)
        ds.RescaleSlope = f"{slope:g}"
        ds.RescaleIntercept = f"{intercept:g}"
        if window is not None:
            ds.WindowCenter, ds.WindowWidth = f"{window[0]:g}", f"{window[1]:g}"
        _set_pixels(ds, np.clip(stored, 0, 65535).astype(np.uint16))
        name = file_names[k] if file_names else f"slice_{k:04d}.dcm"
        path = out_dir / name
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


# BodyPartExamined -> SNOMED CT anatomic region (CID 4031), so the region sequence a DX image
# must carry agrees with the body part it declares.
_REGIONS = {
    "CSPINE": ("122494005", "Cervical spine"),
    "TSPINE": ("122495006", "Thoracic spine"),
    "LSPINE": ("122496007", "Lumbar spine"),
    "SPINE": ("421060004", "Spine"),
    "PELVIS": ("816092008", "Pelvis"),
    "HIP": ("29836001", "Hip"),
    "FOOT": ("56459004", "Foot"),
    "ANKLE": ("70258002", "Ankle joint"),
    "CALCANEUS": ("80144004", "Calcaneus"),
    "KNEE": ("72696002", "Knee"),
    "CHEST": ("816094009", "Chest"),
}
# Patient orientation (row direction, column direction) of the standard radiographic display.
_ORIENTATION = {"AP": ["L", "F"], "PA": ["R", "F"], "LL": ["P", "F"], "RL": ["A", "F"]}


def _anatomic_region(body_part: str) -> list[Dataset]:
    code = _REGIONS.get(body_part.upper())
    if code is None:
        return []
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code[0], "SCT", code[1]
    return [item]


def _mr_type2(ds: Dataset) -> None:
    """The MR Image module's Type 1 and 2 attributes a synthetic image has no real value for."""
    ds.ScanningSequence, ds.SequenceVariant = "SE", "NONE"
    ds.ScanOptions, ds.MRAcquisitionType = "", "2D"
    ds.EchoTime = ds.RepetitionTime = ds.EchoTrainLength = ""
    ds.MagneticFieldStrength = ""
    ds.SliceThickness = ds.get("SliceThickness", "")


def _dx_attributes(ds: Dataset, photometric: str, laterality: str) -> None:
    """The DX Image, DX Anatomy Imaged and DX Detector modules (Type 1 values, Type 2 present).

    Stored values are the presented ones: linear, identity rescale; MONOCHROME1 is shown through
    an inverse presentation LUT (the DX IOD ties the two together)."""
    ds.ImageLaterality = laterality  # R, L, B (both), U (unpaired)
    ds.PixelIntensityRelationship = "LIN"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
    ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.AnatomicRegionSequence = _anatomic_region(str(ds.get("BodyPartExamined", "")))
    ds.AcquisitionContextSequence = []
    ds.DetectorType = ""
    ds.PositionerType = ""


def write_radiograph(
    pixels: np.ndarray,
    path: Path,
    pixel_spacing_mm: tuple[float, float] = (0.15, 0.15),
    modality: str = "DX",
    patient: PatientTags | None = None,
    series_description: str = "Synthetic radiograph",
    view_position: str = "AP",
    photometric: str = "MONOCHROME2",
    window: tuple[float, float] | None = None,
    study_uid: str | None = None,
    laterality: str = "U",
) -> Path:
    """Write one 2-D radiograph (uint16 or uint8) with ImagerPixelSpacing (row, column) in mm.

    ``laterality`` is the DX Image Laterality: R, L, B (both sides, e.g. a pelvis) or U."""
    patient = patient or PatientTags()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = _base_dataset(
        modality, patient, study_uid or generate_uid(), generate_uid(), series_description
    )
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.ViewPosition = view_position
    ds.ImagerPixelSpacing = [f"{pixel_spacing_mm[0]:.4f}", f"{pixel_spacing_mm[1]:.4f}"]
    ds.PhotometricInterpretation = photometric
    ds.PatientOrientation = _ORIENTATION.get(view_position, "")  # 2C; empty when not known
    if modality == "CR":
        ds.BodyPartExamined = ds.get("BodyPartExamined", "")  # Type 2 in the CR Series
    elif modality == "SC":
        ds.ConversionType = "WSD"  # made on a workstation
    if modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
        _dx_attributes(ds, photometric, laterality)
    if window is None and modality == "DX":
        # A DX image for presentation must say how to show it (VOI LUT, Type 1C): the full
        # range of what is stored, when the caller has no better window.
        lo, hi = float(np.min(pixels)), float(np.max(pixels))
        window = ((lo + hi) / 2, max(hi - lo, 1.0))
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = f"{window[0]:g}", f"{window[1]:g}"
    _set_pixels(ds, pixels)
    ds.save_as(path, enforce_file_format=True)
    return path
