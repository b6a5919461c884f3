"""The two networks, built from MONAI blocks (torch; imported only by training and export).

Stage 1: a 2-D MONAI ``BasicUNet`` on 2.5D inputs (slice and its two neighbours as 3 channels)
-> 9 classes (background, C1..C7, other spine).

Stage 2: per vertebra, a sequence of 8 stacked 2.5D images -> a MONAI ``ResNet`` encoder on each
image -> linear projection -> bidirectional LSTM -> MLP attention pooling -> one fracture logit.
The paper uses ConvNeXt-Tiny (timm), which MONAI does not have; the paper configuration here uses
MONAI's ResNet-50 (2-D, similar size: 23.5 M vs 28 M parameters) and projects its 2048 features to
ConvNeXt-Tiny's 768 so the BiLSTM is the paper's 768 -> 2 x 768, as in the authors' code
(``nn.LSTM(n_features, n_features, bidirectional=True)``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from monai.networks.nets import BasicUNet, ResNet
from torch import nn

from models.cervical_fracture.pipeline import N_CLASSES, SEQ_LEN


@dataclass
class Stage1Config:
    features: tuple[int, ...] = (8, 16, 32, 64, 128, 8)
    in_channels: int = 3
    out_channels: int = N_CLASSES


@dataclass
class Stage2Config:
    block: str = "basic"
    layers: tuple[int, ...] = (1, 1, 1, 1)
    block_inplanes: tuple[int, ...] = (16, 32, 64, 128)
    feature_dim: int = 64  # projection width fed to the LSTM (paper: 768, ConvNeXt-Tiny's width)
    lstm_hidden: int = 64  # per direction (paper: 768)
    seq_len: int = SEQ_LEN
    in_channels: int = 3
    dropout: float = 0.1


@dataclass
class ModelConfig:
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)

    def to_json(self) -> dict:
        return asdict(self)


DEMO = ModelConfig()
PAPER = ModelConfig(
    stage1=Stage1Config(features=(32, 32, 64, 128, 256, 32)),
    stage2=Stage2Config(
        block="bottleneck",
        layers=(3, 4, 6, 3),
        block_inplanes=(64, 128, 256, 512),
        feature_dim=768,
        lstm_hidden=768,
    ),
)


def build_stage1(cfg: Stage1Config) -> nn.Module:
    return BasicUNet(
        spatial_dims=2,
        in_channels=cfg.in_channels,
        out_channels=cfg.out_channels,
        features=tuple(cfg.features),
        act=("LeakyReLU", {"negative_slope": 0.1, "inplace": True}),
        norm=("instance", {"affine": True}),
    )


class MLPAttention(nn.Module):
    """Additive attention over the sequence: softmax(v^T tanh(W h_t + b)) weighted sum of h_t."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj_w = nn.Linear(dim, dim)
        self.proj_v = nn.Linear(dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, D)
        scores = torch.softmax(self.proj_v(torch.tanh(self.proj_w(x))), dim=1)
        return (x * scores).sum(dim=1)


class FractureSequenceNet(nn.Module):
    """(B, T, C, H, W) sequences of 2.5D images -> (B,) fracture logits."""

    def __init__(self, cfg: Stage2Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ResNet(
            block=cfg.block,
            layers=list(cfg.layers),
            block_inplanes=list(cfg.block_inplanes),
            spatial_dims=2,
            n_input_channels=cfg.in_channels,
            conv1_t_size=7,
            conv1_t_stride=2,
            feed_forward=False,
        )
        expansion = 4 if cfg.block == "bottleneck" else 1
        enc_dim = cfg.block_inplanes[-1] * expansion
        self.project = nn.Linear(enc_dim, cfg.feature_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(cfg.feature_dim, cfg.lstm_hidden, batch_first=True, bidirectional=True)
        self.attention = MLPAttention(2 * cfg.lstm_hidden)
        self.head = nn.Linear(2 * cfg.lstm_hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        feats = self.encoder(x.reshape(b * t, c, h, w))
        feats = self.dropout(self.project(feats)).reshape(b, t, -1)
        seq, _ = self.lstm(feats)
        return self.head(self.attention(seq)).squeeze(-1)


def build_stage2(cfg: Stage2Config) -> FractureSequenceNet:
    return FractureSequenceNet(cfg)


def head_parameter_count(cfg: Stage2Config, enc_dim: int) -> int:
    """Parameters after the encoder, from the layer definitions (for the paper-config test)."""
    f, h = cfg.feature_dim, cfg.lstm_hidden
    project = enc_dim * f + f
    lstm_one_direction = 4 * (h * f + h * h + 2 * h)  # W_ih, W_hh, b_ih, b_hh for 4 gates
    attention = (2 * h) * (2 * h) + 2 * h + 2 * h  # proj_w (with bias) + proj_v (no bias)
    head = 2 * h + 1
    return project + 2 * lstm_one_direction + attention + head


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
