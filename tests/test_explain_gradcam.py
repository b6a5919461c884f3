"""Grad-CAM machinery (app/engine/gradcam.py) against answers known exactly, and the ONNX surgery
that feeds it (models/common/feature_outputs.py) on a small hand-built graph.

- a head linear after global average pooling: alpha_k = w_k / positions exactly, and the finite
  differences find it;
- a non-linear head (ReLU between two dense layers, then a max over positions) whose gradient is
  written out by hand;
- the normalisation keeps the strongest evidence at 1 (MONAI's default CAM normaliser would put
  it at 0), and the upsampling puts a feature cell over the input pixels it covers;
- the surgery adds the feature map as an output without changing the existing output, and the
  head graph cut from the model gives the model's own pre-activation score.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.engine.adapter import AnalysisCancelled
from app.engine.gradcam import (
    channel_weights,
    gradcam,
    linear_head_weights,
    normalise,
    upsample,
    weighted_map,
)

RNG = np.random.default_rng(0)


def test_linear_head_finite_differences_match_the_exact_weights():
    k, h, w = 6, 4, 5
    a = RNG.random((k, h, w), dtype=np.float32)
    wk = RNG.normal(size=k).astype(np.float32)

    def head(batch: np.ndarray) -> np.ndarray:  # GAP then a linear score
        return batch.mean(axis=(2, 3)) @ wk + 0.3

    exact = linear_head_weights(wk, h * w)
    got = channel_weights(head, a)
    np.testing.assert_allclose(got, exact, rtol=1e-3, atol=1e-6)
    # the map is ReLU(sum_k alpha_k A_k) with the exact weights
    cam, weights = gradcam(head, a)
    want = np.maximum(np.tensordot(exact, a, axes=(0, 0)), 0)
    np.testing.assert_allclose(cam, want, rtol=1e-3, atol=1e-6)
    assert weights.shape == (k,)


def test_nonlinear_head_matches_its_hand_written_gradient():
    """S = v . relu(W x + b), x_k = max over positions of A_k: dS/dA_k(x) is nonzero only at
    channel k's maximum, where it is (W^T (v * [Wx + b > 0]))_k."""
    k, h, w, d = 5, 3, 3, 7
    a = RNG.random((k, h, w), dtype=np.float32)
    wm = RNG.normal(size=(d, k)).astype(np.float32)
    b = RNG.normal(size=d).astype(np.float32) * 0.1
    v = RNG.normal(size=d).astype(np.float32)

    def head(batch: np.ndarray) -> np.ndarray:
        x = batch.reshape(len(batch), k, -1).max(axis=2)
        return np.maximum(x @ wm.T + b, 0) @ v

    x = a.reshape(k, -1).max(axis=1)
    dx = wm.T @ (v * ((wm @ x + b) > 0))
    exact = dx / (h * w)  # the gradient sits on one position per channel: mean = dx / positions
    got = channel_weights(head, a, step=1e-3, batch_size=4)  # batches of 2 channels (+/-)
    np.testing.assert_allclose(got, exact, rtol=1e-2, atol=1e-5)


def test_a_wrong_sign_or_scale_would_be_caught():
    """The checks above are not vacuous: a head with the opposite sign gives other weights."""
    a = RNG.random((4, 2, 2), dtype=np.float32)
    wk = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
    up = channel_weights(lambda z: z.mean(axis=(2, 3)) @ wk, a)
    down = channel_weights(lambda z: -(z.mean(axis=(2, 3)) @ wk), a)
    np.testing.assert_allclose(up, -down, rtol=1e-4)
    assert not np.allclose(up, down)


def test_normalisation_keeps_the_strongest_evidence_at_one():
    cam = weighted_map(np.array([[[0.0, 1.0], [3.0, 0.5]]], np.float32), np.array([2.0]))
    n = normalise(cam)
    assert n.max() == 1.0 and n[1, 0] == 1.0  # the hottest cell stays hottest
    assert n[0, 0] == 0.0  # no evidence stays 0 (MONAI's default would make it 1)
    assert normalise(np.zeros((2, 2), np.float32)).max() == 0.0  # nothing to show: nothing shown
    # a negative weighted sum is cut by the ReLU, not shifted up
    assert weighted_map(np.ones((1, 2, 2), np.float32), np.array([-1.0])).max() == 0.0
    # a common peak (two views on one scale) leaves the weaker map below 1
    assert normalise(np.full((2, 2), 0.5, np.float32), peak=2.0).max() == pytest.approx(0.25)


