"""DICOM SEG of label maps (app.findings.dicom_seg): round trips in world coordinates."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from app.findings.dicom_seg import Algorithm, SegError, Segment, read_seg, write_seg
from app.study.dicom_writer import write_radiograph, write_series
from app.study.geometry import ImageVolume

ALGO = Algorithm("test-model", "1.2.3")
SEGMENTS = [Segment(1, "C1", (255, 0, 0)), Segment(2, "C2", (0, 200, 40)),
            Segment(7, "fracture region", (30, 60, 250))]  # fmt: skip


def _oblique() -> np.ndarray:
    """Columns: LPS unit vectors of i, j, k, rotated 20 degrees about the k axis."""
    a = np.deg2rad(20)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


@pytest.fixture()
def ct(tmp_path):
    rng = np.random.default_rng(3)
    array = rng.integers(-500, 1000, size=(9, 24, 20)).astype(np.float32)
    volume = ImageVolume(array, (3.0, 0.9, 0.8), np.array([12.5, -40.0, 100.0]), _oblique())
    paths = write_series(volume, tmp_path / "ct", "CT")
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[1:4, 3:10, 2:8] = 1
    labels[4:7, 12:20, 5:15] = 2
    labels[6, 18:22, 14:18] = 7
    return volume, volume.with_array(labels), [pydicom.dcmread(p) for p in paths]


def _reread(ds) -> pydicom.Dataset:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    buf.seek(0)
    return pydicom.dcmread(buf)


def test_round_trip_rebuilds_the_label_map_exactly(ct) -> None:
    volume, labels, source = ct
    shuffled = source[::-1][3:] + source[::-1][:3]  # neither position nor instance order
    seg = _reread(write_seg(labels, SEGMENTS, shuffled, ALGO))
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and seg.SegmentationType == "BINARY"
    assert seg.StudyInstanceUID == source[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == source[0].FrameOfReferenceUID
    refs = {r.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence
            for r in s.ReferencedInstanceSequence}  # fmt: skip
    assert refs == {ds.SOPInstanceUID for ds in source}
    assert (
        int(seg.NumberOfFrames) == 7
    )  # C1 on 3 slices, C2 on 3, label 7 on 1: empty ones left out
    back = read_seg(seg, source)
    assert back.labels.shape == volume.shape and (back.labels == labels.array).all()
    assert back.source_uids == [ds.SOPInstanceUID for ds in source]  # write order is position
    assert {v: (s.name, s.rgb) for v, s in back.segments.items()} == {
        1: ("C1", (255, 0, 0)),
        2: ("C2", (0, 200, 40)),
        7: ("fracture region", (30, 60, 250)),
    }
    assert back.segments[1].type.value == codes.SCT.C1Vertebra.value
    assert back.segments[7].category.value == codes.SCT.MorphologicallyAbnormalStructure.value
    assert set(back.algorithm_types.values()) == {"AUTOMATIC"}
    edited = read_seg(_reread(write_seg(labels, SEGMENTS, source, ALGO, edited=True)), source)
    assert set(edited.algorithm_types.values()) == {"SEMIAUTOMATIC"}


def test_a_label_map_on_another_grid_lands_on_its_world_position(ct) -> None:
    volume, labels, source = ct
    # the same labels cropped to a sub-grid whose origin is voxel (2, 3, 1) of the CT
    crop = labels.array[1:8, 3:22, 2:18]
    origin = volume.index_to_world(np.array([2.0, 3.0, 1.0]))
    sub = ImageVolume(crop, volume.spacing, origin, volume.direction)
    back = read_seg(_reread(write_seg(sub, SEGMENTS, source, ALGO)), source)
    expected = np.zeros_like(labels.array)
    expected[1:8, 3:22, 2:18] = crop
    assert (back.labels == expected).all()


def test_a_frame_off_its_source_position_is_refused(ct) -> None:
    _, labels, source = ct
    seg = _reread(write_seg(labels, SEGMENTS, source, ALGO))
    pos = seg.PerFrameFunctionalGroupsSequence[2].PlanePositionSequence[0]
    pos.ImagePositionPatient = [float(pos.ImagePositionPatient[0]) + 0.5,
                                *pos.ImagePositionPatient[1:]]  # fmt: skip
    with pytest.raises(SegError, match="frame 3 .* lies at"):
        read_seg(seg, source)
    with pytest.raises(SegError, match="not in the source series"):
        read_seg(_reread(write_seg(labels, SEGMENTS, source, ALGO)), source[:4])


def test_radiograph_round_trip_and_empty_map(tmp_path) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 4000, size=(40, 30)).astype(np.uint16)
    source = [pydicom.dcmread(write_radiograph(pixels, tmp_path / "dx.dcm"))]
    labels = np.zeros((1, 40, 30), dtype=np.uint8)
    labels[0, 5:20, 4:9] = 2
    labels[0, 25:35, 10:28] = 1
    seg = _reread(write_seg(ImageVolume(labels), SEGMENTS, source, ALGO))
    back = read_seg(seg, source)
    assert (back.labels == labels).all() and set(back.segments) == {1, 2}
    with pytest.raises(SegError, match="no labelled pixel"):
        write_seg(ImageVolume(np.zeros_like(labels)), SEGMENTS, source, ALGO)


REAL_TILT = Path(__file__).resolve().parents[1].parent / "shared/data/real/ct_head_gantry_tilt"


@pytest.mark.skipif(not REAL_TILT.is_dir(), reason="real gantry-tilt CT not available")
def test_real_gantry_tilted_ct_one_segment_lands_in_world_space() -> None:
    """A real GE head CT (18.5 degree tilt, irregular spacing that the loader resamples): bone
    of the loaded volume, written as a one-segment SEG over the 28 original slices, matches
    bone thresholded on each original slice's own pixels (a shifted or flipped SEG would not)."""
    from pydicom.pixels import apply_modality_lut

    from app.study import load

    series = load(REAL_TILT).all_series()[0]
    bone = (series.image.array > 300).astype(np.uint8)
    source = [pydicom.dcmread(p) for p in series.source_paths]
    seg = _reread(write_seg(series.image.with_array(bone), [Segment(1, "bone")], source, ALGO))
    back = read_seg(seg, source)
    order = {uid: k for k, uid in enumerate(back.source_uids)}
    dice, shifted = [], []  # shifted: the SEG read 10 rows (~5 mm) off, as a bug would put it
    for ds in source:
        own = apply_modality_lut(ds.pixel_array, ds) > 300
        got = back.labels[order[ds.SOPInstanceUID]] == 1
        if own.sum() > 1000:
            dice.append(2 * (own & got).sum() / (own.sum() + got.sum()))
            off = np.roll(got, 10, axis=0)
            shifted.append(2 * (own & off).sum() / (own.sum() + off.sum()))
    print(f"median Dice {np.median(dice):.3f}, shifted 5 mm {np.median(shifted):.3f}")
    assert len(dice) > 10 and np.median(dice) > 0.9, dice
    assert np.median(shifted) < np.median(dice) - 0.2, (np.median(shifted), np.median(dice))
    assert back.segments[1].type.value == codes.SCT.Bone.value
