"""Model registry: forward shapes, features, hybrid metadata, θ_E head, 6-channel first-conv init."""
from __future__ import annotations

import pytest
import torch

from training.models import BACKBONES, adapt_first_conv_weight, build_lens_finder_6ch, build_model


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("in_chans", [3, 6])
def test_forward_shapes(name, in_chans):
    torch.manual_seed(0)
    model = build_model(name, in_chans=in_chans).eval()
    x = torch.randn(2, in_chans, 32, 32)
    with torch.no_grad():
        logits = model(x)
        feats = model.features(x)
    assert logits.shape == (2,)
    assert feats.shape == (2, model.num_features)
    assert torch.isfinite(logits).all()


def test_hybrid_meta_and_theta_head():
    model = build_model("small_cnn", in_chans=6, meta_dim=2, theta_head=True).eval()
    x, meta = torch.randn(3, 6, 16, 16), torch.randn(3, 2)
    logit, theta = model(x, meta, return_theta=True)
    assert logit.shape == (3,) and theta.shape == (3,)
    assert model.features(x, meta).shape == (3, model.num_features)
    # the metadata really enters the prediction
    assert not torch.allclose(model(x, meta), model(x, meta + 5.0))
    with pytest.raises(ValueError, match="metadata"):
        model(x)
    with pytest.raises(ValueError, match="theta_head"):
        build_model("small_cnn")(torch.randn(1, 3, 16, 16), return_theta=True)


def test_six_channel_init_copies_rgb_and_zeroes_residuals(tmp_path):
    torch.manual_seed(1)
    src = build_model("resnet18", in_chans=3)
    path = tmp_path / "r18.pt"
    torch.save(src.backbone.state_dict(), path)
    model = build_lens_finder_6ch("resnet18", pretrained=str(path), meta_dim=2)
    w6, w3 = model.backbone.conv1.weight, src.backbone.conv1.weight
    assert w6.shape[1] == 6
    assert torch.equal(w6[:, :3], w3)
    assert torch.count_nonzero(w6[:, 3:]) == 0
    assert torch.equal(model.backbone.layer1[0].conv1.weight, src.backbone.layer1[0].conv1.weight)
    # with zero residual weights, the 6-channel backbone equals the 3-channel one on g, r, z
    x3 = torch.randn(2, 3, 32, 32)
    x6 = torch.cat([x3, torch.randn(2, 3, 32, 32)], 1)
    src.eval()
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model.backbone(x6), src.backbone(x3), atol=1e-5)


def test_repeat_scaled_init_and_bad_inputs(tmp_path):
    w3 = torch.randn(4, 3, 3, 3)
    w6 = adapt_first_conv_weight(w3, 6, "repeat_scaled")
    assert torch.allclose(w6[:, :3] * 2, w3) and torch.allclose(w6[:, 3:], w6[:, :3])
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg99")
    with pytest.raises(ValueError, match="in_chans"):
        build_model("small_cnn", in_chans=4)
    bad = tmp_path / "bad.pt"
    torch.save({"nothing": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="conv1.weight"):
        build_model("resnet18", in_chans=6, pretrained_path=str(bad))
