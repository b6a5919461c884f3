"""Networks for the spine AP + lateral task (torch + MONAI; training and export only).

As the paper (Jain et al., shared/papers/spine_xray_seg_cls_shap.txt) has them:

- two U-Nets, one per view, whose upsampling is done by transposed convolutions (the paper's
  change to the U-Net of zhixuhao/unet, taken from jocicmarko/ultrasound-nerve-segmentation)
  and whose last feature map branches into one binary mask per structure: 3 for AP, 5 for LAT;
- a dual-view classifier: one ResNet-50 encoder per view (MONAI's ``ResNet``), their pooled
  features concatenated, a dense layer of 128, then normal/damaged.

The paper configuration (``PAPER_*``) is the jocicmarko U-Net (32..512 filters, two 3x3
convolutions per level, no normalisation) and ResNet-50 encoders on 3-channel inputs (the
paper's RGB .jpg files through ImageNet-shaped networks). The demo configuration is what trains
on two CPU cores; it adds batch normalisation to the U-Net (faster to train from scratch) and
uses basic-block ResNets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from monai.networks.nets import ResNet
from torch import nn

from models.spine_xray.phantom import AP_MASKS, LAT_MASKS

VIEW_MASKS: dict[str, tuple[str, ...]] = {"ap": AP_MASKS, "lateral": LAT_MASKS}


@dataclass(frozen=True)
class UNetConfig:
    widths: tuple[int, ...]  # filters per level, top to bottom (the last is the bottleneck)
    norm: bool  # batch normalisation after each convolution
    input_size: int  # square network input side (pixels)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ClassifierConfig:
    block: str  # "basic" or "bottleneck"
    layers: tuple[int, ...]
    widths: tuple[int, ...]
    in_channels: int  # 3 for the ImageNet-shaped paper encoder; the graph input is 1 channel
    dense: int  # the paper's dense layer (128 after 256 overfitted)
    input_size: int
    dropout: float = 0.3
    pooling: str = "avg"  # "avg" (ResNet's own) or "max": damage at one level is a local sign

    @property
    def feature_channels(self) -> int:
        return self.widths[-1] * (4 if self.block == "bottleneck" else 1)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SpineConfig:
    name: str
    unet: UNetConfig
    classifier: ClassifierConfig

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "unet": self.unet.to_json(),
            "classifier": self.classifier.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict) -> SpineConfig:
        def tup(x: dict) -> dict:
            return {k: tuple(v) if isinstance(v, list) else v for k, v in x.items()}

        return cls(
            d["name"], UNetConfig(**tup(d["unet"])), ClassifierConfig(**tup(d["classifier"]))
        )


PAPER = SpineConfig(
    "paper",
    UNetConfig(widths=(32, 64, 128, 256, 512), norm=False, input_size=256),
    ClassifierConfig("bottleneck", (3, 4, 6, 3), (64, 128, 256, 512), 3, 128, 224),
)
# Sized so that rendering, both U-Nets and the classifier train in about 15 minutes on one
# thread of a shared 2-core CPU (MODEL_CARD.md has the measured time).
DEMO = SpineConfig(
    "demo",
    UNetConfig(widths=(8, 16, 32, 64, 128), norm=True, input_size=192),
    ClassifierConfig("basic", (1, 1, 1, 1), (16, 32, 64, 128), 1, 128, 128, pooling="max"),
)
CONFIGS = {"paper": PAPER, "demo": DEMO}


def _double_conv(cin: int, cout: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a in (cin, cout):
        # A convolution followed by batch norm needs no bias (the norm's shift replaces it).
        layers.append(nn.Conv2d(a, cout, 3, padding=1, bias=not norm))
        if norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class MultiMaskUNet(nn.Module):
    """U-Net with transposed-convolution upsampling; one 1x1 sigmoid branch per mask.

    Returns logits (B, n_masks, H, W); H and W must be multiples of 2 ** (levels - 1).
    """

    def __init__(self, cfg: UNetConfig, masks: tuple[str, ...], in_channels: int = 1) -> None:
        super().__init__()
        self.masks = masks
        w = cfg.widths
        self.down = nn.ModuleList()
        cin = in_channels
        for c in w:
            self.down.append(_double_conv(cin, c, cfg.norm))
            cin = c
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for c_hi, c_lo in zip(w[::-1][:-1], w[::-1][1:], strict=True):
            self.up.append(nn.ConvTranspose2d(c_hi, c_lo, 2, stride=2))
            self.merge.append(_double_conv(2 * c_lo, c_lo, cfg.norm))
        # The paper "branched out" of the last convolutional layer into one mask per structure:
        # one 1x1 convolution per branch, so each mask's head is its own module.
        self.heads = nn.ModuleList(nn.Conv2d(w[0], 1, 1) for _ in masks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for n, block in enumerate(self.down):
            x = block(x if n == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge, strict=True):
            x = merge(torch.cat([skips.pop(), up(x)], dim=1))
        return torch.cat([h(x) for h in self.heads], dim=1)


class Encoder(nn.Module):
    """MONAI ResNet without its fully connected head: (B, 1, H, W) -> (B, features)."""

    def __init__(self, cfg: ClassifierConfig) -> None:
        super().__init__()
        self.in_channels = cfg.in_channels
        # bias_downsample=False, 7x7 stride-2 stem and max pooling: the He et al. ResNet.
        self.net = ResNet(
            block=cfg.block,
            layers=list(cfg.layers),
            block_inplanes=list(cfg.widths),
            spatial_dims=2,
            n_input_channels=cfg.in_channels,
            conv1_t_size=7,
            conv1_t_stride=2,
            feed_forward=False,
            bias_downsample=False,
        )
        if cfg.pooling == "max":
            self.net.avgpool = nn.AdaptiveMaxPool2d(1)  # no parameters: counts unchanged

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels != 1:  # a grey radiograph fed to an RGB-shaped (ImageNet) encoder
            x = x.expand(-1, self.in_channels, -1, -1)
        return self.net(x)


class DualViewClassifier(nn.Module):
    """One encoder per view -> concatenated features -> dense 128 -> normal/damaged logits."""

    def __init__(self, cfg: ClassifierConfig) -> None:
        super().__init__()
        self.ap = Encoder(cfg)
        self.lateral = Encoder(cfg)
        self.head = nn.Sequential(
            nn.Linear(2 * cfg.feature_channels, cfg.dense),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.dense, 2),
        )

    def forward(self, ap: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.ap(ap), self.lateral(lateral)], dim=1))


def build_unet(cfg: SpineConfig, view: str) -> MultiMaskUNet:
    return MultiMaskUNet(cfg.unet, VIEW_MASKS[view])


def build_classifier(cfg: SpineConfig) -> DualViewClassifier:
    return DualViewClassifier(cfg.classifier)


class SegExport(nn.Module):
    """What a U-Net's ONNX file computes: per-mask probabilities."""

    def __init__(self, net: MultiMaskUNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(image))


class ClsExport(nn.Module):
    """What the classifier's ONNX file computes: P(normal), P(damaged)."""

    def __init__(self, net: DualViewClassifier) -> None:
        super().__init__()
        self.net = net

    def forward(self, ap: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(ap, lateral), dim=1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
