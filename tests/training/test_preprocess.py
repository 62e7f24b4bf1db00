"""Batched preprocessing and augmentation: definitions checked against per-stamp numpy."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from training.augment import Augment, add_noise, dihedral, random_blur, shift
from training.preprocess import (
    Preprocess,
    Preprocess6CH,
    center_crop,
    gaussian_blur,
    make_outer_mask,
    normalize,
)
from training.preprocess import PreprocessSpec as Spec


def _numpy_outer_norm(img: np.ndarray, r_in: float, clip: float) -> np.ndarray:
    h, w = img.shape[-2:]
    yy, xx = np.mgrid[:h, :w]
    outer = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) >= r_in
    out = np.empty_like(img)
    for c in range(img.shape[0]):
        v = img[c][outer]
        med = np.quantile(v, 0.5, method="lower")
        mad = np.quantile(np.abs(v - med), 0.5, method="lower")
        out[c] = np.clip((img[c] - med) / (1.4826 * mad), -clip, clip)
    return out


def test_outer_mad_normalisation_matches_numpy_per_stamp():
    rng = np.random.default_rng(0)
    x = (rng.normal(0.01, 0.02, (4, 3, 24, 24)) + rng.uniform(0, 1, (4, 3, 1, 1))).astype(np.float32)
    x[:, :, 10:14, 10:14] += 5.0  # a bright core must not move the background statistics
    got = normalize(torch.from_numpy(x), Spec(outer_r_frac=0.25, clip=10)).numpy()
    for i in range(4):
        np.testing.assert_allclose(got[i], _numpy_outer_norm(x[i], 6.0, 10.0), rtol=1e-4, atol=1e-4)
    assert got.max() == pytest.approx(10.0)  # clipped core


def test_outer_mask_and_crop():
    mask = make_outer_mask(64, 64, 16).numpy()
    yy, xx = np.mgrid[:64, :64]
    np.testing.assert_array_equal(mask, np.hypot(yy - 31.5, xx - 31.5) >= 16)
    with pytest.raises(ValueError, match="empty"):
        make_outer_mask(8, 8, 10)
    x = torch.zeros(1, 3, 101, 101)
    x[..., 50, 50] = 1
    c = center_crop(x, 64)
    assert c.shape == (1, 3, 64, 64) and c[0, 0, 32, 32] == 1
    with pytest.raises(ValueError, match="larger"):
        center_crop(x, 128)


def test_asinh_and_six_channel_view():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(0, 0.01, (2, 3, 32, 32)).astype(np.float32))
    lin = normalize(x, Spec(norm="outer_mad"))
    ash = normalize(x, Spec(norm="asinh", asinh_scale=2.0))
    torch.testing.assert_close(ash, torch.asinh(lin / 2.0), atol=1e-5, rtol=1e-5)
    six = Preprocess({"six_channel": True, "crop": 24})(x)
    assert six.shape == (2, 6, 24, 24)
    torch.testing.assert_close(six[:, :3], normalize(center_crop(x, 24), Spec()))
    flat = torch.full((1, 3, 16, 16), 2.0)
    assert torch.allclose(Preprocess6CH(3.0)(flat)[:, 3:], torch.zeros(1, 3, 16, 16), atol=1e-5)
    blurred = gaussian_blur(torch.from_numpy(np.pad(np.ones((1, 1, 1, 1), np.float32), ((0, 0), (0, 0), (8, 8), (8, 8)))), 1.5)
    assert blurred.sum().item() == pytest.approx(1.0, rel=1e-4) and blurred.max() < 0.1


def test_meta_standardisation():
    pre = Preprocess({"meta_columns": ["psfsize_r"], "meta_mean": [1.2], "meta_std": [0.2]})
    out = pre.meta(torch.tensor([[1.4], [float("nan")]]))
    torch.testing.assert_close(out, torch.tensor([[1.0], [0.0]]))
    with pytest.raises(ValueError, match="required"):
        pre.meta(None)
    assert Preprocess({}).meta(None) is None


def _gen(seed=0):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def test_dihedral_is_a_symmetry_per_stamp():
    x = torch.randn(16, 3, 12, 12)
    y = dihedral(x, _gen())
    syms = lambda a: [torch.rot90(b, k, (-2, -1)) for b in (a, a.flip(-1)) for k in range(4)]  # noqa: E731
    for i in range(16):
        assert any(torch.equal(y[i], s) for s in syms(x[i]))
    assert not torch.equal(y, x)
    assert torch.equal(dihedral(x, _gen(5)), dihedral(x, _gen(5)))  # same seed, same draw


def test_shift_moves_a_point_by_at_most_max():
    x = torch.zeros(32, 1, 21, 21)
    x[:, :, 10, 10] = 1
    y = shift(x, 3, _gen())
    pos = torch.nonzero(y[:, 0] == 1)
    assert len(pos) == 32
    d = (pos[:, 1:] - 10).abs()
    assert d.max() <= 3 and d.max() > 0
    assert len({(int(a), int(b)) for a, b in pos[:, 1:]}) > 5


def test_blur_and_noise_are_mild():
    x = torch.zeros(8, 3, 21, 21)
    x[..., 10, 10] = 1
    y = random_blur(x, 1.0, 0.8, _gen())
    assert torch.allclose(y.sum(dim=(-2, -1)), torch.ones(8, 3), atol=1e-4)
    assert (y[..., 10, 10] <= 1 + 1e-6).all() and (y[..., 10, 10] > 0.2).all() and (y[..., 10, 10] < 0.9).any()
    n = add_noise(torch.zeros(64, 3, 16, 16), 0.05, _gen())
    assert float(n.std()) == pytest.approx(0.05, rel=0.05)
    aug = Augment({"max_shift_px": 2, "blur_prob": 0.5})
    assert aug(torch.randn(4, 3, 16, 16), _gen()).shape == (4, 3, 16, 16)


def test_matmul_blur_equals_scipy_mirror_filter():
    from scipy.ndimage import gaussian_filter

    x = np.random.default_rng(3).normal(size=(2, 3, 20, 20)).astype(np.float32)
    got = gaussian_blur(torch.from_numpy(x), 2.0).numpy()
    ref = gaussian_filter(x, sigma=(0, 0, 2.0, 2.0), mode="mirror", truncate=3.0)
    np.testing.assert_allclose(got, ref, atol=1e-5)
