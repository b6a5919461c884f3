"""The three training layouts (phantom, Tianchi JSON, RSNA 2024 CSV) through one code path,
each on a small generated fixture written as DICOM and read back through app.study.load."""

from __future__ import annotations

import csv
import json

import numpy as np
import pydicom
import pytest

from app.study.dicom_writer import write_series
from app.study.geometry import ImageVolume
from models.lumbar_ccfnet.anatomy import DISCS, OBJECTS
from models.lumbar_ccfnet.data import (
    from_volume,
    load_samples,
    phantom_samples,
    rsna_samples,
    tianchi_samples,
    to_arrays,
)
from models.lumbar_ccfnet.phantom import generate, write_study

SEEDS = (21, 22)


@pytest.fixture(scope="module")
def phantoms():
    return [generate(s, rows=160, cols=160, pixel_mm=1.6, n_slices=3) for s in SEEDS]


def _truth(sample) -> tuple[np.ndarray, np.ndarray]:
    pts = np.array([sample.landmarks_px[n] for n in OBJECTS])
    return pts, sample.label_vector()


def test_phantom_samples_carry_points_and_labels():
    (s,) = phantom_samples([5])
    g = generate(5, n_slices=1)
    assert s.pixels.ndim == 2 and np.isfinite(s.points).all()
    np.testing.assert_array_equal(s.labels, g.label_vector())
    # Discs lie between their vertebrae, head to feet (rows grow toward the feet).
    rows = dict(zip(OBJECTS, s.points[:, 1], strict=True))
    assert rows["T12-L1"] < rows["L1"] < rows["L1-L2"] < rows["L5"] < rows["L5-S1"]


def test_tianchi_layout(tmp_path, phantoms):
    studies = []
    for n, ph in enumerate(phantoms):
        folder = write_study(ph, tmp_path / f"study{n}")
        mid = pydicom.dcmread(folder / f"sag_t2_{ph.mid_slice:03d}.dcm")
        points = [
            {"coord": [round(i, 3), round(j, 3)],
             "tag": {"identification": name,
                     ("disc" if name in DISCS else "vertebra"):
                     ("v3,v5" if name in DISCS else "v2") if ph.status[name] == "diseased"
                     else "v1"}}
            for name, (i, j) in ph.landmarks_px.items()
        ]  # fmt: skip
        studies.append({
            "studyUid": str(mid.StudyInstanceUID),
            "data": [{"seriesUid": str(mid.SeriesInstanceUID),
                      "instanceUid": str(mid.SOPInstanceUID),
                      "annotation": [{"annotator": 1, "data": {"point": points}}]}],
        })  # fmt: skip
    (tmp_path / "lumbar_train_annotation.json").write_text(json.dumps(studies))
    samples = tianchi_samples(tmp_path)
    assert len(samples) == len(phantoms)
    for s, ph in zip(samples, phantoms, strict=True):
        pts, lab = _truth(ph)
        np.testing.assert_allclose(s.points, pts, atol=1e-3)
        np.testing.assert_array_equal(s.labels, lab)
        np.testing.assert_allclose(s.pixels, ph.volume[ph.mid_slice], atol=0.5)
        assert s.spacing == pytest.approx((1.6, 1.6))
    assert len(load_samples("tianchi", tmp_path)) == len(phantoms)


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.fixture(scope="module")
def rsna_root(tmp_path_factory, phantoms):
    tmp_path = tmp_path_factory.mktemp("rsna")
    descs, coords, train = [], [], []
    for n, ph in enumerate(phantoms):
        study, series = str(1000 + n), str(2000 + n)
        out = tmp_path / "train_images" / study / series
        k = ph.volume.shape[0]
        write_series(ph.image_volume(), out, modality="MR", series_description="Sagittal T2/STIR",
                     file_names=[f"{i + 1}.dcm" for i in range(k)])  # fmt: skip
        descs += [
            {"study_id": study, "series_id": series, "series_description": "Sagittal T2/STIR"},
            {"study_id": study, "series_id": "9", "series_description": "Axial T2"},
        ]
        row = {"study_id": study}
        for name in DISCS[1:]:  # RSNA labels L1/L2 .. L5/S1
            level = name.replace("-", "/")
            i, j = ph.landmarks_px[name]
            coords.append(
                {
                    "study_id": study,
                    "series_id": series,
                    "instance_number": str(ph.mid_slice + 1),
                    "condition": "Spinal Canal Stenosis",
                    "level": level,
                    "x": f"{i:.3f}",
                    "y": f"{j:.3f}",
                }
            )
            coords.append(
                {
                    "study_id": study,
                    "series_id": "9",
                    "instance_number": "1",
                    "condition": "Left Subarticular Stenosis",
                    "level": level,
                    "x": "1",
                    "y": "1",
                }
            )
            sev = "Severe" if ph.status[name] == "diseased" else "Normal/Mild"
            row["spinal_canal_stenosis_" + name.lower().replace("-", "_")] = sev
        train.append(row)  # fmt: skip
    _write_csv(tmp_path / "train_series_descriptions.csv", descs)
    _write_csv(tmp_path / "train_label_coordinates.csv", coords)
    _write_csv(tmp_path / "train.csv", train)
    return tmp_path


