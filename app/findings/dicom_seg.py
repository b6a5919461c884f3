"""Label maps as DICOM Segmentation objects (BINARY), and back: the one place that writes SEG.

API (small on purpose; the mask editor reuses it):

- ``Segment(value, name, rgb, category=None, type=None)``: one label of a label map; codes
  default from the name (``C1`` -> SNOMED "C1 vertebra", ``vertebra``, ``bone``, ...).
- ``write_seg(labels, segments, source, algorithm=..., edited=False) -> Dataset``: ``labels``
  is an ``ImageVolume`` holding integer labels in LPS geometry; ``source`` the source series'
  datasets (any order). Each source image gets the labels at its own pixels' world positions
  (nearest), so a SEG is pixel-aligned with its source however the label map was gridded.
  Algorithm type AUTOMATIC for a model's output, SEMIAUTOMATIC once a person ``edited`` it.
- ``segment_numbers(seg)``: label value -> segment number (what an SR references).
- ``read_seg(seg, source) -> SegLabels``: the label map rebuilt on the source grid (slices in
  source position order, original label values) and the segments; every frame is checked to
  sit on the world position of the source image it references, else ``SegError``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from app.study.geometry import ImageVolume

MANUFACTURER = "OsteoView"
_POSITION_TOL_MM = 1e-3
_VALUE_NOTE = re.compile(r"label value (\d+)")


class SegError(ValueError):
    """A SEG that cannot be written from, or read onto, the given source images."""


@dataclass(frozen=True)
class Segment:
    value: int  # the label map's value
    name: str
    rgb: tuple[int, int, int] = (255, 0, 0)
    category: Code | None = None  # SNOMED segmented property category (default from the name)
    type: Code | None = None  # SNOMED segmented property type


@dataclass(frozen=True)
class Algorithm:
    name: str
    version: str
    family: Code = codes.cid7162.ArtificialIntelligence


@dataclass
class SegLabels:
    labels: np.ndarray  # (k, j, i) in the source images' position order
    segments: dict[int, Segment]
    algorithm_types: dict[int, str]  # value -> AUTOMATIC / SEMIAUTOMATIC / MANUAL
    source_uids: list[str]  # SOPInstanceUID of slice k


def default_codes(name: str) -> tuple[Code, Code]:
    """(category, type) for a label name: a vertebra level, a bone, a fracture, else tissue."""
    level = re.fullmatch(r"([CTL]\d{1,2})", name.strip().upper())
    if level and hasattr(codes.SCT, f"{level.group(1)}Vertebra"):
        return codes.SCT.AnatomicalStructure, getattr(codes.SCT, f"{level.group(1)}Vertebra")
    low = name.lower()
    if "fractur" in low or "lesion" in low:
        return codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Lesion
    if "vertebra" in low:
        return codes.SCT.AnatomicalStructure, codes.SCT.Vertebra
    for bone in ("Femur", "Calcaneus"):
        if bone.lower() in low:
            return codes.SCT.AnatomicalStructure, getattr(codes.SCT, bone)
    if "bone" in low:
        return codes.SCT.AnatomicalStructure, codes.SCT.Bone
    return codes.SCT.Tissue, codes.SCT.Tissue


def _position(ds: Dataset) -> np.ndarray | None:
    ipp = getattr(ds, "ImagePositionPatient", None)
    return None if ipp is None else np.array([float(v) for v in ipp])


def _pixel_world(ds: Dataset) -> np.ndarray:
    """(rows, cols, 3) LPS centres of a source image's pixels."""
    ipp = _position(ds)
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    dr, dc = (float(v) for v in ds.PixelSpacing)  # row spacing (down), column spacing (across)
    j, i = np.mgrid[0 : int(ds.Rows), 0 : int(ds.Columns)]
    return ipp + i[..., None] * dc * iop[:3] + j[..., None] * dr * iop[3:]


