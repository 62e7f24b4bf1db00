"""Lens-finder models: a registry of backbones behind one wrapper with a logit head.

``build_model(name, in_chans, ...)`` returns a :class:`LensFinderNet`: ``model(x, meta=None)`` gives
logits of shape (B,); ``model.features(x, meta=None)`` the penultimate features (B, D) used by
the injection-realism probe; ``model(x, meta, return_theta=True)`` adds the θ_E regression head
output (arcsec). Inputs are preprocessed tensors (B, in_chans, H, W) — see training.preprocess.

Backbones: ``resnet18``, ``efficientnet_b0``, ``convnext_tiny`` (timm, ``pretrained=False``;
weights only from a local file) and ``small_cnn`` (3 conv layers, a sanity model).
``build_lens_finder_6ch`` is the hybrid: a 6-channel backbone fused with a metadata MLP
(psfsize_r [arcsec], psfdepth_r_mag5 [AB mag], ... standardised by the preprocessing).
"""
from __future__ import annotations

import io
from typing import Literal, get_args

import torch
from torch import nn

ModelName = Literal["resnet18", "efficientnet_b0", "convnext_tiny", "small_cnn"]
InitMode = Literal["copy_or_zero", "repeat_scaled"]
BACKBONES = get_args(ModelName)
TIMM_BACKBONES = BACKBONES[:3]
INIT_MODES = get_args(InitMode)


class SmallCNN(nn.Module):
    """Three conv blocks and global average pooling: the sanity model (a few k parameters)."""

    def __init__(self, in_chans: int = 3, width: int = 16):
        super().__init__()
        layers, c = [], in_chans
        for out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c = out
        self.body = nn.Sequential(*layers)
        self.num_features = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))


def _first_conv(backbone: nn.Module) -> tuple[str, nn.Conv2d]:
    """Name and module of a backbone's first convolution (the input stem)."""
    name = getattr(backbone, "pretrained_cfg", {}).get("first_conv")
    if name:
        return name, backbone.get_submodule(name)
    for mod_name, mod in backbone.named_modules():
        if isinstance(mod, nn.Conv2d):
            return mod_name, mod
    raise ValueError("backbone has no Conv2d layer")