def test_rsna2024_layout(rsna_root, phantoms):
    samples = rsna_samples(rsna_root)
    assert len(samples) == len(phantoms)
    for s, ph in zip(samples, phantoms, strict=True):
        pts, lab = _truth(ph)
        labelled = [OBJECTS.index(d) for d in DISCS[1:]]
        np.testing.assert_allclose(s.points[labelled], pts[labelled], atol=1e-2)
        assert np.isnan(s.points[[OBJECTS.index(n) for n in ("L1", "T12-L1")]]).all()
        np.testing.assert_array_equal(s.labels[labelled], lab[labelled])
        assert (s.labels[[OBJECTS.index("L3"), OBJECTS.index("T12-L1")]] == -1).all()
        np.testing.assert_allclose(s.pixels, ph.volume[ph.mid_slice], atol=0.5)


def test_a_series_stored_head_down_and_front_right_gives_the_same_sample(phantoms):
    ph = phantoms[0]
    vol = ph.image_volume()
    ref = from_volume(vol, ph.mid_slice, ph.landmarks_px, {}, "ref")
    k, rows, cols = vol.shape
    d = vol.direction.copy()
    # Rows toward the head and columns toward anterior: voxel (0, 0) moves to the far corner.
    origin = vol.index_to_world(np.array([cols - 1, rows - 1, 0.0]))
    d[:, 0], d[:, 1] = -d[:, 0], -d[:, 1]
    flipped = ImageVolume(vol.array[:, ::-1, ::-1].copy(), vol.spacing, origin, d)
    pts = {n: (cols - 1 - i, rows - 1 - j) for n, (i, j) in ph.landmarks_px.items()}
    got = from_volume(flipped, ph.mid_slice, pts, {}, "flipped")
    np.testing.assert_array_equal(got.pixels, ref.pixels)
    np.testing.assert_allclose(got.points, ref.points)


def test_to_arrays_frames_points_in_mm(phantoms):
    s = from_volume(phantoms[0].image_volume(), 1, phantoms[0].landmarks_px, {}, "x")
    a = to_arrays([s], 128)
    assert a["x"].shape == (1, 1, 128, 128)
    assert a["mm_per_px"][0] == pytest.approx(160 * 1.6 / 128)
    # The input pixel at a point is bright or dark tissue, never the zero padding.
    u, v = np.round(a["points"][0, OBJECTS.index("L3")]).astype(int)
    assert a["x"][0, 0, v, u] != 0


def test_train_command_reads_a_public_layout(rsna_root, tmp_path):
    pytest.importorskip("torch")
    from models.lumbar_ccfnet.train import main

    out = tmp_path / "run"
    argv = ["--data", "rsna2024", str(rsna_root), "--out", str(out), "--seed", "0",
            "--epochs", "1", "--batch", "2", "--no-export"]  # fmt: skip
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == {"source": "rsna2024", "train": 1, "val": 1}
    assert (out / "best.pt").is_file() and metrics["command"].endswith("--no-export")
