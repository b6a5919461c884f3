"""Count multiply-accumulates of a torch module with forward hooks (Conv, Linear, LSTM).

FLOPs are reported as 2 x MACs. Normalisation, activations and pooling are left out (a few
percent of a CNN's arithmetic), so achieved GFLOP/s figures are slight underestimates.
"""

from __future__ import annotations

import torch
from torch import nn


def count_macs(module: nn.Module, *inputs: torch.Tensor) -> int:
    total = 0

    def conv_hook(m: nn.Conv2d | nn.ConvTranspose2d, inp, out) -> None:
        nonlocal total
        k = int(torch.tensor(m.kernel_size).prod())
        cin = m.in_channels // m.groups
        if isinstance(m, nn.ConvTranspose2d):
            total += int(inp[0].numel()) * m.out_channels // m.groups * k
        else:
            total += int(out.numel()) * cin * k

    def linear_hook(m: nn.Linear, inp, out) -> None:
        nonlocal total
        total += int(out.numel()) * m.in_features

    def lstm_hook(m: nn.LSTM, inp, out) -> None:
        nonlocal total
        x = inp[0]
        steps = x.shape[0] * x.shape[1]  # batch x time
        dirs = 2 if m.bidirectional else 1
        h = m.hidden_size
        in_size = m.input_size
        for layer in range(m.num_layers):
            if layer > 0:
                in_size = h * dirs
            total += steps * dirs * 4 * h * (in_size + h)

    handles = []
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, nn.LSTM):
            handles.append(m.register_forward_hook(lstm_hook))
    try:
        with torch.no_grad():
            module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total


def count_flops(module: nn.Module, *inputs: torch.Tensor) -> int:
    return 2 * count_macs(module, *inputs)
