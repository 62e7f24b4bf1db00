import numpy as np
import pytest

from dhs_gen.injection.hardneg import MIN_ANNULUS_PIXELS, annulus_index, annulus_mask, shuffle_delta


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


def _reference_mask(size, theta_pix, fwhm_pix, center):
    """The annulus from the radius of every pixel of the stamp."""
    axis = np.arange(size) - (size - 1) / 2.0
    r = np.hypot(axis[None, :] - center[0], axis[:, None] - center[1])
    return (r >= max(2.0, theta_pix - 1.5 * fwhm_pix)) & (r < theta_pix + 1.5 * fwhm_pix)


def test_annulus_equals_the_whole_stamp_definition():
    """Only the square about the centre is evaluated: the same pixels for any size, radius and
    centre, on or off the stamp, and for non-finite inputs."""
    rng = np.random.default_rng(2)
    for _ in range(3000):
        size = int(rng.choice([5, 16, 31, 64, 101]))
        theta, fwhm = rng.uniform(-5.0, 70.0), rng.uniform(0.0, 8.0)
        center = tuple(rng.uniform(-1.2, 1.2, 2) * size * rng.choice([0.0, 0.05, 1.0]))
        if rng.random() < 0.02:
            theta, center = rng.choice([np.nan, np.inf, theta]), rng.choice([(np.nan, 0.0), (0.0, np.inf), center])
        expected = _reference_mask(size, theta, fwhm, center)
        assert np.array_equal(annulus_mask(size, theta, fwhm, center), expected)
        assert np.array_equal(annulus_index(size, theta, fwhm, center), np.flatnonzero(expected))


def test_shuffle_is_the_reference_permutation_of_the_annulus():
    """Bit-identical to permuting the whole-stamp annulus with one rng.permutation call."""
    rng = np.random.default_rng(3)
    for seed in range(300):
        delta = rng.normal(size=(3, 64, 64)).astype(np.float32)
        theta, fwhm, center = rng.uniform(1.0, 14.0), rng.uniform(2.0, 7.0), tuple(rng.normal(0, 2.0, 2))
        index = np.flatnonzero(_reference_mask(64, theta, fwhm, center))
        ref_rng, rng_under_test = np.random.default_rng(seed), np.random.default_rng(seed)
        expected = delta.copy().reshape(3, -1)
        if index.size > MIN_ANNULUS_PIXELS:
            expected[:, index] = expected[:, index[ref_rng.permutation(index.size)]]
        out = shuffle_delta(delta, theta, fwhm, rng_under_test, center)
        assert out.tobytes() == expected.tobytes()
        assert rng_under_test.bit_generator.state == ref_rng.bit_generator.state
