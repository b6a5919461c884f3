"""The RSNA 2022 layout path: a tiny fixture built from phantoms goes through data code and training."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from pydicom.uid import generate_uid

from app.study.dicom_writer import PatientTags, write_series
from app.study.geometry import ImageVolume
from app.study.nifti import write_nifti
from models.cervical_fracture import pipeline as P
from models.cervical_fracture.data import TARGETS, rsna_records, stage1_study, vertebra_samples
from models.cervical_fracture.phantom import generate
from models.cervical_fracture.train import main as train_main


@pytest.fixture(scope="module")
def rsna_root(tmp_path_factory):
    """Three studies: a correct segmentation, one stored flipped along z, and none at all."""
    root = tmp_path_factory.mktemp("rsna2022")
    samples = [
        generate(101, fractures=["C2"], shape=64),
        generate(102, fractures=[], shape=64),
        generate(103, fractures=["C6", "C7"], shape=64),
    ]
    rows = []
    uids = []
    for n, s in enumerate(samples):
        uid = generate_uid()
        uids.append(uid)
        write_series(
            s.ct,
            root / "train_images" / uid,
            patient=PatientTags(body_part="CSPINE"),
            study_uid=uid,
        )
        if n == 0:
            write_nifti(s.labels, root / "segmentations" / f"{uid}.nii")
        elif n == 1:  # the known RSNA quirk: voxel order flipped along z, affine unchanged
            flipped = ImageVolume(
                np.ascontiguousarray(s.labels.array[::-1]), s.labels.spacing, s.labels.origin,
                s.labels.direction,
            )  # fmt: skip
            write_nifti(flipped, root / "segmentations" / f"{uid}.nii")
        rows.append({"StudyInstanceUID": uid, **s.truth_labels()})
    with (root / "train.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["StudyInstanceUID", *TARGETS])
        w.writeheader()
        w.writerows(rows)
    return root, samples, uids


def test_records_read_ct_labels_and_targets(rsna_root):
    root, samples, uids = rsna_root
    records = list(rsna_records(root))
    assert [r.uid for r in records] == uids
    for rec, s in zip(records, samples, strict=True):
        assert rec.ct.shape == s.ct.shape
        np.testing.assert_allclose(rec.ct.array, np.round(s.ct.array), atol=1.0)
        assert rec.targets == s.truth_labels()
    # correct file: labels land where they were; flipped file: detected, flipped back, noted
    assert np.array_equal(records[0].labels.array, samples[0].labels.array)
    assert records[0].notes == []
    assert np.array_equal(records[1].labels.array, samples[1].labels.array)
    assert any("flipped along the slice axis" in n for n in records[1].notes)
    assert records[2].labels is None


def test_same_samples_as_the_phantom_path(rsna_root):
    root, samples, _ = rsna_root
    rec = next(iter(rsna_records(root)))
    st = stage1_study(rec)
    assert st.work.shape[1:] == (P.WORK_SIZE, P.WORK_SIZE)
    assert set(np.unique(st.labels).tolist()) >= {1, 2, 3, 4, 5, 6, 7}
    vs = vertebra_samples(rec)
    assert [v.name for v in vs] == list(P.VERTEBRAE)
    assert all(v.crops.shape == (P.SEQ_SLICES, P.CROP_SIZE, P.CROP_SIZE) for v in vs)
    assert [v.target for v in vs] == [samples[0].fractures[n] for n in P.VERTEBRAE]


def test_one_training_step_on_the_layout(rsna_root, tmp_path):
    root, _, _ = rsna_root
    out = tmp_path / "run"
    rc = train_main(
        ["--data", str(root), "--out", str(out), "--seed", "1", "--stage1-iters", "1",
         "--stage2-iters", "1", "--batch", "2", "--threads", "1"]
    )  # fmt: skip
    assert rc == 0
    meta = json.loads((out / "config.json").read_text())
    assert meta["iterations_done"] == {"stage1": 1, "stage2": 1}
    assert len(meta["train_studies"]) == 3
    assert any("flipped" in n for n in meta["notes"])
    state = torch.load(out / "stage2.pt", weights_only=True)
    assert any(k.startswith("lstm.") for k in state)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "stage2-data" and e["samples"] > 0 for e in log)


def test_phantom_training_with_validation_and_reused_stage1(tmp_path):
    first = tmp_path / "first"
    args = ["--data", "phantom", "--n-train", "2", "--phantom-shape", "64", "--batch", "2"]
    assert (
        train_main([*args, "--out", str(first), "--stage1-iters", "1", "--stage2-iters", "1"]) == 0
    )
    second = tmp_path / "second"
    rc = train_main(
        [*args, "--out", str(second), "--stage1-from", str(first), "--stage2-iters", "2",
         "--val-n", "1"]
    )  # fmt: skip
    assert rc == 0
    log = [json.loads(line) for line in (second / "train_log.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "stage1-reused" for e in log)
    vals = [e for e in log if "val_loss" in e and e.get("stage") == 2]
    assert vals and all(0 <= e["val_loss"] < 20 for e in vals)
    best = [e for e in log if e.get("event") == "stage2-best"]
    assert best and best[0]["val_loss"] == min(e["val_loss"] for e in vals)
    s1 = torch.load(first / "stage1.pt", weights_only=True)
    s1b = torch.load(second / "stage1.pt", weights_only=True)
    assert all(torch.equal(s1[k], s1b[k]) for k in s1)
