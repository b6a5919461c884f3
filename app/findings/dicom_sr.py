"""Findings as a DICOM Comprehensive SR, TID 1500 Measurement Report, and back.

One measurement group per finding (TID 1501; TID 1411 with a reference to its SEG segment when
the finding's ``region_id`` names a segment): finding type "Fracture of bone" for a fracture
task's findings, else "Finding"; tracking identifier ``[side:]label``, the
probability as "Certainty of Finding" (DCM 111012, a ratio 0-1), the decision threshold, and
the call as Present/Absent. The SR belongs to the source study and lists the source images (and
the SEG) as evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from app.findings.dicom_seg import (
    MANUFACTURER,
    complete_study_attributes,
    default_codes,
    segment_numbers,
)
from app.findings.types import AnalysisResult, Finding

PROBABILITY = codes.DCM.CertaintyOfFinding  # (111012, DCM)
# No standard code names a model's decision threshold: a private scheme (PS3.16 8.1, "99").
THRESHOLD = Code("THRESHOLD", "99OSTEOVIEW", "Decision threshold")
FINDING = codes.SCT.Finding
FRACTURE = Code("125605004", "SCT", "Fracture of bone")
_UNIT = codes.UCUM.NoUnits


@dataclass(frozen=True)
class SrFinding:
    """One finding as read back from an SR."""

    identifier: str  # "[side:]label"
    probability: float
    threshold: float
    present: bool
    segment: int | None = None  # the referenced SEG segment number, if any


def _identifier(f: Finding) -> str:
    return f"{f.side}:{f.label}" if f.side else f.label


def _group(
    task_id: str,
    f: Finding,
    algorithm: hd.sr.AlgorithmIdentification,
    seg: Dataset | None,
    segment_of_value: dict[int, int],
    no_call: bool = False,
):
    ident = hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=_identifier(f)[:64])
    measurements = [
        hd.sr.Measurement(PROBABILITY, float(f.probability), _UNIT, algorithm_id=algorithm),
        hd.sr.Measurement(THRESHOLD, float(f.threshold), _UNIT),
    ]
    # Present/Absent of the abnormality the finding speaks of: a positive call of a normal class
    # (femur "normal") says the fracture is absent.
    call = codes.SCT.Present if f.abnormal else codes.SCT.Absent
    # Outside the model's training domain no decision is taken: the SR asserts neither.
    evaluations = None if no_call else [hd.sr.QualitativeEvaluation(FINDING, call)]
    _, site = default_codes(f.label)
    sites = [hd.sr.FindingSite(site)] if site != codes.SCT.Tissue else None
    about_fracture = "fract" in f"{f.label} {f.group} {f.parent} {task_id}".lower()
    common = dict(
        tracking_identifier=ident,
        finding_type=FRACTURE if about_fracture else FINDING,
        algorithm_id=algorithm,
        finding_sites=sites,
        measurements=measurements,
        qualitative_evaluations=evaluations,
    )
    value = int(f.region_id) if f.region_id.isdigit() else None
    if seg is not None and value in segment_of_value:
        ref = hd.sr.ReferencedSegment.from_segmentation(seg, segment_of_value[value])
        return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            referenced_segment=ref, **common
        )
    return hd.sr.MeasurementsAndQualitativeEvaluations(**common)


def write_sr(
    result: AnalysisResult,
    source: Sequence[Dataset],
    seg: Dataset | None = None,
    series_number: int = 902,
) -> Dataset:
    """A TID 1500 Comprehensive SR of ``result``'s findings in the source images' study."""
    if not source:
        raise ValueError("no source images for the structured report")
    prov = result.provenance
    algorithm = hd.sr.AlgorithmIdentification(prov.model_name[:64], prov.model_version[:64])
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=hd.UID(), name=prov.model_name[:64], manufacturer_name=MANUFACTURER
    )
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(codes.DCM.Device, device)
    )
    numbers = segment_numbers(seg)
    groups = [
        _group(result.task_id, f, algorithm, seg, numbers, bool(result.no_call))
        for f in result.findings
    ]
    report = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=codes.LN.DiagnosticImagingReport,
        imaging_measurements=groups,
    )
    evidence = [complete_study_attributes(ds) for ds in source]
    sr = hd.sr.ComprehensiveSR(
        evidence=evidence + ([seg] if seg is not None else []),
        content=report[0],
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
    )
    sr.SeriesDescription = f"{prov.model_name} findings ({prov.disclaimer})"[:64]
    return sr


def _items(seq, name: Code) -> list[Dataset]:
    return [
        i
        for i in seq
        if getattr(i, "ConceptNameCodeSequence", None)
        and i.ConceptNameCodeSequence[0].CodeValue == name.value
        and i.ConceptNameCodeSequence[0].CodingSchemeDesignator == name.scheme_designator
    ]


def read_sr(sr: Dataset) -> list[SrFinding]:
    """The findings of a TID 1500 SR written by ``write_sr`` (any order-preserving reader)."""
    out = []
    for container in _items(sr.ContentSequence, codes.DCM.ImagingMeasurements):
        for group in container.ContentSequence:
            items = group.ContentSequence
            ident = _items(items, codes.DCM.TrackingIdentifier)[0].TextValue
            prob = _items(items, PROBABILITY)[0].MeasuredValueSequence[0].NumericValue
            thr = _items(items, THRESHOLD)[0].MeasuredValueSequence[0].NumericValue
            call = _items(items, FINDING)[0].ConceptCodeSequence[0].CodeValue
            segs = _items(items, codes.DCM.ReferencedSegment)
            number = None
            if segs:
                number = int(segs[0].ReferencedSOPSequence[0].ReferencedSegmentNumber)
            present = call == codes.SCT.Present.value
            out.append(SrFinding(str(ident), float(prob), float(thr), present, number))
    return out
