"""Training and the adapter feed the network the same inputs for the same radiograph.

The adapter's side is observed where it hands the batch to ONNX Runtime, so the test fails if
``adapter.py`` grows its own preprocessing again, not only if ``preprocess.py`` changes.
"""

from __future__ import annotations

import numpy as np
import pytest

import models.femur_ao.adapter as femur_adapter
from app.analysis.runner import run_on_series
from app.study import StudyLoadError, load
from app.study.dicom_writer import write_radiograph
from models.femur_ao.data import phantom_set
from models.femur_ao.phantom import generate, write_study
from models.femur_ao.preprocess import bone_bright, read_radiograph, series_pixels

INPUT = 192  # the shipped weights' input size (weights/manifest.json config.input_size)


@pytest.fixture(scope="module")
def adapter():
    return femur_adapter.FemurAOAdapter()


def _adapter_inputs(adapter, series, monkeypatch) -> np.ndarray:
    """The batch the adapter gives the network, (sides, S, S)."""
    seen: list[np.ndarray] = []
    real = femur_adapter.run_session

    def spy(sess, inputs):
        seen.append(np.array(inputs["image"], copy=True))
        return real(sess, inputs)

    monkeypatch.setattr(femur_adapter, "run_session", spy)
    run_on_series(adapter, series)
    assert len(seen) == 1
    return seen[0][:, 0]


@pytest.mark.parametrize("seed", [3, 8])
def test_training_inputs_equal_the_adapters_for_the_written_dicom(
    adapter, tmp_path, monkeypatch, seed
):
    # The training set renders at the default phantom shape: the same call as phantom_set's.
    shape = (410, 500)
    sample = generate(seed, shape=shape)
    train = phantom_set([seed], INPUT, shape=shape)
    series = load(write_study(sample, tmp_path / "s")).all_series()[0]
    seen = _adapter_inputs(adapter, series, monkeypatch)
    assert seen.shape == (2, INPUT, INPUT) and list(train.sides) == ["right", "left"]
    # The training set stores float16; the adapter's float32 inputs round to exactly those.
    assert np.array_equal(seen.astype(np.float16), train.x)
    assert float(np.abs(seen).max()) > 1.0  # centred inputs, not a blank crop


def test_monochrome1_and_rgb_read_as_bone_bright(tmp_path):
    sample = generate(5, shape=(307, 375))
    mono2, _ = read_radiograph(write_study(sample, tmp_path / "m2"))
    inverted = (4095 - sample.image).astype(np.uint16)
    path = write_radiograph(inverted, tmp_path / "m1.dcm", photometric="MONOCHROME1")
    mono1, _ = read_radiograph(path)
    # Inverting back differs from the original by a constant only: equalisation ignores it.
    offset = mono1 - mono2
    assert np.allclose(offset, offset.flat[0])
    rgb = np.stack([sample.image // 16] * 3 + [np.zeros_like(sample.image)], -1)
    assert np.array_equal(bone_bright(rgb), (sample.image // 16).astype(np.float32))
    with pytest.raises(ValueError, match="2-D radiograph"):
        bone_bright(np.zeros((2, 3, 4, 5)))


def test_series_pixels_takes_laterality_from_either_meta_key(tmp_path):
    series = load(write_study(generate(6, shape=(307, 375)), tmp_path / "s")).all_series()[0]
    series.meta.pop("laterality", None)
    series.meta["image_laterality"] = "L"
    assert series_pixels(series)[1] == "L"


def test_unreadable_file_is_named_by_the_loader(tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"not a dicom file")
    with pytest.raises(StudyLoadError, match="bad.dcm: not a DICOM file"):
        read_radiograph(bad)
