"""Per-sample weighted losses on logits: binary cross-entropy and focal loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def weighted_bce(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum(w * BCE(logit, y)) / sum(w) (float32 accumulation)."""
    loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
    w = weights.float()
    return (w * loss).sum() / w.sum().clamp_min(1e-12)


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, alpha: float = 0.25,
               gamma: float = 2.0) -> torch.Tensor:
    """Weighted focal loss (Lin et al. 2017): α_t (1 - p_t)^γ BCE; ``alpha`` < 0 disables α."""
    logits, labels = logits.float(), labels.float()
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    p_t = torch.exp(-bce)
    loss = (1 - p_t) ** gamma * bce
    if alpha >= 0:
        loss = (alpha * labels + (1 - alpha) * (1 - labels)) * loss
    w = weights.float()
    return (w * loss).sum() / w.sum().clamp_min(1e-12)


def classification_loss(kind: str, logits, labels, weights, alpha: float = 0.25, gamma: float = 2.0):
    """``kind``: bce | focal."""
    if kind == "bce":
        return weighted_bce(logits, labels, weights)
    if kind == "focal":
        return focal_loss(logits, labels, weights, alpha, gamma)
    raise ValueError(f"unknown loss {kind!r}; choose bce or focal")
