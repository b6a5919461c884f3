"""MSRT networks: EfficientNet-B3 in the paper configuration, the SRT dimensions, parameter count
derived independently of MONAI, forward shapes and the ONNX export."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.calcaneus_msrt.networks import (  # noqa: E402
    DEMO,
    N_LABELS,
    PAPER,
    UNET_DEMO,
    ExportWrapper,
    build,
    build_unet,
    count_parameters,
    feature_channels,
    stage_channels,
)

# EfficientNet-B3 (width 1.2, depth 1.4) from the B0 stage table: (kernel, repeats, in, out,
# expansion) after rounding channels to multiples of 8 and repeats up (Tan & Le 2019, Table 1).
B3_STAGES = [
    (3, 2, 40, 24, 1),
    (3, 3, 24, 32, 6),
    (5, 3, 32, 48, 6),
    (3, 5, 48, 96, 6),
    (5, 5, 96, 136, 6),
    (5, 6, 136, 232, 6),
    (3, 2, 232, 384, 6),
]
STEM, HEAD = 40, 1536


def mbconv(cin: int, cout: int, e: int, k: int) -> int:
    """Parameters of one MBConv block (batch norms have 2 per channel, SE convs have bias)."""
    ce = cin * e
    n = cin * ce + 2 * ce if e != 1 else 0
    n += ce * k * k + 2 * ce  # depthwise
    s = max(1, int(cin * 0.25))  # squeeze width from the block's input channels
    n += ce * s + s + s * ce + ce
    return n + ce * cout + 2 * cout


def b3_trunk(in_channels: int) -> int:
    n = in_channels * STEM * 9 + 2 * STEM
    for k, r, cin, cout, e in B3_STAGES:
        n += mbconv(cin, cout, e, k) + (r - 1) * mbconv(cout, cout, e, k)
    return n + B3_STAGES[-1][3] * HEAD + 2 * HEAD


def srt(cin: int, d: int, tokens: int, layers: int, mlp: int) -> int:
    layer = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (d * mlp + mlp + mlp * d + d)
    return (cin * 6 + 6) + (6 * d + d) + d + (tokens + 1) * d + layers * layer + 2 * d + d * 6 + 6


def test_b3_trunk_formula_matches_the_published_count():
    # torchvision's efficientnet_b3 (3 input channels, 1000 classes) has 12,233,232 parameters.
    assert b3_trunk(3) + HEAD * 1000 + 1000 == 12_233_232


def test_paper_configuration_is_efficientnet_b3_with_three_srts():
    net = build(PAPER)
    assert stage_channels(net.backbone) == [s[3] for s in B3_STAGES]
    # The maps at strides 2, 4, 8, 16, 32; the SRTs read the last three.
    assert feature_channels(net.backbone) == [24, 32, 48, 136, 384]
    assert count_parameters(net.backbone) == b3_trunk(2) + HEAD * N_LABELS + N_LABELS
    assert [b.embed.out_features for b in net.srt] == [128, 64, 32]
    assert [b.pos.shape[1] for b in net.srt] == [65, 65, 65]  # 64 patches + the class token
    expected_srt = [
        srt(c, d, 64, 2, 4 * d) for c, d in zip((48, 136, 384), (128, 64, 32), strict=True)
    ]
    assert [count_parameters(b) for b in net.srt] == expected_srt
    se = (3 * 6 * 8 + 8) + (8 * 3 + 3)
    assert count_parameters(net.scale_attention) == se
    total = b3_trunk(2) + HEAD * 6 + 6 + sum(expected_srt) + se
    assert count_parameters(net) == total == 11_248_781


def test_paper_forward_shapes_and_additive_fusion():
    net = build(PAPER).eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 2, 512, 512))
    assert out["logits"].shape == (1, 6) and out["maps"].shape == (1, 6, 64, 64)
    assert out["scale_logits"].shape == (1, 3, 6) and out["scale_weights"].shape == (1, 3)
    # The SRT prediction is the scale-weighted sum, added to the backbone's prediction.
    fused = (out["scale_logits"] * out["scale_weights"][:, :, None]).sum(1)
    assert torch.allclose(out["logits"], out["backbone_logits"] + fused, atol=1e-5)


def test_demo_is_small_and_the_mask_channel_matters():
    torch.manual_seed(0)
    net = build(DEMO).eval()
    assert count_parameters(net) < 1_500_000
    x = torch.rand(2, 2, DEMO.input_size, DEMO.input_size)
    with torch.no_grad():
        a = ExportWrapper(net)(x)
        x2 = x.clone()
        x2[:, 1] = 0
        b = ExportWrapper(net)(x2)
    assert a[0].shape == (2, N_LABELS) and a[1].shape == (2, N_LABELS, 16, 16)
    assert float((a[0] - b[0]).abs().max()) > 1e-6
    assert float(a[1].min()) >= 0 and float(a[1].max()) <= 1


def test_onnx_export_matches_torch_and_is_small(tmp_path):
    pytest.importorskip("onnxruntime")
    from app.engine.runtime import Manifest
    from models.calcaneus_msrt.export import (
        MODEL_FILE,
        UNET_FILE,
        export_pair,
        write_manifest,
    )

    torch.manual_seed(0)
    net, unet = build(DEMO).eval(), build_unet(UNET_DEMO).eval()
    rng = np.random.default_rng(0)
    check = (
        rng.random((3, 2, DEMO.input_size, DEMO.input_size), np.float32),
        rng.random((2, 1, UNET_DEMO.input_size, UNET_DEMO.input_size), np.float32),
    )
    diffs = export_pair(net, DEMO, unet, UNET_DEMO, tmp_path, check)
    assert max(v for d in diffs.values() for v in d.values()) < 1e-4
    write_manifest(tmp_path, DEMO, UNET_DEMO, {})
    manifest = Manifest.load(tmp_path)
    for name in (MODEL_FILE, UNET_FILE):
        assert manifest.verified_path(name).stat().st_size < 15_000_000
