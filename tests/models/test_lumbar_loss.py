"""CCF-Net coding, decoding and loss on hand-made tensors."""

from __future__ import annotations

import numpy as np
import pytest

from models.lumbar_ccfnet.coding import TAU, InputFrame, cell_centres, decode, encode

torch = pytest.importorskip("torch")

from models.lumbar_ccfnet.loss import ccf_loss  # noqa: E402


def test_encode_then_decode_recovers_points_and_labels():
    pts = np.array([[37.2, 100.9], [200.0, 18.5], [5.0, 250.0]])
    lab = np.array([1.0, 0.0, 1.0])
    t = encode(pts, lab, map_size=16, sigma=8.0)
    got, prob, peak = decode(t["heatmap"], t["offset_x"], t["offset_y"], t["category"])
    np.testing.assert_allclose(got, pts, atol=1e-9)
    np.testing.assert_array_equal(prob, lab)
    np.testing.assert_allclose(peak, 1.0)


def test_decode_reads_argmax_plus_offset_times_stride():
    heat = np.zeros((1, 4, 4), np.float32)
    heat[0, 2, 1] = 0.9  # row 2, column 1
    heat[0, 0, 3] = 0.5
    offx = np.full_like(heat, 0.25)
    offy = np.full_like(heat, -0.5)
    cat = np.zeros_like(heat)
    cat[0, 2, 1] = 0.8
    (pt,), (p,), (h,) = decode(heat, offx, offy, cat, stride=16)
    assert pt[0] == pytest.approx(1 * 16 + 7.5 + 16 * 0.25)
    assert pt[1] == pytest.approx(2 * 16 + 7.5 - 16 * 0.5)
    assert p == pytest.approx(0.8) and h == pytest.approx(0.9)
    np.testing.assert_allclose(cell_centres(2), [7.5, 23.5])


def _batch(t: dict) -> dict:
    return {k: torch.from_numpy(np.asarray(v))[None] for k, v in t.items()}


def test_loss_is_zero_for_the_truth_and_counts_offsets_only_where_h_is_high():
    pts = np.array([[60.0, 70.0], [np.nan, np.nan]])  # second object not annotated
    t = encode(pts, np.array([1.0, -1.0]), map_size=8, sigma=8.0)
    tgt = _batch(t)
    logits = (tgt["category"] * 2 - 1) * 40.0  # near-certain correct category
    perfect = (tgt["heatmap"], tgt["offset_x"], tgt["offset_y"], logits)
    loss, parts = ccf_loss(perfect, tgt)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    # An offset error outside Omega (H < tau) costs nothing; inside it does.
    outside = tgt["heatmap"] < TAU
    bad_out = tgt["offset_x"] + outside.float() * 3.0
    loss_out, _ = ccf_loss((perfect[0], bad_out, perfect[2], logits), tgt)
    assert float(loss_out) == pytest.approx(0.0, abs=1e-6)
    bad_in = tgt["offset_x"] + (~outside).float() * 3.0
    loss_in, parts_in = ccf_loss((perfect[0], bad_in, perfect[2], logits), tgt)
    assert parts_in["offset_x"] == pytest.approx(2.5)  # smooth-L1 of 3 is 3 - 0.5
    assert float(loss_in) == pytest.approx(2.0 * 2.5)  # w_f = 2
    # The unannotated object's maps are ignored whatever the network says there.
    junk = perfect[0].clone()
    junk[0, 1] = 5.0
    loss_junk, _ = ccf_loss((junk, *perfect[1:]), tgt)
    assert float(loss_junk) == pytest.approx(0.0, abs=1e-6)


def test_loss_weights_are_1_2_and_a_thousandth():
    t = encode(np.array([[60.0, 70.0]]), np.array([1.0]), map_size=8, sigma=8.0)
    tgt = _batch(t)
    zeros = torch.zeros_like(tgt["heatmap"])
    loss, p = ccf_loss((zeros, zeros, zeros, zeros), tgt)
    want = p["heat"] + 2.0 * (p["offset_x"] + p["offset_y"]) + 1e-3 * p["category"]
    assert float(loss) == pytest.approx(want, rel=1e-6)
    assert p["category"] == pytest.approx(np.log(2), rel=1e-5)  # BCE of logit 0


def test_input_frame_round_trip_and_square_mm_pixels():
    frame = InputFrame.fit((300, 200), (0.8, 1.1), 256)
    pts = np.array([[10.0, 20.0], [199.0, 299.0]])
    np.testing.assert_allclose(frame.to_slice(frame.to_input(pts)), pts)
    assert frame.mm_per_px == pytest.approx(max(300 * 0.8, 200 * 1.1) / 256)
    img = np.zeros((300, 200), np.float32)
    img[150, 100] = 1.0
    out = frame.resample(img)
    peak = np.unravel_index(out.argmax(), out.shape)
    back = frame.to_slice(np.array([peak[1], peak[0]], float))
    assert np.abs(back - [100, 150]).max() < 1.5
