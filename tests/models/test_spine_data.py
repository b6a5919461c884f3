"""Spine training data: the paper's folder layout (a small generated fixture) read through the
same code as phantoms, the preprocessing both share with the adapter, and the levels measured
from masks."""

from __future__ import annotations

import numpy as np
import pytest

from models.spine_xray.data import folder_cases, folder_set, make_item, read_case
from models.spine_xray.levels import label_components, vertebra_components, vertebra_measures
from models.spine_xray.metrics import dice, roc_auc
from models.spine_xray.phantom import AP_MASKS, LAT_MASKS, generate, write_study
from models.spine_xray.preprocess import Letterbox, network_input

SMALL = {"rows": 200, "cols": 160, "pixel_mm": 1.44}  # the demo's field of view, 4x coarser


def _fixture(root, cases):
    """``cases``: (label, seed) pairs written as the paper's .jpg + .png layout."""
    samples = {}
    for n, (label, seed) in enumerate(cases):
        s = generate(seed, damaged=label == "Damaged", **SMALL)
        write_study(s, root / label / f"case{n}", fmt="jpeg")
        samples[f"case{n}"] = s
    return samples


def test_folder_layout_reads_images_masks_and_class(tmp_path):
    samples = _fixture(tmp_path, [("Normal", 1), ("Damaged", 2), ("Damaged", 3)])
    cases = folder_cases(tmp_path)
    assert [(c.name, label) for c, label in cases] == [
        ("case0", "Normal"), ("case1", "Damaged"), ("case2", "Damaged"),
    ]  # fmt: skip
    ds = folder_set(tmp_path, 64, 32)
    assert ds.y.tolist() == [0, 1, 1] and ds.has_masks.all()
    assert ds.ap.shape == (3, 64, 64) and ds.ap_cls.shape == (3, 32, 32)
    assert ds.ap_masks.shape == (3, 3, 64, 64) and ds.lateral_masks.shape == (3, 5, 64, 64)
    # The masks read from the .png files are the phantom's, on the network grid.
    s = samples["case1"]
    want = make_item(
        {"ap": (s.ap, np.stack([s.ap_masks[m] for m in AP_MASKS]), (1.0, 1.0)),
         "lateral": (s.lat, np.stack([s.lat_masks[m] for m in LAT_MASKS]), (1.0, 1.0))},
        "Damaged", 64, 32,
    )  # fmt: skip
    for k, name in enumerate(LAT_MASKS):
        assert dice(ds.lateral_masks[1, k], want["lateral_masks"][k]) > 0.95, name
    # JPEG is lossy; the normalised inputs still agree closely.
    assert np.abs(ds.lateral[1].astype(np.float32) - want["lateral"]).mean() < 0.03


def test_case_without_masks_still_trains_the_classifier(tmp_path):
    _fixture(tmp_path, [("Normal", 4)])
    for png in (tmp_path / "Normal" / "case0" / "LAT" / "masks").glob("*.png"):
        png.unlink()
    views = read_case(tmp_path / "Normal" / "case0", "Normal")
    assert views["ap"][1] is not None and views["lateral"][1] is None
    ds = folder_set(tmp_path, 32, 32)
    assert not ds.has_masks[0] and ds.y.tolist() == [0]


def test_wrong_layout_says_what_it_expects(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(FileNotFoundError, match="Normal/<case>"):
        folder_set(tmp_path, 32, 32)
    (tmp_path / "Damaged" / "c0" / "AP").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="LAT"):
        folder_set(tmp_path, 32, 32)


def test_training_command_runs_on_the_folder_layout(tmp_path):
    """``train --data PATH`` goes through the same code as phantoms, to exported ONNX files."""
    pytest.importorskip("torch")
    from models.spine_xray.train import main

    data = tmp_path / "data"
    _fixture(data, [("Normal", 5), ("Damaged", 6), ("Normal", 7), ("Damaged", 8), ("Normal", 9)])
    out = tmp_path / "run"
    assert main(["--data", str(data), "--out", str(out), "--seg-epochs", "1",
                 "--cls-epochs", "1"]) == 0  # fmt: skip
    import json

    manifest = json.loads((out / "export" / "manifest.json").read_text())
    from models.spine_xray.export import FILES, GRADCAM_HEAD

    assert set(manifest["files"]) == {*FILES.values(), GRADCAM_HEAD}  # the Grad-CAM head too
    assert manifest["training_command"].startswith("python -m models.spine_xray.train --data")
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["unet_lateral"]["val_dice"]) == set(LAT_MASKS)


def test_letterbox_round_trip_keeps_a_mask_in_place():
    rng = np.random.default_rng(0)
    mask = np.zeros((300, 220), np.float32)
    mask[40:120, 60:150] = 1
    box = Letterbox.fit(300, 220, 96, (0.5, 0.5))
    assert box.used_rows == 96 and box.used_cols == round(96 * 220 / 300)
    back = box.to_image(box.to_input(mask)) >= 0.5
    assert dice(back, mask > 0) > 0.95
    # Normalisation makes 12-bit and 8-bit versions of one image the same input.
    img = rng.random((300, 220)).astype(np.float32)
    a, _ = network_input(img * 4095, 64)
    b, _ = network_input(np.round(img * 255), 64)
    assert np.abs(a - b).max() < 0.02


def test_components_and_levels_from_a_wedge_phantom():
    from scipy import ndimage

    rng = np.random.default_rng(1)
    m = ndimage.binary_opening(rng.random((90, 70)) > 0.5)
    ours, (ref, n) = label_components(m), ndimage.label(m)
    assert ours.max() == n and len(set(zip(ours[m], ref[m], strict=True))) == n
    s = generate(5, damaged=True, damage_level="L1", damage_type="wedge", **SMALL)
    box = Letterbox.fit(*s.lat.shape, 96, s.pixel_spacing_mm)
    vb = s.lat_masks["LAT Vertebra"]
    comp = vertebra_components(box.to_input(vb.astype(np.float32)) >= 0.5, vb, box)
    assert comp.max() == 7  # T11..L5, numbered from the top
    rows = [np.nonzero(comp == k)[0].mean() for k in range(1, 8)]
    assert rows == sorted(rows)
    stack = np.stack([s.lat_masks[n] for n in LAT_MASKS])
    meas = vertebra_measures(comp, stack, LAT_MASKS, "lateral", s.pixel_spacing_mm)
    ratios = [m["wedge_ratio"] for m in meas]
    assert int(np.argmin(ratios)) == 2 and ratios[2] < 0.8  # L1, the third from the top


def test_auc_is_the_rank_statistic():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([1, 0, 1], [0.9, 0.2, 0.7]) == 1.0


def test_windowed_mask_upsampling_equals_the_whole_image_resample():
    from models.spine_xray.preprocess import _axis_matrix, masks_to_image, resize

    rng = np.random.default_rng(2)
    box = Letterbox.fit(640, 512, 96, (0.45, 0.45))
    probs = np.zeros((3, 96, 96), np.float32)
    probs[0, 10:80, 30:50] = rng.random((70, 20))
    probs[1, 40:44, 20:70] = 0.9  # a thin bar
    full = box.to_image(probs) >= 0.5
    assert np.array_equal(masks_to_image(probs, box), full)
    assert not masks_to_image(probs, box)[2].any()
    # The gather resample and the matrix resample are one operation.
    img = rng.random((300, 200)).astype(np.float32)
    for shape in ((90, 60), (400, 250), (50, 300)):
        m = _axis_matrix(300, shape[0]) @ img @ _axis_matrix(200, shape[1]).T
        assert np.abs(resize(img, shape) - m).max() < 1e-5
