"""A PDF report as a DICOM Encapsulated PDF instance in the source study, so a PACS shows it
beside the images it describes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from app.findings.dicom_seg import MANUFACTURER

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
# Patient and study attributes a document in the same study carries over from its images.
_FROM_SOURCE = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName", "AccessionNumber",
                "StudyDescription")  # fmt: skip


def write_pdf(
    pdf: bytes | Path, source: Sequence[Dataset], title: str, series_number: int = 903
) -> Dataset:
    """An Encapsulated PDF of ``pdf`` in the study of ``source``, referencing its images."""
    data = Path(pdf).read_bytes() if isinstance(pdf, Path) else bytes(pdf)
    if not data.startswith(b"%PDF"):
        raise ValueError("not a PDF document")
    if not source:
        raise ValueError("no source images for the report")
    first = source[0]
    now = dt.datetime.now()
    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = ENCAPSULATED_PDF, meta.MediaStorageSOPInstanceUID
    for kw in _FROM_SOURCE:
        setattr(ds, kw, getattr(first, kw, "") or "")
    ds.SpecificCharacterSet = getattr(first, "SpecificCharacterSet", "ISO_IR 192")
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = title[:64]
    ds.Manufacturer = MANUFACTURER
    ds.ConversionType = "WSD"  # workstation: a document made on this computer
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.InstanceCreationDate, ds.InstanceCreationTime = ds.ContentDate, ds.ContentTime
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "YES"  # the report shows patient identifiers
    ds.DocumentTitle = title[:64]
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocumentLength = len(data)
    ds.EncapsulatedDocument = data + (b"\0" if len(data) % 2 else b"")
    refs = []
    for img in source:
        item = Dataset()
        item.ReferencedSOPClassUID = img.SOPClassUID
        item.ReferencedSOPInstanceUID = img.SOPInstanceUID
        refs.append(item)
    ds.SourceInstanceSequence = refs
    return ds


def read_pdf(ds: Dataset) -> bytes:
    """The PDF bytes of an Encapsulated PDF (its padding byte removed)."""
    data = bytes(ds.EncapsulatedDocument)
    length = int(getattr(ds, "EncapsulatedDocumentLength", len(data)) or len(data))
    return data[:length]
