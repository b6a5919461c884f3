"""Training data: phantoms and a folder of images + labels CSV through the same crop code, and
the one training command on such a folder."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from models.femur_ao.data import box_to_crop, folder_set, phantom_set, targets
from models.femur_ao.phantom import CLASSES, generate, write_study
from models.femur_ao.sides import crop_sides


def _folder(tmp_path, n=10):
    from PIL import Image

    rows = []
    for k in range(n):
        side = ("right", "left")[k % 2]
        label = CLASSES[k % len(CLASSES)]
        s = generate(300 + k, shape=(307, 375), view=side, labels={side: label})
        if k % 3 == 0:  # some as DICOM, some as PNG: both readers
            name = f"f{k}/image.dcm"
            write_study(s, tmp_path / f"f{k}")
        else:
            name = f"f{k}.png"
            img = (s.image.astype(float) / 4095 * 255).astype(np.uint8)
            Image.fromarray(img).save(tmp_path / name)
        b = s.head_boxes[side]
        rows.append(
            {
                "file": name,
                "label": label,
                "side": side,
                "x0": b[0],
                "y0": b[1],
                "x1": b[2],
                "y1": b[3],
            }
        )
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def test_folder_and_phantoms_share_the_crop_path(tmp_path):
    rows = _folder(tmp_path, n=6)
    ds = folder_set(tmp_path, 64)
    assert ds.x.shape == (6, 64, 64) and list(ds.sides) == [r["side"] for r in rows]
    assert [CLASSES[i] for i in ds.y] == [r["label"] for r in rows]
    # Row 0 is a DICOM: its crop equals crop_sides on the same pixels with the side given.
    s = generate(300, shape=(307, 375), view="right", labels={"right": CLASSES[0]})
    from models.femur_ao.sides import Layout

    _, crops = crop_sides(s.image, 64, layout=Layout("single", ("right",), "test"))
    assert np.allclose(ds.x[0].astype(np.float32), crops[0].pixels, atol=1e-2)
    assert np.allclose(ds.boxes[0], box_to_crop(s.head_boxes["right"], crops[0], 64), atol=1e-3)
    ph = phantom_set(range(2), 64)
    assert ph.x.shape == (4, 64, 64) and list(ph.sides) == ["right", "left"] * 2


def test_bad_labels_are_named(tmp_path):
    (tmp_path / "labels.csv").write_text("file,label\nx.png,C3\n")
    with pytest.raises(ValueError, match=r"labels.csv:2: label 'C3'"):
        folder_set(tmp_path, 64)
    with pytest.raises(FileNotFoundError, match="labels CSV not found"):
        folder_set(tmp_path / "missing", 64)


def test_targets_follow_the_hierarchy():
    t = targets(np.array([CLASSES.index(c) for c in ("normal", "A1", "A3", "B1", "B3")]))
    assert t["fracture"].tolist() == [0, 1, 1, 1, 1]
    assert t["type"].tolist() == [0, 1, 1, 2, 2]
    assert t["subtype"].tolist() == [-100, 0, 2, 3, 5]


def test_train_command_runs_on_a_folder(tmp_path):
    pytest.importorskip("torch")
    from models.femur_ao.train import main

    _folder(tmp_path / "data", n=10)
    out = tmp_path / "run"
    assert (
        main(
            [
                "--data",
                str(tmp_path / "data"),
                "--out",
                str(out),
                "--seed",
                "3",
                "--epochs",
                "1",
                "--batch",
                "4",
            ]
        )
        == 0
    )
    report = json.loads((out / "metrics.json").read_text())
    assert report["n_test"] == 2 and "weighted_f1" in report["3-class"]
    assert (out / "best.pt").is_file() and json.loads((out / "config.json").read_text())[
        "name"
    ] == "demo"
