"""CCF-Net sizes against the paper's Table 1 (512 x 512, three input channels as in its code)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from models.lumbar_ccfnet.networks import (  # noqa: E402
    CONFIGS,
    N_OBJECTS,
    build,
    count_macs,
    count_parameters,
)

# backbone: (params, GMACs) as printed in the paper's Table 1
TABLE = {"resnet18-msc": (4.834e6, 12.001e9), "resnet50-msc": (10.791e6, 22.085e9)}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_parameters_and_macs_match_the_paper(name):
    torch.set_num_threads(1)
    cfg = CONFIGS[name]
    net = build(cfg)
    params, macs = TABLE[name]
    x = torch.zeros(1, cfg.in_channels, 512, 512)
    got_params = count_parameters(net)
    got_macs = count_macs(net, x, batchnorm=True)
    assert abs(got_params / params - 1) < 0.005, got_params
    assert abs(got_macs / macs - 1) < 0.005, got_macs
    # Convolutions alone are most of it; the shared MSC branches counted once are less still.
    conv_only = count_macs(net, x)
    unique = count_macs(net, x, unique=True)
    assert unique < conv_only < got_macs


def test_heads_are_stride_16_with_four_maps_per_object():
    cfg = CONFIGS["demo"]
    net = build(cfg).eval()
    with torch.no_grad():
        outs = net(torch.zeros(2, cfg.in_channels, cfg.input_size, cfg.input_size))
    assert len(outs) == 4
    for o in outs:
        assert tuple(o.shape) == (2, N_OBJECTS, cfg.input_size // 16, cfg.input_size // 16)


def test_msc_dilations_are_1_3_5():
    net = build("demo")
    assert [net.dilation.d1.dilation, net.dilation.d3.dilation, net.dilation.d5.dilation] == [
        (1, 1),
        (3, 3),
        (5, 5),
    ]
