"""CCF-Net loss (paper section 2.4): L = w_h L_h + w_f (L_f^X + L_f^Y) + w_c L_c.

- L_h: mean squared error of the coarse heatmap over all positions of annotated objects;
- L_f: smooth-L1 of the offsets over Omega_k = {H_k >= tau} (tau = 0.6), mean over Omega;
- L_c: binary cross-entropy of the category logits over Omega, where the label is known.

Objects a dataset does not annotate (RSNA 2024 labels only the five lower discs) are masked
out of every term rather than trained toward an empty map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.lumbar_ccfnet.coding import TAU

WEIGHTS = (1.0, 2.0, 1e-3)  # w_h, w_f, w_c as in the paper


def ccf_loss(
    pred: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    target: dict[str, torch.Tensor],
    weights: tuple[float, float, float] = WEIGHTS,
    tau: float = TAU,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``pred``: (heatmap, offset_x, offset_y, category logits), each (B, K, M, M); ``target``:
    the same names from ``coding.encode`` batched, plus ``present`` and ``class_known`` (B, K)."""
    heat, offx, offy, logit = pred
    present = target["present"][:, :, None, None]
    known = target["class_known"][:, :, None, None]
    cells = heat.shape[-1] * heat.shape[-2]
    n_maps = present.sum().clamp(min=1.0)
    l_h = (((heat - target["heatmap"]) ** 2) * present).sum() / (n_maps * cells)
    omega = (target["heatmap"] >= tau).float() * present
    m = omega.sum().clamp(min=1.0)
    l_fx = (F.smooth_l1_loss(offx, target["offset_x"], reduction="none") * omega).sum() / m
    l_fy = (F.smooth_l1_loss(offy, target["offset_y"], reduction="none") * omega).sum() / m
    omega_c = omega * known
    bce = F.binary_cross_entropy_with_logits(logit, target["category"], reduction="none")
    l_c = (bce * omega_c).sum() / omega_c.sum().clamp(min=1.0)
    w_h, w_f, w_c = weights
    total = w_h * l_h + w_f * (l_fx + l_fy) + w_c * l_c
    parts = {
        "heat": float(l_h.detach()),
        "offset_x": float(l_fx.detach()),
        "offset_y": float(l_fy.detach()),
        "category": float(l_c.detach()),
    }
    return total, parts