def _labels_on(ds: Dataset, labels: ImageVolume) -> np.ndarray:
    """The label map sampled at the source image's pixels (nearest; 0 outside the map)."""
    arr = np.asarray(labels.array)
    if _position(ds) is None:  # a radiograph: its pixel grid is its own frame (one slice)
        if arr.shape[1:] != (int(ds.Rows), int(ds.Columns)):
            raise SegError(
                f"label map {arr.shape[1:]} does not match the radiograph "
                f"{int(ds.Rows)}x{int(ds.Columns)}"
            )
        return arr[0]
    ijk = np.rint(labels.world_to_index(_pixel_world(ds))).astype(np.int64)
    i, j, k = ijk[..., 0], ijk[..., 1], ijk[..., 2]
    inside = (i >= 0) & (j >= 0) & (k >= 0)
    inside &= (i < arr.shape[2]) & (j < arr.shape[1]) & (k < arr.shape[0])
    out = np.zeros(i.shape, dtype=arr.dtype)
    out[inside] = arr[k[inside], j[inside], i[inside]]
    return out


# Type 2 patient/study attributes a derived object copies from its source; scanners (and older
# OsteoView phantoms) leave some out, and highdicom needs them present, even if empty.
_STUDY_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID",
                "StudyDate", "StudyTime", "ReferringPhysicianName", "AccessionNumber")  # fmt: skip


def complete_study_attributes(ds: Dataset) -> Dataset:
    """``ds`` itself when it has every Type 2 study attribute, else a shallow copy (elements
    shared, nothing of ``ds`` changed) with the missing ones present and empty."""
    missing = [kw for kw in _STUDY_TYPE2 if kw not in ds]
    if not missing:
        return ds
    out = Dataset()
    out.update(ds)
    if hasattr(ds, "file_meta"):
        out.file_meta = ds.file_meta
    for kw in missing:
        setattr(out, kw, "")
    return out


