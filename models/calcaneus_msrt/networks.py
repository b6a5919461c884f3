"""MSRT (Multi-scale Spatial Regularization Transformer) and the rough-mask U-Net (torch/MONAI).

The classifier follows the MSRT paper (``shared/papers/calcaneus_msrt.txt``, section 2.1):

- an EfficientNet encoder (MONAI ``EfficientNetBN("efficientnet-b3")`` in the paper
  configuration) reads two channels, the radiograph and the rough fracture mask;
- the last three feature maps (strides 8, 16, 32) each go through a spatial regularization
  Transformer (SRT): a 1x1 convolution maps the features to one map per label (C x H x W, the
  "attention" maps the adapter shows), pooled to C x 8 x 8 = 64 patch tokens of C values; a
  fully connected layer lifts each token to D dimensions (128, 64, 32 for the three scales);
  a class token and a learned position embedding are added and standard Transformer blocks
  run; only the class token is read out, into C logits;
- a squeeze-and-excitation scale attention weighs the three scales' logits, and the fused
  spatial-regularization logits are added to the backbone's own prediction;
- six sigmoid outputs (multi-label).

The paper does not give the Transformer's depth, heads or MLP width; the paper configuration
here uses 2 layers, 4 heads and an MLP 4x wide (ViT's ratio), the demo one layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from monai.networks.nets import BasicUNet
from monai.networks.nets.efficientnet import EfficientNet, EfficientNetBN
from torch import nn

N_LABELS = 6
IN_CHANNELS = 2  # radiograph + rough fracture mask
# MONAI's EfficientNetBN stage table (B0 base), shared by every width/depth scaling.
BLOCKS_ARGS = (
    "r1_k3_s11_e1_i32_o16_se0.25",
    "r2_k3_s22_e6_i16_o24_se0.25",
    "r2_k5_s22_e6_i24_o40_se0.25",
    "r3_k3_s22_e6_i40_o80_se0.25",
    "r3_k5_s11_e6_i80_o112_se0.25",
    "r4_k5_s22_e6_i112_o192_se0.25",
    "r1_k3_s11_e6_i192_o320_se0.25",
)
EXPORT_OUTPUTS = ("probabilities", "attention")
# MONAI's EfficientNet default BN momentum is 0.01 (TensorFlow's 0.99 decay): over the few
# hundred steps a demo run takes, the running statistics stay near their initial values and
# eval-mode outputs drift far from training's. PyTorch's usual 0.1 keeps up.
NORM = ("batch", {"eps": 1e-3, "momentum": 0.1})


@dataclass(frozen=True)
class MSRTConfig:
    name: str
    backbone: str  # an EfficientNetBN model name, or "custom" (width/depth below)
    input_size: int
    width: float = 1.0  # custom backbone only
    depth: float = 1.0
    srt_dims: tuple[int, int, int] = (128, 64, 32)
    srt_layers: int = 2
    srt_heads: int = 4
    mlp_ratio: float = 4.0
    grid: int = 8  # patch grid per scale (8 x 8 = 64 tokens); smaller maps keep their size
    se_hidden: int = 8
    dropout: float = 0.2

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class UNetConfig:
    name: str
    input_size: int
    features: tuple[int, ...] = field(default=(8, 16, 32, 64, 64, 8))

    def to_json(self) -> dict:
        return asdict(self)


PAPER = MSRTConfig("paper", "efficientnet-b3", 512)
# Demo: EfficientNet at half width and depth on 128 px inputs, one Transformer layer per scale.
# Sized so that training both nets and the ablation fits in about 20 minutes on 2 shared cores.
DEMO = MSRTConfig(
    "demo", "custom", 128, width=0.5, depth=0.5, srt_layers=1, srt_heads=4, mlp_ratio=2.0
)
CONFIGS = {"paper": PAPER, "demo": DEMO}
# The U-Net reads the classifier's 128 px input: at 64 px the fracture lines vanish and it learnt
# only where fractures usually are. Narrower features (4..32) stayed at "all fracture" for 5
# epochs.
UNET_DEMO = UNetConfig("demo", 128)


def build_backbone(cfg: MSRTConfig) -> EfficientNet:
    if cfg.backbone == "custom":
        net = EfficientNet(
            list(BLOCKS_ARGS),
            spatial_dims=2,
            in_channels=IN_CHANNELS,
            num_classes=N_LABELS,
            width_coefficient=cfg.width,
            depth_coefficient=cfg.depth,
            dropout_rate=cfg.dropout,
            image_size=cfg.input_size,
            drop_connect_rate=0.1,
            norm=NORM,
        )
    else:
        net = EfficientNetBN(
            cfg.backbone,
            pretrained=False,
            in_channels=IN_CHANNELS,
            num_classes=N_LABELS,
            norm=NORM,
        )
    # MONAI's memory-efficient swish is a custom autograd function, which ONNX cannot export.
    net.set_swish(memory_efficient=False)
    return net


def stage_channels(backbone: EfficientNet) -> list[int]:
    """Output channels of each of the seven MBConv stages."""
    return [int(stage[-1]._project_conv.out_channels) for stage in backbone._blocks]


def feature_channels(backbone: EfficientNet) -> list[int]:
    """Channels of the maps at strides 2, 4, 8, 16, 32 (MONAI's extract_stacks)."""
    chans = stage_channels(backbone)
    return [chans[i - 1] for i in backbone.extract_stacks]


def pool_kernel(size: int, grid: int) -> int:
    """Pooling kernel that turns a size x size map into about grid x grid patches."""
    return max(size // grid, 1)


class TransformerLayer(nn.Module):
    """Pre-norm Transformer encoder layer: multi-head self-attention and an MLP, residual."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dimension {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(q @ k.transpose(-2, -1) * (d // h) ** -0.5, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.mlp(self.norm2(x)))


class SRTBlock(nn.Module):
    """One scale's spatial regularization Transformer. Returns (logits (B, C), maps (B, C, H, W))."""

    def __init__(self, in_ch: int, dim: int, tokens: int, cfg: MSRTConfig) -> None:
        super().__init__()
        self.to_labels = nn.Conv2d(in_ch, N_LABELS, 1)  # the per-label spatial maps
        self.embed = nn.Linear(N_LABELS, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, tokens + 1, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        mlp = int(dim * cfg.mlp_ratio)
        self.layers = nn.Sequential(
            *[TransformerLayer(dim, cfg.srt_heads, mlp, 0.1) for _ in range(cfg.srt_layers)]
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, N_LABELS)
        self.grid = cfg.grid

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.to_labels(feat)
        k = pool_kernel(maps.shape[-1], self.grid)
        # The kernel is a Python int at trace time, so the ONNX graph has a plain AveragePool.
        patches = F.avg_pool2d(maps, kernel_size=k) if k > 1 else maps
        tokens = self.embed(patches.flatten(2).transpose(1, 2))  # (B, g*g, D)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        x = self.layers(torch.cat([cls, tokens], dim=1) + self.pos)
        return self.head(self.norm(x[:, 0])), maps


class ScaleAttention(nn.Module):
    """Squeeze-and-excitation over the scales: one weight per scale from all scales' logits."""

    def __init__(self, n_scales: int, hidden: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(n_scales * N_LABELS, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_scales),
            nn.Sigmoid(),
        )

    def forward(self, ys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.fc(ys.flatten(1))  # (B, S)
        return (ys * w[:, :, None]).sum(1), w


class MSRT(nn.Module):
    def __init__(self, cfg: MSRTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = build_backbone(cfg)
        chans = feature_channels(self.backbone)[-3:]
        sizes = [cfg.input_size // s for s in (8, 16, 32)]
        self.srt = nn.ModuleList(
            SRTBlock(c, d, (s // pool_kernel(s, cfg.grid)) ** 2, cfg)
            for c, d, s in zip(chans, cfg.srt_dims, sizes, strict=True)
        )
        self.scale_attention = ScaleAttention(3, cfg.se_hidden)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        bb = self.backbone
        h = bb._swish(bb._bn0(bb._conv_stem(bb._conv_stem_padding(x))))
        feats = []
        for i, stage in enumerate(bb._blocks):
            h = stage(h)
            if i + 1 in bb.extract_stacks:
                feats.append(h)
        h = bb._swish(bb._bn1(bb._conv_head(bb._conv_head_padding(h))))
        y_cls = bb._fc(bb._dropout(bb._avg_pooling(h).flatten(1)))
        outs = [blk(f) for blk, f in zip(self.srt, feats[-3:], strict=True)]
        ys = torch.stack([o[0] for o in outs], 1)  # (B, 3, C)
        y_sr, w = self.scale_attention(ys)
        # Attention maps: each scale's label maps at the finest scale, weighted like its logits.
        size = outs[0][1].shape[-2:]
        maps = sum(
            w[:, s, None, None, None]
            * F.interpolate(o[1], size=size, mode="bilinear", align_corners=False)
            for s, o in enumerate(outs)
        )
        return {
            "logits": y_cls + y_sr,
            "backbone_logits": y_cls,
            "scale_logits": ys,
            "scale_weights": w,
            "maps": maps,
        }


class ExportWrapper(nn.Module):
    """What the ONNX file computes: six probabilities and six attention maps in [0, 1]."""

    def __init__(self, net: MSRT) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x)
        return torch.sigmoid(out["logits"]), torch.sigmoid(out["maps"])


def build_unet(cfg: UNetConfig = UNET_DEMO) -> nn.Module:
    """The rough-mask segmenter: a tiny 2-D U-Net, radiograph in, fracture-region logit out."""
    return BasicUNet(spatial_dims=2, in_channels=1, out_channels=1, features=cfg.features)


class UNetExport(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


def build(cfg: MSRTConfig) -> MSRT:
    return MSRT(cfg)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
