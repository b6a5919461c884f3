"""Mild wedge phantoms for the spine classifier (``train.py --n-mild``), the classifier-only run
(``--unets-onnx``) and the held-out mild slice's summary (``evaluate.mild_slice``)."""

from __future__ import annotations

import numpy as np
import pytest

from models.spine_xray import train
from models.spine_xray.evaluate import mild_slice
from models.spine_xray.networks import CONFIGS
from models.spine_xray.phantom import MILD_WEDGE_RATIO, generate


def test_mild_options_draw_mild_wedges_and_defaults_are_untouched():
    s = generate(80_000, rows=64, cols=64, pixel_mm=4.0, **train.MILD_OPTIONS)
    v = next(v for v in s.vertebrae if v.name == s.damaged_level)
    assert s.damaged and s.damage_type == "wedge"
    # anterior = h * U(lo, hi), posterior = h * U(0.92, 1): the ratio stays above lo
    assert (
        MILD_WEDGE_RATIO[0] <= v.anterior_height / v.posterior_height <= MILD_WEDGE_RATIO[1] / 0.92
    )
    # the default draw is the one it always was: its wedges stop at 0.75 of the body's height
    assert MILD_WEDGE_RATIO[0] >= 0.75


def test_load_data_adds_mild_wedges_and_as_many_normals(tmp_path):
    recipe = train.Recipe(**{**train.DEMO_RECIPE.__dict__, "phantoms": 2, "val_phantoms": 1})
    tr, va = train.load_data("phantom", CONFIGS["demo"], recipe, 0, tmp_path, 1, n_mild=10)
    assert len(tr) == 2 + 10 + 10 and len(va) == 1 + 1 + 1
    assert tr.y[2:].tolist() == [1] * 10 + [0] * 10 and va.y[1:].tolist() == [1, 0]
    # export.py reads the one file *_val.npz: the extra validation files must not match it
    assert [p.name for p in tmp_path.glob("phantoms_*_val.npz")] == ["phantoms_192_128_0_1_val.npz"]


def test_unets_onnx_names_the_missing_file_before_rendering(tmp_path):
    with pytest.raises(SystemExit, match="spine_unet_ap.onnx: no such file"):
        train.main(["--data", "phantom", "--out", str(tmp_path / "run"), "--unets-onnx",
                    str(tmp_path)])  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_mild_slice_summary():
    cases = [{"p_damaged": p, "anterior_posterior": r, "damaged": True}
             for p, r in ((0.9, 0.8), (0.2, 0.9), (0.7, 0.85))]  # fmt: skip
    report = {"cases": cases, "seeds": [1, 3],
              "suspected_level_is_the_damaged_one": {"fraction": 1.0, "of_true_positives": 2}}  # fmt: skip
    out = mild_slice(report, normals=[0.1, 0.3])
    assert out["called_damaged"] == pytest.approx(2 / 3, abs=1e-4)
    assert out["anterior_posterior_range"] == [0.8, 0.9]
    # positives 0.9, 0.2, 0.7 against negatives 0.1, 0.3: 5 of 6 pairs ranked right
    assert out["auc_vs_held_out_normals"] == pytest.approx(5 / 6, abs=1e-4)
    assert np.isclose(out["p_damaged_quartiles"][1], 0.7)