def _load_state_dict(path: str) -> dict:
    from dhs_gen.storage import read_bytes

    state = torch.load(io.BytesIO(read_bytes(path)), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


def adapt_first_conv_weight(weight3: torch.Tensor, in_chans: int, init: str = "copy_or_zero") -> torch.Tensor:
    """First-conv weights (O, in_chans, k, k) from 3-channel weights (O, 3, k, k).

    ``copy_or_zero``: channels 0-2 copied, extra channels zero (a 6-channel model starts as the
    3-channel one); ``repeat_scaled``: channels tiled and scaled by 3 / in_chans.
    """
    if init not in INIT_MODES:
        raise ValueError(f"unknown init {init!r}; choose from {INIT_MODES}")
    out, c3 = weight3.shape[:2]
    if in_chans == c3:
        return weight3.clone()
    if init == "copy_or_zero":
        new = weight3.new_zeros((out, in_chans, *weight3.shape[2:]))
        n = min(in_chans, c3)
        new[:, :n] = weight3[:, :n]
        return new
    reps = -(-in_chans // c3)
    return weight3.repeat(1, reps, 1, 1)[:, :in_chans] * (c3 / in_chans)


def _build_backbone(name: str, in_chans: int, pretrained_path: str | None, init: str) -> nn.Module:
    if name == "small_cnn":
        backbone = SmallCNN(in_chans)
        if pretrained_path:
            backbone.load_state_dict(_load_state_dict(pretrained_path))
        return backbone
    if name not in TIMM_BACKBONES:
        raise ValueError(f"unknown model {name!r}; choose from {BACKBONES}")
    import timm

    backbone = timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans)
    if pretrained_path:
        state = {k: v for k, v in _load_state_dict(pretrained_path).items()
                 if not k.startswith(("fc.", "classifier.", "head.fc."))}
        conv_name, _ = _first_conv(backbone)
        key = f"{conv_name}.weight"
        if key not in state:
            raise ValueError(f"{pretrained_path}: no {key!r} in the weights (not a {name} state dict?)")
        state[key] = adapt_first_conv_weight(state[key], in_chans, init)
        missing, unexpected = backbone.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{pretrained_path}: weights do not fit {name}: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
    return backbone


class LensFinderNet(nn.Module):
    """Backbone → pooled features [⊕ metadata MLP] → logit head (+ optional θ_E head)."""

    def __init__(self, backbone: nn.Module, num_features: int, meta_dim: int = 0, meta_hidden: int = 32,
                 theta_head: bool = False):
        super().__init__()
        self.backbone = backbone
        self.meta_dim = int(meta_dim)
        self.meta_mlp = (nn.Sequential(nn.Linear(meta_dim, meta_hidden), nn.ReLU(inplace=True),
                                       nn.Linear(meta_hidden, meta_hidden), nn.ReLU(inplace=True))
                         if meta_dim else None)
        self.num_features = num_features + (meta_hidden if meta_dim else 0)
        self.head = nn.Linear(self.num_features, 1)
        self.theta_head = nn.Linear(self.num_features, 1) if theta_head else None
        self.build_spec: dict = {}

    def features(self, x: torch.Tensor, meta: torch.Tensor | None = None) -> torch.Tensor:
        """Penultimate features (B, D): pooled image features, concatenated with the metadata MLP."""
        feats = self.backbone(x)
        if self.meta_mlp is not None:
            if meta is None:
                raise ValueError(f"this model needs metadata of width {self.meta_dim} (meta=None given)")
            if meta.shape[-1] != self.meta_dim:
                raise ValueError(f"metadata width {meta.shape[-1]} != model meta_dim {self.meta_dim}")
            feats = torch.cat([feats, self.meta_mlp(meta.to(feats.dtype))], dim=1)
        return feats

    def forward(self, x: torch.Tensor, meta: torch.Tensor | None = None, return_theta: bool = False):
        feats = self.features(x, meta)
        logit = self.head(feats).squeeze(1)
        if not return_theta:
            return logit
        if self.theta_head is None:
            raise ValueError("model was built without theta_head")
        return logit, self.theta_head(feats).squeeze(1)


def build_model(name: str, in_chans: int = 3, pretrained_path: str | None = None, init: str = "copy_or_zero",
                meta_dim: int = 0, theta_head: bool = False, meta_hidden: int = 32) -> LensFinderNet:
    """A lens finder from the registry (``resnet18``, ``efficientnet_b0``, ``convnext_tiny``, ``small_cnn``).

    ``pretrained_path``: a local 3- (or ``in_chans``-) channel state dict of the backbone; the
    first convolution is adapted to ``in_chans`` by ``init`` (see adapt_first_conv_weight).
    ``meta_dim`` > 0 adds the metadata MLP (the hybrid); ``theta_head`` a θ_E regression head.
    The build arguments are kept in ``model.build_spec`` (export rebuilds the model from them).
    """
    if in_chans not in (1, 3, 6):
        raise ValueError(f"in_chans must be 1, 3 or 6, got {in_chans}")
    if init not in INIT_MODES:
        raise ValueError(f"unknown init {init!r}; choose from {INIT_MODES}")
    backbone = _build_backbone(name, in_chans, pretrained_path, init)
    model = LensFinderNet(backbone, backbone.num_features, meta_dim=meta_dim, meta_hidden=meta_hidden,
                      theta_head=theta_head)
    model.build_spec = {"name": name, "in_chans": in_chans, "meta_dim": meta_dim, "theta_head": theta_head,
                        "meta_hidden": meta_hidden}
    return model


def build_lens_finder_6ch(arch: str = "resnet18", pretrained: str | None = None, init: str = "copy_or_zero",
                  meta_dim: int = 2, theta_head: bool = False) -> LensFinderNet:
    """The hybrid: 6-channel input (g, r, z + high-pass residuals) fused with a metadata MLP.

    ``pretrained``: local 3-channel weights of ``arch``; residual channels start at zero.
    ``meta_dim``: number of metadata inputs (default 2: psfsize_r, psfdepth_r_mag5).
    """
    return build_model(arch, in_chans=6, pretrained_path=pretrained, init=init, meta_dim=meta_dim,
                       theta_head=theta_head)
