"""Weighted BCE and focal loss against their definitions."""
from __future__ import annotations

import math

import pytest
import torch

from training.losses import classification_loss, focal_loss, weighted_bce


def test_weighted_bce_is_the_weighted_mean():
    logits = torch.tensor([2.0, -1.0, 0.5])
    y = torch.tensor([1.0, 0.0, 0.0])
    w = torch.tensor([1.0, 2.0, 0.0])
    per = [math.log1p(math.exp(-2.0)), math.log1p(math.exp(-1.0))]
    assert weighted_bce(logits, y, w).item() == pytest.approx((per[0] + 2 * per[1]) / 3, rel=1e-6)


def test_focal_reduces_to_bce_and_downweights_easy_examples():
    logits = torch.tensor([4.0, -0.2, 0.3, -3.0])
    y = torch.tensor([1.0, 1.0, 0.0, 0.0])
    w = torch.ones(4)
    assert focal_loss(logits, y, w, alpha=-1, gamma=0).item() == pytest.approx(weighted_bce(logits, y, w).item())
    easy = focal_loss(logits[:1], y[:1], w[:1], alpha=-1, gamma=2) / weighted_bce(logits[:1], y[:1], w[:1])
    hard = focal_loss(logits[1:2], y[1:2], w[1:2], alpha=-1, gamma=2) / weighted_bce(logits[1:2], y[1:2], w[1:2])
    assert easy < 0.01 < hard
    a = focal_loss(logits, y, w, alpha=0.25, gamma=2)
    assert classification_loss("focal", logits, y, w, 0.25, 2).item() == pytest.approx(a.item())
    with pytest.raises(ValueError, match="unknown loss"):
        classification_loss("hinge", logits, y, w)