def _source_order(source: Sequence[Dataset]) -> list[Dataset]:
    """Source images sorted along the slice normal (not by InstanceNumber or file name)."""
    if any(_position(ds) is None for ds in source):
        return list(source)
    iop = np.array([float(v) for v in source[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    return sorted(source, key=lambda ds: float(_position(ds) @ normal))


def write_seg(
    labels: ImageVolume,
    segments: Sequence[Segment],
    source: Sequence[Dataset],
    algorithm: Algorithm,
    edited: bool = False,
    series_number: int = 901,
    series_description: str = "",
) -> Dataset:
    """A BINARY DICOM SEG of ``labels`` over the source images (see the module doc)."""
    import highdicom as hd  # here, not at the top: the viewer imports this module at start-up

    if not source:
        raise SegError("no source images for the segmentation")
    if any(int(getattr(ds, "NumberOfFrames", 1) or 1) > 1 for ds in source):
        raise SegError("multi-frame source images are not supported yet")
    ordered = [complete_study_attributes(ds) for ds in _source_order(source)]
    stack = np.stack([_labels_on(ds, labels) for ds in ordered])
    present = [s for s in sorted(segments, key=lambda s: s.value) if (stack == s.value).any()]
    if not present:
        raise SegError("the label map has no labelled pixel on the source images")
    # highdicom numbers segments 1..N; the original values travel in each segment's description
    masks = np.zeros(stack.shape, dtype=np.uint8)
    descriptions = []
    kind = (
        hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC
        if edited
        else hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
    )
    ident = hd.AlgorithmIdentificationSequence(algorithm.name, algorithm.family, algorithm.version)
    for number, seg in enumerate(present, start=1):
        masks[stack == seg.value] = number
        category, prop = default_codes(seg.name)
        desc = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=seg.name[:64],
            segmented_property_category=seg.category or category,
            segmented_property_type=seg.type or prop,
            algorithm_type=kind,
            algorithm_identification=ident,
            display_color=hd.color.CIELabColor.from_rgb(*seg.rgb),
        )
        desc.SegmentDescription = f"{seg.name[:40]} (label value {seg.value})"
        descriptions.append(desc)
    seg_ds = hd.seg.Segmentation(
        source_images=ordered,
        pixel_array=masks,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=algorithm.name[:64],
        software_versions=algorithm.version,
        device_serial_number="0",
        content_label="LABELS",
        content_description=(series_description or algorithm.name)[:64],
        omit_empty_frames=True,
    )
    seg_ds.SeriesDescription = (series_description or f"{algorithm.name} segmentation")[:64]
    return seg_ds


def _rgb(desc: Dataset) -> tuple[int, int, int]:
    lab = getattr(desc, "RecommendedDisplayCIELabValue", None)
    if lab is None:
        return (255, 0, 0)
    import highdicom as hd

    rgb = hd.color.CIELabColor.from_dicom_value([int(v) for v in lab]).to_rgb()
    return tuple(int(round(v)) for v in rgb)


def segment_numbers(seg: Dataset | None) -> dict[int, int]:
    """Label value -> segment number of a SEG written here (the value is in each segment's
    description; a foreign SEG's segment numbers are their own values)."""
    if seg is None:
        return {}
    out = {}
    for desc in seg.SegmentSequence:
        note = _VALUE_NOTE.search(str(getattr(desc, "SegmentDescription", "")))
        out[int(note.group(1)) if note else int(desc.SegmentNumber)] = int(desc.SegmentNumber)
    return out


def read_seg(seg: Dataset, source: Sequence[Dataset]) -> SegLabels:
    """Rebuild the label map of ``seg`` on ``source`` (see the module doc); SegError when a frame
    references an image not in ``source`` or lies off that image's position."""
    if getattr(seg, "SegmentationType", "") != "BINARY":
        raise SegError("only BINARY segmentations are read")
    ordered = _source_order(source)
    index = {str(ds.SOPInstanceUID): k for k, ds in enumerate(ordered)}
    rows, cols = int(ordered[0].Rows), int(ordered[0].Columns)
    labels = np.zeros((len(ordered), rows, cols), dtype=np.int32)
    segments: dict[int, Segment] = {}
    kinds: dict[int, str] = {}
    value_of = {number: value for value, number in segment_numbers(seg).items()}
    for desc in seg.SegmentSequence:
        value = value_of[int(desc.SegmentNumber)]
        cat, typ = (
            desc.SegmentedPropertyCategoryCodeSequence[0],
            desc.SegmentedPropertyTypeCodeSequence[0],
        )
        segments[value] = Segment(
            value,
            str(desc.SegmentLabel),
            _rgb(desc),
            Code(cat.CodeValue, cat.CodingSchemeDesignator, cat.CodeMeaning),
            Code(typ.CodeValue, typ.CodingSchemeDesignator, typ.CodeMeaning),
        )
        kinds[value] = str(desc.SegmentAlgorithmType)
    frames = seg.pixel_array
    if frames.ndim == 2:
        frames = frames[None]
    shared = seg.get("SharedFunctionalGroupsSequence", [Dataset()])[0]

    def item(group: Dataset, name: str):
        """A functional group of this frame, else the one every frame shares (highdicom puts
        the segment number there when there is one segment)."""
        return group.get(name) or shared.get(name)

    for n, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = int(item(group, "SegmentIdentificationSequence")[0].ReferencedSegmentNumber)
        ref = item(group, "DerivationImageSequence")[0].SourceImageSequence[0]
        uid = str(ref.ReferencedSOPInstanceUID)
        if uid not in index:
            raise SegError(f"frame {n + 1} references image {uid}, not in the source series")
        k = index[uid]
        where = item(group, "PlanePositionSequence")
        expected = _position(ordered[k])
        if where is not None and expected is not None:
            got = np.array([float(v) for v in where[0].ImagePositionPatient])
            if np.abs(got - expected).max() > _POSITION_TOL_MM:
                raise SegError(
                    f"frame {n + 1} (segment {number}) lies at {got.round(3).tolist()} mm but its "
                    f"source image {uid} is at {expected.round(3).tolist()} mm"
                )
        labels[k][frames[n].astype(bool)] = value_of[number]
    uids = [str(ds.SOPInstanceUID) for ds in ordered]
    return SegLabels(labels, segments, kinds, uids)
