"""Networks for proximal femur AO classification (torch + MONAI; training and export only).

One model carries the paper's weakly-supervised pieces together:

- a spatial transformer (II.C.1) whose localisation net regresses 3 parameters (a-STN: isotropic
  scale + translation) or 6 (aff-STN), initialised to the identity (the whole image), and
  samples the region of interest with bilinear interpolation;
- a ResNet classifier (MONAI ``ResNet``; ResNet-50 bottlenecks [3, 4, 6, 3] in the paper
  configuration) followed by a transition layer, a global pooling layer (AVG, MAX or LSE) and
  a prediction layer (II.C.3); the class activation maps are the prediction layer's weights
  applied to the transition layer's maps, computed inside the graph;
- a self-transfer-learning localisation branch (II.C.2): 1x1 convolutions to C score maps
  followed by global average pooling, trained with its own cross-entropy.

The three scenarios of the hierarchy are three softmax groups over one set of K = 11 logits:
[normal, fracture], [normal, A, B], [A1, A2, A3, B1, B2, B3] (the 6-class scenario is, as in the
paper, among fractures only).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from monai.networks.nets import ResNet
from torch import nn

from models.femur_ao.labels import GROUP_SLICES, N_LOGITS


@dataclass(frozen=True)
class FemurNetConfig:
    name: str
    block: str  # "basic" or "bottleneck"
    layers: tuple[int, ...]
    widths: tuple[int, ...]
    input_size: int  # square side image given to the STN
    roi_size: int  # square region of interest the STN samples for the classifier
    transition_channels: int
    pooling: str = "avg"  # "avg", "max" or "lse"
    lse_r: float = 10.0
    stn: str = "a-stn"  # "a-stn" (3 parameters), "aff-stn" (6) or "none"
    conv1_stride: int = 2
    max_pool: bool = True
    stn_widths: tuple[int, ...] = (16, 32, 64)
    dropout: float = 0.3

    def to_json(self) -> dict:
        return asdict(self)


# The paper: ResNet-50, 500 px inputs to the localiser; the ROI at 256 px gives S = 8 maps and
# D = 2048 features (the transition layer of Wang et al. for ResNet).
PAPER = FemurNetConfig(
    name="paper",
    block="bottleneck",
    layers=(3, 4, 6, 3),
    widths=(64, 128, 256, 512),
    input_size=500,
    roi_size=256,
    transition_channels=2048,
    stn_widths=(32, 64, 128),
)
# The shipped demo: a ResNet-10-like basic-block net, small enough to train on two CPU cores.
DEMO = FemurNetConfig(
    name="demo",
    block="basic",
    layers=(1, 1, 1, 1),
    widths=(16, 32, 64, 128),
    input_size=192,
    roi_size=128,
    transition_channels=128,
    max_pool=False,
)
CONFIGS = {"paper": PAPER, "demo": DEMO}


class Backbone(nn.Module):
    """MONAI ResNet (2-D, one input channel) without its pooling and fully connected head."""

    def __init__(self, cfg: FemurNetConfig) -> None:
        super().__init__()
        # bias_downsample=False and conv1 stride 2 give exactly the He et al. ResNet.
        net = ResNet(
            block=cfg.block,
            layers=list(cfg.layers),
            block_inplanes=list(cfg.widths),
            spatial_dims=2,
            n_input_channels=1,
            conv1_t_size=7,
            conv1_t_stride=cfg.conv1_stride,
            no_max_pool=not cfg.max_pool,
            feed_forward=False,
            bias_downsample=False,
        )
        pool = net.maxpool if cfg.max_pool else nn.Identity()
        self.stem = nn.Sequential(net.conv1, net.bn1, net.act, pool)
        self.layers = nn.Sequential(net.layer1, net.layer2, net.layer3, net.layer4)
        self.out_channels = cfg.widths[-1] * (4 if cfg.block == "bottleneck" else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


class Localiser(nn.Module):
    """STN localisation net: a small ConvNet regressing the warp; starts at the identity."""

    def __init__(self, cfg: FemurNetConfig) -> None:
        super().__init__()
        self.kind = cfg.stn
        chans, blocks = 1, []
        for w in cfg.stn_widths:
            blocks += [nn.Conv2d(chans, w, 3, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
            chans = w
        self.features = nn.Sequential(*blocks)
        n_params = 3 if cfg.stn == "a-stn" else 6
        self.fc = nn.Sequential(nn.Linear(chans, 32), nn.ReLU(), nn.Linear(32, n_params))
        nn.init.zeros_(self.fc[-1].weight)
        with torch.no_grad():
            identity = [1.0, 0.0, 0.0] if n_params == 3 else [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            self.fc[-1].bias.copy_(torch.tensor(identity))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) -> theta (B, 2, 3) mapping ROI grid coordinates to input coordinates."""
        size = x.shape[-1]
        if size % 64 == 0:
            x = F.avg_pool2d(x, size // 64) if size > 64 else x
        else:  # ONNX has no adaptive pooling to a non-divisor size: area-average, then resize
            x = F.avg_pool2d(x, max(1, size // 64))
            x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
        p = self.fc(self.features(x).mean(dim=(2, 3)))
        if self.kind == "a-stn":
            s, tx, ty = p[:, 0], p[:, 1], p[:, 2]
            zero = torch.zeros_like(s)
            return torch.stack([torch.stack([s, zero, tx], 1), torch.stack([zero, s, ty], 1)], 1)
        return p.view(-1, 2, 3)


def roi_grid(theta: torch.Tensor, size: int) -> torch.Tensor:
    """affine_grid written out (align_corners=False) so it exports to any ONNX opset."""
    lin = (torch.arange(size, dtype=theta.dtype, device=theta.device) * 2 + 1) / size - 1
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    base = torch.stack([gx, gy, torch.ones_like(gx)], -1).reshape(1, size * size, 3)
    grid = base @ theta.transpose(1, 2)  # (B, size*size, 2)
    return grid.reshape(-1, size, size, 2)


class GlobalPool(nn.Module):
    def __init__(self, kind: str, r: float = 10.0) -> None:
        super().__init__()
        if kind not in ("avg", "max", "lse"):
            raise ValueError(f"pooling must be avg, max or lse, not {kind!r}")
        self.kind, self.r = kind, r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "avg":
            return x.mean(dim=(2, 3))
        if self.kind == "max":
            return x.amax(dim=(2, 3))
        # LSE (Wang et al.): x* + 1/r log(mean(exp(r (x - x*)))), stable form.
        m = x.amax(dim=(2, 3), keepdim=True)
        lse = m + torch.log(torch.exp(self.r * (x - m)).mean(dim=(2, 3), keepdim=True)) / self.r
        return lse.flatten(1)


class FemurAONet(nn.Module):
    """STN -> ResNet -> transition -> {pool -> prediction (+CAM), STL localisation branch}."""

    def __init__(self, cfg: FemurNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.localiser = Localiser(cfg) if cfg.stn != "none" else None
        self.backbone = Backbone(cfg)
        d = cfg.transition_channels
        self.transition = nn.Sequential(
            nn.Conv2d(self.backbone.out_channels, d, 1), nn.BatchNorm2d(d), nn.ReLU()
        )
        self.pool = GlobalPool(cfg.pooling, cfg.lse_r)
        self.dropout = nn.Dropout(cfg.dropout)
        self.prediction = nn.Linear(d, N_LOGITS)
        self.loc_branch = nn.Conv2d(d, N_LOGITS, 1)

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        if self.localiser is None:
            eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=x.dtype, device=x.device)
            return eye.expand(x.shape[0], 2, 3)
        return self.localiser(x)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        theta = self.theta(x)
        roi = F.grid_sample(
            x,
            roi_grid(theta, self.cfg.roi_size),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=False,
        )
        maps = self.transition(self.backbone(roi))  # (B, D, S, S)
        logits = self.prediction(self.dropout(self.pool(maps)))
        # CAM: the prediction layer's weights applied to the transition maps (no bias).
        cams = torch.einsum("kd,bdhw->bkhw", self.prediction.weight, maps)
        loc_maps = self.loc_branch(maps)
        return {
            "logits": logits,
            "loc_logits": loc_maps.mean(dim=(2, 3)),
            "cams": cams,
            "loc_maps": loc_maps,
            "theta": theta,
        }


class ExportWrapper(nn.Module):
    """What the ONNX file computes: per-scenario probabilities, CAMs and the STN warp."""

    def __init__(self, net: FemurAONet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor):
        out = self.net(x)
        logits = out["logits"]
        probs = [torch.softmax(logits[:, s], dim=1) for s in GROUP_SLICES.values()]
        return (*probs, out["cams"], out["theta"])


EXPORT_OUTPUTS = ("p_fracture", "p_type", "p_subtype", "cams", "theta")


def build(cfg: FemurNetConfig | str) -> FemurAONet:
    return FemurAONet(CONFIGS[cfg] if isinstance(cfg, str) else cfg)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