def test_upsampling_puts_each_cell_over_the_pixels_it_covers():
    cam = np.zeros((4, 4), np.float32)
    cam[1, 2] = 1.0
    big = upsample(cam, (32, 32))
    j, i = np.unravel_index(np.argmax(big), big.shape)
    assert 8 <= j < 16 and 16 <= i < 24  # cell (1, 2) covers rows 8-15, columns 16-23
    seq = upsample(np.arange(2 * 2 * 2, dtype=np.float32).reshape(2, 2, 2), (2, 8, 8))
    assert seq.shape == (2, 8, 8) and seq[0].max() < seq[1].min()  # the first axis kept


def test_cancel_is_honoured():
    with pytest.raises(AnalysisCancelled):
        channel_weights(lambda z: z.sum(axis=(1, 2, 3)), np.ones((3, 2, 2)), cancel=lambda: True)


# ---- the ONNX surgery ---------------------------------------------------------------------
def _tiny_model(k: int = 4):
    """x (N, 1, 8, 8) -> conv 3x3 (k channels) -> relu = A -> global average pool -> dense -> p =
    sigmoid(score): a classifier shaped like the shipped ones, small enough to reason about."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    conv_w = rng.normal(size=(k, 1, 3, 3)).astype(np.float32)
    dense_w = rng.normal(size=(1, k)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "conv_w"], ["conv"], pads=[1, 1, 1, 1], name="/net/conv"),
        helper.make_node("Relu", ["conv"], ["A"], name="/net/enc/relu"),
        helper.make_node("GlobalAveragePool", ["A"], ["gap"], name="/net/pool"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="/net/flat"),
        helper.make_node("Gemm", ["flat", "dense_w"], ["score"], transB=1, name="/net/dense"),
        helper.make_node("Sigmoid", ["score"], ["p"], name="/net/sigmoid"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 8, 8])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 1])],
        [numpy_helper.from_array(conv_w, "conv_w"), numpy_helper.from_array(dense_w, "dense_w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model, dense_w[0]


def test_surgery_keeps_the_output_and_the_head_reproduces_the_score(tmp_path):
    pytest.importorskip("onnx")
    import onnx
    import onnxruntime as ort

    from models.common.feature_outputs import (
        FeatureTap,
        add_gradcam,
        input_of_last,
        last_output_under,
    )

    model, dense_w = _tiny_model()
    path, head_path = tmp_path / "tiny.onnx", tmp_path / "head.onnx"
    onnx.save(model, str(path))
    x = np.random.default_rng(2).random((3, 1, 8, 8), dtype=np.float32)
    before = ort.InferenceSession(str(path)).run(None, {"x": x})
    tap = FeatureTap("features", last_output_under(model, "/net/enc/"))
    assert tap.tensor == "A" and input_of_last(model, "Sigmoid") == "score"
    changed, _ = add_gradcam(path, [tap], "score", head_path)
    assert changed
    sess = ort.InferenceSession(str(path))
    assert [o.name for o in sess.get_outputs()] == ["p", "features"]
    after = sess.run(None, {"x": x})
    assert np.array_equal(after[0], before[0])  # the shipped output, bit for bit
    head = ort.InferenceSession(str(head_path))
    assert [i.name for i in head.get_inputs()] == ["features"]
    (score,) = head.run(None, {"features": after[1]})
    logit = np.log(before[0] / (1 - before[0]))
    np.testing.assert_allclose(score, logit, rtol=1e-4, atol=1e-5)
    # once more changes nothing (a re-export keeps it)
    digest = path.read_bytes()
    assert add_gradcam(path, [tap], "score", head_path)[0] is False
    assert path.read_bytes() == digest
    # Grad-CAM through the ONNX head equals the exact answer of a linear head after GAP
    feats = after[1][0]

    def run_head(batch: np.ndarray) -> np.ndarray:
        return head.run(None, {"features": batch.astype(np.float32)})[0][:, 0]

    alpha = channel_weights(run_head, feats)
    np.testing.assert_allclose(alpha, linear_head_weights(dense_w, 64), rtol=2e-3, atol=1e-6)


def test_weights_exported_without_the_outputs_say_how_to_add_them(tmp_path):
    from app.engine.adapter import ExplainUnavailable
    from app.engine.gradcam import gradcam_entry
    from app.engine.runtime import Manifest

    old = Manifest(tmp_path, {"files": {"net.onnx": {}}})
    with pytest.raises(ExplainUnavailable, match="--gradcam-only --out") as err:
        gradcam_entry(old, "net.onnx", "models.some_task.export")
    assert "net.onnx was exported without Grad-CAM" in str(err.value)
    new = Manifest(tmp_path, {"gradcam": {"net.onnx": {"head": "h.onnx", "features": "f"}}})
    assert gradcam_entry(new, "net.onnx", "x")["head"] == "h.onnx"
