"""Calcaneus data: preprocessing, GridDropIn&Out, realistic mask errors, and the folder layout
(radiograph + mask + six-label CSV) trained through the same command as the phantoms."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from models.calcaneus_msrt import phantom
from models.calcaneus_msrt.preprocess import (
    area_matrix,
    image_input,
    linear_matrix,
    mask_input,
    resize_area,
    to_image_grid,
)

torch = pytest.importorskip("torch")

from models.calcaneus_msrt.data import (  # noqa: E402
    GDIO,
    LABEL_KEYS,
    corrupt_mask,
    folder_set,
    grid_drop_in_out,
)


def test_area_resampling_keeps_means_and_covers_every_pixel():
    m = area_matrix(1760, 128)
    assert np.allclose(m.sum(1), 1) and np.allclose(m.sum(0) * 1760 / 128, 1, atol=1e-4)
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    # 4 -> 2 is a plain 2x2 block mean.
    assert np.allclose(resize_area(a, 2), [[2.5, 4.5], [10.5, 12.5]])


def test_inputs_pad_at_bottom_right_and_maps_come_back_on_the_image_grid():
    img = np.zeros((200, 100), np.float32)
    img[:, :50] = 1000  # bright left half
    x = image_input(img, 64)
    assert x.shape == (64, 64) and x.min() == 0 and x.max() == 1
    assert x[:, :16].mean() > 0.9 and x[:, 40:].max() == 0  # padding on the right stays dark
    mask = np.zeros((200, 100), bool)
    mask[:100, :50] = True
    m = mask_input(mask, 64)
    assert m[:32, :16].min() == pytest.approx(1) and m[32:].max() == 0
    # Interpolation by indexing equals the interpolation matrices' product.
    ref = linear_matrix(64, 200)[:200] @ m @ linear_matrix(64, 200)[:100].T
    assert np.allclose(to_image_grid(m, 200, 100), ref, atol=1e-5)
    back = to_image_grid(m, 200, 100) > 0.5
    assert back.shape == (200, 100) and (back == mask).mean() > 0.97


def test_gdio_sets_fixed_size_patches_to_one_or_zero():
    m = torch.zeros(8, 1, 64, 64)
    m[:, :, 20:40, 20:40] = 1
    cfg = GDIO(patch=8, n_max=3, p=1.0)
    out = grid_drop_in_out(m, torch.Generator().manual_seed(0), cfg)
    again = grid_drop_in_out(m, torch.Generator().manual_seed(0), cfg)
    assert torch.equal(out, again)  # seeded
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    changed = out != m
    # p=1: nearly every mask changes (a 0-patch off the mask or a 1-patch inside it changes nothing)
    assert int(changed.any(dim=(1, 2, 3)).sum()) >= 6
    gained, lost = (out > m).sum(), (out < m).sum()
    assert gained > 0 and lost > 0  # both DropIn and DropOut happen
    for k in range(8):
        rows, cols = torch.nonzero(changed[k, 0], as_tuple=True)
        # Changes come in whole 8x8 patches: never more than n_max patches' area.
        assert len(rows) <= 3 * 64
    none = grid_drop_in_out(m, torch.Generator().manual_seed(0), GDIO(p=0.0))
    assert torch.equal(none, m)


def test_corrupted_masks_miss_some_and_add_some():
    s = phantom.generate(7, labels={"Primary Line": True, "Calcaneal Body": True})
    bone = s.bones == phantom.BONES.index("Calcaneus") + 1
    rng = np.random.default_rng(0)
    m = corrupt_mask(s.fracture_mask, bone, rng, 0.3)
    fine = s.fracture_mask
    assert (m & fine).sum() > 0.5 * fine.sum()  # mostly covers the fracture
    assert (fine & ~m).any(), "a missing blob"
    assert (m & ~fine).sum() > fine.sum(), "grown, with extra blobs"
    assert not corrupt_mask(np.zeros((64, 64), bool), bone[:64, :64], rng, 0.3).any()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Six small radiographs as DX DICOM, masks as PNG, and labels.csv."""
    from app.study.dicom_writer import PatientTags, write_radiograph

    root = tmp_path_factory.mktemp("calc_folder")
    rows = []
    for k in range(6):
        s = phantom.generate(500 + k, rows=128, cols=128, pixel_mm=1.2)
        write_radiograph(s.image, root / f"r{k}.dcm", s.pixel_spacing_mm, modality="DX",
                         patient=PatientTags(body_part="FOOT"), view_position="LL")  # fmt: skip
        Image.fromarray((s.rough_mask * 255).astype(np.uint8)).save(root / f"m{k}.png")
        rows.append({"image": f"r{k}.dcm", "mask": f"m{k}.png",
                     **{key: int(v) for key, v in zip(LABEL_KEYS, s.label_vector(), strict=True)}})  # fmt: skip
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root, rows


def test_folder_layout_reads_images_masks_and_labels(folder):
    root, rows = folder
    ds = folder_set(root, 64)
    assert ds.x.shape == (6, 64, 64) and ds.m.shape == (6, 64, 64) and ds.y.shape == (6, 6)
    assert ds.y.tolist() == [[float(r[k]) for k in LABEL_KEYS] for r in rows]
    for k in range(6):
        png = np.asarray(Image.open(root / f"m{k}.png")) > 0
        assert np.allclose(ds.m[k].astype(np.float32), mask_input(png, 64), atol=1e-3)


def test_folder_layout_rejects_a_mask_off_grid(folder, tmp_path):
    root, rows = folder
    for name in ("r0.dcm", "labels.csv"):
        (tmp_path / name).write_bytes((root / name).read_bytes())
    Image.fromarray(np.zeros((50, 60), np.uint8)).save(tmp_path / "m0.png")
    lines = (tmp_path / "labels.csv").read_text().splitlines()[:2]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="not on the image's grid"):
        folder_set(tmp_path, 64)


def test_training_command_runs_on_the_folder_layout(folder, tmp_path):
    from models.calcaneus_msrt.train import main

    root, _ = folder
    out = tmp_path / "run"
    args = ["--data", str(root), "--out", str(out), "--epochs", "1", "--unet-epochs", "1"]
    assert main(args) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["arms"]) == {"gdio", "plain"} and report["data"] == str(root)
    manifest = json.loads((out / "export" / "manifest.json").read_text())
    assert set(manifest["files"]) == {"calcaneus_msrt.onnx", "calcaneus_unet.onnx"}
    assert manifest["augmentation"].startswith("GridDropIn&Out")
