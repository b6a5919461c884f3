"""app.engine.shap_maps against values known by hand.

For a linear model f(x) = sum(w * x), Owen values equal Shapley values, and with a masker that
replaces hidden pixels by a background b they are w * (x - b) exactly (once the explainer has
evaluations enough to reach single pixels). The blur masker's background is the box-blurred
image, so this checks shap's partition, our masker and the channel handling at once.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from app.engine import shap_maps
from app.engine.adapter import AnalysisCancelled


@pytest.fixture(scope="module", autouse=True)
def warm():
    shap_maps.warm_up()
    assert shap_maps.is_warm() and shap_maps.warm_up() == 0.0  # once per process


def _linear(weights):
    return lambda x: (np.asarray(x) * weights).reshape(len(x), -1).sum(1)


def test_box_blur_matches_a_hand_computed_reflect_101_box():
    x = np.arange(30, dtype=np.float32).reshape(5, 6)
    out = shap_maps.box_blur(x, (3, 3))
    pad = np.pad(x, 1, mode="reflect")  # numpy's "reflect" does not repeat the edge: 101
    by_hand = np.array([[pad[j : j + 3, i : i + 3].mean() for i in range(6)] for j in range(5)])
    assert np.allclose(out, by_hand)
    # kx runs along columns, ky along rows (OpenCV's order); an even kernel is anchored at k//2
    wide = shap_maps.box_blur(x, (4, 1))
    pad = np.pad(x, ((0, 0), (2, 2)), mode="reflect")
    assert np.allclose(wide, [[pad[j, i : i + 4].mean() for i in range(6)] for j in range(5)])


def test_linear_model_gets_exact_values_in_2d():
    rng = np.random.default_rng(1)
    image = rng.random((8, 8), dtype=np.float32)
    w = rng.normal(size=(8, 8)).astype(np.float32)
    values, info = shap_maps.shap_map(_linear(w), image, max_evals=20000, masker="blur(3,3)")
    expected = w * (image - shap_maps.box_blur(image, (3, 3)))
    assert values.shape == (8, 8) and values.dtype == np.float32
    assert np.abs(values - expected).max() < 1e-5
    assert info["masker"] == "blur(3,3)" and info["evals"] <= 20000
    assert info["output_value"] == pytest.approx(float(_linear(w)(image[None])[0]), abs=1e-4)


def test_slices_as_channels_split_like_the_other_axes():
    rng = np.random.default_rng(2)
    image = rng.random((4, 4, 4), dtype=np.float32)
    w = rng.normal(size=(4, 4, 4)).astype(np.float32)
    values, _ = shap_maps.shap_map(
        _linear(w), image, max_evals=40000, masker="blur(3,3)",
        keep_channels=True, split_channels=True,
    )  # fmt: skip
    expected = w * (image - shap_maps.box_blur(image, (3, 3)))
    assert values.shape == (4, 4, 4) and np.abs(values - expected).max() < 1e-5
    # a tree in shap's format: every pixel once, sizes adding up, the root covering all
    tree = shap_maps.partition_tree((4, 4, 4), True)
    assert tree[-1, 3] == 64 and sorted(set(tree[:, :2].ravel()) - set(range(64, 127))) == list(
        range(64)
    )
    # with shap's own tree the channels of a pixel stay together until single pixels: with
    # evaluations too few to reach them, every channel of a pixel gets the same credit
    summed, _ = shap_maps.shap_map(_linear(w), image, max_evals=40, keep_channels=True)
    assert np.allclose(summed, summed[..., :1], atol=1e-7)


def test_only_the_asked_output_and_batched_calls():
    rng = np.random.default_rng(3)
    image = rng.random((16, 16), dtype=np.float32)
    w = rng.normal(size=(16, 16)).astype(np.float32)
    seen: list[int] = []

    def two_outputs(x):
        seen.append(len(x))
        s = _linear(w)(x)
        return np.stack([np.zeros_like(s), s], 1)

    values, info = shap_maps.shap_map(two_outputs, image, 1, max_evals=300, batch_size=100)
    assert values.std() > 0  # column 1, not the constant column 0
    assert max(seen) <= 100 and info["model_calls"] == len(seen) and info["evals"] == sum(seen)
    assert sum(seen) <= 300 and seen[:2] == [1, 1]  # shap's base (all masked) and full image
    zero, _ = shap_maps.shap_map(two_outputs, image, 0, max_evals=100)
    assert not zero.any()


def test_cancel_stops_between_batches_and_progress_is_reported():
    image = np.random.default_rng(4).random((32, 32), dtype=np.float32)
    calls: list[float] = []
    progress: list[float] = []

    def cancel() -> bool:
        return len(calls) >= 3

    def predict(x):
        calls.append(len(x))
        return x.reshape(len(x), -1).mean(1)

    with pytest.raises(AnalysisCancelled):
        shap_maps.shap_map(predict, image, max_evals=2000, batch_size=8, cancel=cancel,
                           progress=lambda s, f: progress.append(f))  # fmt: skip
    assert len(calls) == 3  # the fourth batch was never run
    assert progress == sorted(progress) and 0 < progress[-1] < 1


def test_reproducible_and_leaves_the_global_random_state_alone():
    image = np.random.default_rng(5).random((32, 32), dtype=np.float32)
    w = np.random.default_rng(6).normal(size=(32, 32)).astype(np.float32)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a, _ = shap_maps.shap_map(_linear(w), image, max_evals=200, batch_size=10)
    assert (np.random.get_state()[1] == before).all()
    b, _ = shap_maps.shap_map(_linear(w), image, max_evals=200, batch_size=10)
    assert np.array_equal(a, b)


def test_unknown_masker_is_refused():
    with pytest.raises(ValueError, match="unknown masker"):
        shap_maps.make_masker("gaussian(3)", (8, 8, 1))


def test_importing_the_module_does_not_import_shap():
    import subprocess

    code = "import sys, app.engine.shap_maps; print('shap' in sys.modules, 'numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_our_tree_is_shaps_tree_without_its_gil_holding_builder():
    import shap

    def pairs(tree):
        """Every node as (left leaves, right leaves): the structure, whatever the numbering."""
        m, members, out = len(tree) + 1, {}, set()
        for n, (left, right, _, _) in enumerate(tree):
            a = members.pop(int(left)) if left >= m else [int(left)]
            b = members.pop(int(right)) if right >= m else [int(right)]
            members[m + n] = a + b
            out.add((frozenset(a), frozenset(b)))
        return out

    for shape in ((7, 9, 2), (16, 16, 1), (6, 5, 3)):
        theirs = shap.maskers.Image(0.0, shape).clustering
        assert pairs(shap_maps.partition_tree(shape)) == pairs(theirs), shape
    # and so the same values: a non-linear model explained with either tree
    rng = np.random.default_rng(7)
    image = rng.random((12, 10, 1), dtype=np.float32)
    w = rng.normal(size=image.shape).astype(np.float32)

    def model(x):
        return np.tanh((np.asarray(x) * w).reshape(len(x), -1).sum(1)) ** 2

    def explain_with(tree):
        masker = shap_maps.make_masker("blur(3,3)", image.shape)
        masker.clustering = tree
        np.random.seed(0)
        e = shap.explainers.Partition(model, masker)(image[None], max_evals=300, silent=True)
        return np.asarray(e.values[0])

    ours = explain_with(shap_maps.partition_tree(image.shape))
    theirs = explain_with(shap.maskers.Image(0.0, image.shape).clustering)
    assert np.allclose(ours, theirs, atol=1e-12) and np.abs(ours).max() > 0
