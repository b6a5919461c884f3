"""Networks: the paper configuration builds with the right shapes and size; ONNX matches torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.cervical_fracture import pipeline as P
from models.cervical_fracture.export import (
    _Stage1Probs,
    _Stage2Probs,
    export_stage1,
    export_stage2,
    max_difference,
)
from models.cervical_fracture.flops import count_flops
from models.cervical_fracture.networks import (
    DEMO,
    PAPER,
    build_stage1,
    build_stage2,
    count_parameters,
    head_parameter_count,
)

ONNX_TOLERANCE = 1e-4


def test_paper_stage2_shapes_and_parameter_count():
    torch.manual_seed(0)
    cfg = PAPER.stage2
    assert (cfg.seq_len, cfg.in_channels, cfg.lstm_hidden, cfg.feature_dim) == (8, 3, 768, 768)
    net = build_stage2(cfg).eval()
    assert net.lstm.bidirectional and net.lstm.hidden_size == 768
    # everything after the encoder, counted from the layer definitions by hand:
    # projection 2048*768+768, BiLSTM 2 * 4*(768*768 + 768*768 + 2*768),
    # attention 1536*1536+1536 + 1536, head 1536+1
    by_hand = (2048 * 768 + 768) + 2 * 4 * (768 * 768 * 2 + 2 * 768)
    by_hand += 1536 * 1536 + 1536 + 1536 + 1536 + 1
    assert head_parameter_count(cfg, 2048) == by_hand == 13_387_009
    assert count_parameters(net) - count_parameters(net.encoder) == by_hand
    # the encoder is MONAI's 2-D ResNet-50 without its classifier: 23.5 M (ConvNeXt-Tiny: 28 M)
    assert 23_000_000 < count_parameters(net.encoder) < 24_000_000
    x = torch.rand(2, 8, 3, 64, 64)
    with torch.no_grad():
        feats = net.encoder(x.reshape(16, 3, 64, 64))
        seq, _ = net.lstm(net.project(feats).reshape(2, 8, -1))
        out = net(x)
    assert feats.shape == (16, 2048)
    assert seq.shape == (2, 8, 1536)
    assert out.shape == (2,)


def test_paper_stage1_segments_nine_classes():
    net = build_stage1(PAPER.stage1).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, 96, 96))
    assert y.shape == (2, P.N_CLASSES, 96, 96)


def test_demo_networks_are_small_and_shaped_like_the_pipeline():
    s1, s2 = build_stage1(DEMO.stage1).eval(), build_stage2(DEMO.stage2).eval()
    assert count_parameters(s1) < 1_000_000 and count_parameters(s2) < 1_000_000
    with torch.no_grad():
        assert s1(torch.rand(3, 3, P.WORK_SIZE, P.WORK_SIZE)).shape == (3, 9, 96, 96)
        assert s2(torch.rand(3, P.SEQ_LEN, 3, P.CROP_SIZE, P.CROP_SIZE)).shape == (3,)


def test_flop_counter_matches_a_hand_count():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    # 8 output maps of 10x10, each pixel 3*3*3 MACs -> 2 FLOPs per MAC
    assert count_flops(conv, torch.rand(1, 3, 10, 10)) == 2 * 8 * 100 * 27
    lstm = torch.nn.LSTM(4, 5, batch_first=True, bidirectional=True)
    assert count_flops(lstm, torch.rand(2, 3, 4)) == 2 * (2 * 3) * 2 * 4 * 5 * (4 + 5)


@pytest.mark.parametrize("stage", [1, 2])
def test_onnx_matches_torch(tmp_path, stage):
    torch.manual_seed(stage)
    rng = np.random.default_rng(stage)
    if stage == 1:
        net = build_stage1(DEMO.stage1).eval()
        path = tmp_path / "stage1.onnx"
        export_stage1(net, path)
        module = _Stage1Probs(net).eval()
        x = rng.random((5, 3, P.WORK_SIZE, P.WORK_SIZE), dtype=np.float32)
    else:
        net = build_stage2(DEMO.stage2).eval()
        path = tmp_path / "stage2.onnx"
        export_stage2(net, path)
        module = _Stage2Probs(net).eval()
        x = rng.random((3, P.SEQ_LEN, 3, P.CROP_SIZE, P.CROP_SIZE), dtype=np.float32)
    assert path.stat().st_size < 15_000_000
    assert max_difference(path, module, x) < ONNX_TOLERANCE
