"""CCF-Net (Zhang et al.): a ResNet encoder to stride 16, the multi-scale context-guided (MSC)
module in place of the last ResNet stage, and 1x1 heads: per object a coarse heatmap H, fine
offsets F^X / F^Y and a category map C (11 objects, so 4 x 11 output channels).

The layout follows the paper's Fig. 3 and its public code (czifan/CCFNet.pytorch), written here
from plain torch modules:

- encoder: ResNet stem (7x7/2 conv, 3x3/2 max pool) and the first three ResNet stages (stride
  16), then a 1x1 conv to ``head_channels`` with bias;
- MSC, part 1 (multi-dilation): four branches over shared-weight 3x3 convs with dilations 1, 3
  and 5 and a shared 1x1 conv: d1(x); c(d3(x)); c(d3(d1(x))); c(d5(d3(d1(x)))), each ReLU'd and
  summed with x;
- MSC, part 2 (multi-stride max pooling): max pools of stride 2, 4, 8, a shared 1x1 conv to one
  channel, bilinear upsampling back, concatenated with the features (C + 3 channels);
- MSC, part 3: a ResNet bottleneck (C + 3 -> C) fuses and reduces; then the 1x1 output conv.

The branches are evaluated as the paper draws them, each from its own input (the public code does
the same, and its counts are the paper's Table 1). Torch eager computes d1(x) three times and
d3(d1(x)) twice; the ONNX export keeps each once (the tracer's common-subexpression pass).
``count_macs(unique=True)`` counts each distinct computation once, for honest throughput figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.lumbar_ccfnet.anatomy import OBJECTS

N_OBJECTS = len(OBJECTS)
STRIDE = 16
OUTPUTS = ("heatmap", "offset_x", "offset_y", "category")


@dataclass(frozen=True)
class CCFConfig:
    name: str
    block: str  # "basic" (ResNet18/34) or "bottleneck" (ResNet50)
    layers: tuple[int, int, int]  # blocks in ResNet stages 1-3 (stage 4 is replaced by MSC)
    widths: tuple[int, int, int] = (64, 128, 256)  # planes of stages 1-3
    stem: int = 64
    head_channels: int = 256
    in_channels: int = 3  # the paper's code feeds 3 channels (ImageNet init); our MR input is 1
    input_size: int = 512
    sigma: float = 16.0  # heatmap Gaussian, input pixels (the public code: 16 at 512 px)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> CCFConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


CONFIGS = {
    "resnet18-msc": CCFConfig("resnet18-msc", "basic", (2, 2, 2)),
    "resnet50-msc": CCFConfig("resnet50-msc", "bottleneck", (3, 4, 6)),
    # Demo: a quarter-width ResNet18-MSC at 256 px (about 1/64 of the paper's arithmetic), small
    # enough to train on phantoms in minutes on one CPU thread. Sigma stays one cell (16 px) as
    # in the paper's 512 px config: half a cell left the heatmap targets too sparse to learn.
    "demo": CCFConfig(
        "demo", "basic", (2, 2, 2), (16, 32, 64), 16, 64, 1, input_size=256, sigma=16.0
    ),
}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.down = _shortcut(cin, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.down(x) if self.down is not None else x))


class Bottleneck(nn.Module):
    """ResNet bottleneck with the stride on the 3x3 conv (as in the public code)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.down = _shortcut(cin, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (self.down(x) if self.down is not None else x))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class MultiDilation(nn.Module):
    """MSC part 1: cascaded dilated 3x3 convs (D=1, 3, 5) with shared weights, four branches."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.d1 = nn.Conv2d(ch, ch, 3, padding=1, dilation=1)
        self.d3 = nn.Conv2d(ch, ch, 3, padding=3, dilation=3)
        self.d5 = nn.Conv2d(ch, ch, 3, padding=5, dilation=5)
        self.fuse = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Receptive fields 3, 7, 9 and 19 cells: neighbouring vertebrae and discs at stride 16.
        b1 = F.relu(self.d1(x))
        b2 = F.relu(self.fuse(self.d3(x)))
        b3 = F.relu(self.fuse(self.d3(self.d1(x))))
        b4 = F.relu(self.fuse(self.d5(self.d3(self.d1(x)))))
        return x + b1 + b2 + b3 + b4


class MultiStridePool(nn.Module):
    """MSC part 2: max pools of stride 2, 4, 8 -> shared 1x1 conv to one channel -> upsampled."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        maps = [
            F.interpolate(
                self.conv(F.max_pool2d(x, s, s)), size=size, mode="bilinear", align_corners=True
            )
            for s in (2, 4, 8)
        ]
        return torch.cat([*maps, x], dim=1)


class CCFNet(nn.Module):
    def __init__(self, cfg: CCFConfig) -> None:
        super().__init__()
        self.cfg = cfg
        block = BasicBlock if cfg.block == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(cfg.in_channels, cfg.stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(cfg.stem)
        stages, cin = [], cfg.stem
        for n, (planes, blocks) in enumerate(zip(cfg.widths, cfg.layers, strict=True)):
            layer = []
            for b in range(blocks):
                layer.append(block(cin, planes, 2 if (b == 0 and n > 0) else 1))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*layer))
        self.stages = nn.Sequential(*stages)
        c = cfg.head_channels
        self.reduce = nn.Conv2d(cin, c, 1)
        self.dilation = MultiDilation(c)
        self.pool = MultiStridePool(c)
        self.fuse = Bottleneck(c + 3, c // Bottleneck.expansion)
        self.out = nn.Conv2d(c, 4 * N_OBJECTS, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(heatmap, offset_x, offset_y, category logits), each (B, 11, H/16, W/16)."""
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.reduce(self.stages(x))
        x = self.fuse(self.pool(self.dilation(x)))
        return tuple(self.out(x).split(N_OBJECTS, dim=1))


class ExportWrapper(nn.Module):
    """What the ONNX file computes: the maps with C as probabilities (sigmoid in the graph)."""

    def __init__(self, net: CCFNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h, fx, fy, c = self.net(image)
        return h, fx, fy, torch.sigmoid(c)


def build(cfg: CCFConfig | str) -> CCFNet:
    return CCFNet(CONFIGS[cfg] if isinstance(cfg, str) else cfg)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def count_macs(
    net: nn.Module, x: torch.Tensor, unique: bool = False, batchnorm: bool = False
) -> int:
    """Conv/linear multiply-accumulates of one forward pass, counted per call with hooks.

    ``batchnorm``: add 2 operations per BatchNorm output element (scale and shift), which is how
    thop's ``profile`` counts an inference-mode BatchNorm; the public code's scripts report the
    paper's Table 1 with thop, and only with this term do both rows agree to 0.01%.
    ``unique``: a conv applied again to the same input tensor (the MSC's shared branches) counts
    once, as in the exported ONNX graph."""
    total = 0
    seen: set[tuple[int, int]] = set()
    alive: list[torch.Tensor] = []  # inputs held so a freed buffer's address is not reused

    def hook(m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        key = (id(m), inp[0].data_ptr())
        if unique and key in seen:
            return
        seen.add(key)
        alive.append(inp[0])
        if isinstance(m, nn.BatchNorm2d):
            total += 2 * out.numel()
        elif isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            total += out.numel() * (m.in_channels // m.groups) * k
        else:
            total += out.numel() * m.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in net.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear)) or (batchnorm and isinstance(m, nn.BatchNorm2d))
    ]
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)
    return total
