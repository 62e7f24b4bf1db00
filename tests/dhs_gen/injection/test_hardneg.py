import numpy as np
import pytest

from dhs_gen.injection.hardneg import MIN_ANNULUS_PIXELS, annulus_mask, shuffle_delta


def _ring(size=64, radius=8.0, width=1.5):
    axis = np.arange(size) - (size - 1) / 2
    r = np.hypot(axis[None, :], axis[:, None])
    arc = np.exp(-0.5 * ((r - radius) / width) ** 2) * (np.arctan2(axis[:, None], axis[None, :]) > 0.5)
    return np.stack([arc, 2 * arc, 3 * arc]).astype(np.float32)


def test_annulus_follows_the_legacy_definition():
    mask = annulus_mask(64, theta_pix=8.0, fwhm_pix=4.0)
    axis = np.arange(64) - 31.5
    r = np.hypot(axis[None, :], axis[:, None])
    assert np.array_equal(mask, (r >= 2.0) & (r < 14.0))  # max(2, 8 - 6) .. 8 + 6
    mask = annulus_mask(64, theta_pix=10.0, fwhm_pix=2.0)
    assert np.array_equal(mask, (r >= 7.0) & (r < 13.0))


def test_shuffle_keeps_annulus_flux_and_radii_but_breaks_the_arc():
    delta = _ring()
    out = shuffle_delta(delta, 8.0, 3.0, np.random.default_rng(0))
    mask = annulus_mask(64, 8.0, 3.0)
    for b in range(3):
        assert out[b][mask].sum() == pytest.approx(delta[b][mask].sum(), rel=1e-6)
        assert np.array_equal(np.sort(out[b][mask]), np.sort(delta[b][mask]))
        assert np.array_equal(out[b][~mask], delta[b][~mask])
    # one permutation for all bands: band ratios are preserved pixel by pixel
    np.testing.assert_allclose(out[1], 2 * out[0], rtol=1e-6, atol=1e-30)
    # coherence: the arc's light is concentrated on one side; after shuffling it is not
    upper = np.arange(64)[:, None] > 31.5
    assert delta[0][upper & mask].sum() / delta[0][mask].sum() > 0.95
    assert 0.3 < out[0][upper & mask].sum() / out[0][mask].sum() < 0.7


def test_tiny_annulus_is_left_alone():
    delta = _ring(size=16, radius=1.0, width=0.5)
    mask = annulus_mask(16, 0.5, 0.1)
    assert mask.sum() <= MIN_ANNULUS_PIXELS
    assert np.array_equal(shuffle_delta(delta, 0.5, 0.1, np.random.default_rng(0)), delta)
