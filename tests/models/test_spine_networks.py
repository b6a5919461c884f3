"""Spine networks: the paper configuration's parameter counts derived by hand from the layer
shapes, the demo sizes, the outputs, the losses and the ONNX export."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.spine_xray.networks import (  # noqa: E402
    DEMO,
    PAPER,
    ClsExport,
    SegExport,
    build_classifier,
    build_unet,
    count_parameters,
)
from models.spine_xray.phantom import AP_MASKS, LAT_MASKS  # noqa: E402

# torchvision's ResNet-50 has 25,557,032 parameters with its 1000-class fc (2048 * 1000 + 1000);
# the encoder is the rest, on 3-channel (ImageNet) inputs as in the paper.
RESNET50_TRUNK_3CH = 25_557_032 - (2048 * 1000 + 1000)
# jocicmarko/ultrasound-nerve-segmentation's Keras U-Net (the paper's source for transposed
# convolutions): "Total params: 7,759,521" with its single 1x1 sigmoid output.
JOCICMARKO_UNET_ONE_MASK = 7_759_521


def unet_params_by_hand(widths: tuple[int, ...], n_masks: int, in_ch: int = 1) -> int:
    """Two 3x3 convolutions (with bias) per level down and up, a 2x2 transposed convolution per
    step up, a 1x1 convolution per mask."""
    total, cin = 0, in_ch
    for w in widths:
        total += (9 * cin * w + w) + (9 * w * w + w)
        cin = w
    for hi, lo in zip(widths[::-1][:-1], widths[::-1][1:], strict=True):
        total += 4 * hi * lo + lo  # ConvTranspose2d(hi, lo, 2, stride=2)
        total += (9 * 2 * lo * lo + lo) + (9 * lo * lo + lo)  # after the skip concatenation
    return total + n_masks * (widths[0] + 1)


def test_paper_unets_match_the_hand_count_and_the_keras_reference():
    for view, masks in (("ap", AP_MASKS), ("lateral", LAT_MASKS)):
        net = build_unet(PAPER, view)
        assert count_parameters(net) == unet_params_by_hand(PAPER.unet.widths, len(masks))
        # One mask more or less is one 1x1 head (33 parameters) off the Keras model.
        assert count_parameters(net) == JOCICMARKO_UNET_ONE_MASK + (len(masks) - 1) * 33
        ups = [m for m in net.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
        assert len(ups) == len(PAPER.unet.widths) - 1  # upsampling by transposed convolutions
        assert not any(isinstance(m, torch.nn.Upsample) for m in net.modules())


def test_paper_classifier_is_two_resnet50_encoders_and_a_dense_128_head():
    net = build_classifier(PAPER)
    assert count_parameters(net.ap) == RESNET50_TRUNK_3CH
    assert count_parameters(net.lateral) == RESNET50_TRUNK_3CH
    head = (2 * 2048 * 128 + 128) + (128 * 2 + 2)  # concatenated features -> 128 -> 2
    assert count_parameters(net.head) == head
    assert count_parameters(net) == 2 * RESNET50_TRUNK_3CH + head
    net.eval()
    x = torch.zeros(1, 1, 96, 96)  # grey input, expanded to the encoder's 3 channels
    with torch.no_grad():
        assert net(x, x).shape == (1, 2)


def test_demo_networks_are_small_and_shaped_like_the_paper():
    for view, masks in (("ap", AP_MASKS), ("lateral", LAT_MASKS)):
        net = build_unet(DEMO, view).eval()
        assert count_parameters(net) < 1_000_000
        s = DEMO.unet.input_size
        with torch.no_grad():
            p = SegExport(net)(torch.randn(2, 1, s, s))
        assert p.shape == (2, len(masks), s, s)
        assert float(p.min()) >= 0 and float(p.max()) <= 1
    cls = build_classifier(DEMO).eval()
    assert count_parameters(cls) < 1_000_000
    c = DEMO.classifier.input_size
    with torch.no_grad():
        p = ClsExport(cls)(torch.randn(3, 1, c, c), torch.randn(3, 1, c, c))
    assert torch.allclose(p.sum(1), torch.ones(3))


def test_classifier_uses_both_views():
    """Changing either view alone changes the output: the features are concatenated, not one
    view's only."""
    torch.manual_seed(0)
    net = build_classifier(DEMO).eval()
    c = DEMO.classifier.input_size
    a, b = torch.randn(1, 1, c, c), torch.randn(1, 1, c, c)
    with torch.no_grad():
        base = net(a, b)
        assert not torch.allclose(net(torch.randn(1, 1, c, c), b), base)
        assert not torch.allclose(net(a, torch.randn(1, 1, c, c)), base)


def test_seg_loss_is_lower_for_the_right_masks():
    from models.spine_xray.train import seg_loss

    target = torch.zeros(2, 3, 16, 16)
    target[:, :, 4:10, 4:10] = 1
    good = torch.where(target > 0, 8.0, -8.0)
    assert float(seg_loss(good, target)) < 0.05
    assert float(seg_loss(-good, target)) > 1.5


def test_onnx_export_matches_torch(tmp_path):
    from models.spine_xray.data import phantom_set
    from models.spine_xray.export import FILES, check_against_torch, export_graphs, write_manifest

    torch.manual_seed(0)
    nets = {v: build_unet(DEMO, v).eval() for v in ("ap", "lateral")}
    nets["classifier"] = build_classifier(DEMO).eval()
    export_graphs(nets, DEMO, tmp_path)
    ds = phantom_set([3], DEMO.unet.input_size, DEMO.classifier.input_size)
    diffs = check_against_torch(nets, tmp_path, {"ap": ds.ap, "lateral": ds.lateral},
                                (ds.ap_cls, ds.lateral_cls))  # fmt: skip
    assert max(diffs.values()) < 1e-4
    manifest = write_manifest(tmp_path, DEMO, {})
    import json

    doc = json.loads(manifest.read_text())
    assert set(doc["files"]) == set(FILES.values())
    for name in FILES.values():
        assert (tmp_path / name).stat().st_size < 15e6
        assert len(doc["files"][name]["sha256"]) == 64
    assert np.isfinite(list(diffs.values())).all()
