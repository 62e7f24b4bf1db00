"""Hard negatives: azimuthal sectors of the 99.5%-flux annulus shuffled, no sub-PSF speckle."""
import numpy as np
import pytest

from dhs_gen.injection.hardneg import (
    MIN_SECTORS,
    annulus_mask,
    sector_count,
    sector_counts,
    sector_permutation,
    sector_plan,
    seeded_sector_plan,
    shuffle_annulus,
    shuffle_delta,
)
from dhs_gen.lensing import render_lensed_sersic

PIX = 0.262
FWHM_R = 1.30


def _ring(size=64, radius=12.0, width=2.2):
    """A smooth half ring (upper half of the stamp, radial width of a 1.3\" PSF), bands in the ratio
    1 : 2 : 3."""
    axis = np.arange(size) - (size - 1) / 2
    r = np.hypot(axis[None, :], axis[:, None])
    phi = np.arctan2(axis[:, None], axis[None, :])
    arc = np.exp(-0.5 * ((r - radius) / width) ** 2) / (1 + np.exp(-(phi - 0.4) / 0.15)) \
        / (1 + np.exp((phi - 2.7) / 0.15))
    return np.stack([arc, 2 * arc, 3 * arc]).astype(np.float32)


@pytest.fixture(scope="module")
def arcs():
    """40 realistic r-band-bright lensed arcs (SIE + shear, θ_E 0.6-2.8", PSF-convolved, 64 px)."""
    rng = np.random.default_rng(5)
    n = 40
    theta = rng.uniform(0.6, 2.8, n)
    lens = {"theta_E": theta, "e1": rng.normal(0, 0.1, n), "e2": rng.normal(0, 0.1, n),
            "center_x": rng.normal(0, 0.2, n), "center_y": rng.normal(0, 0.2, n),
            "gamma1": rng.normal(0, 0.04, n), "gamma2": rng.normal(0, 0.04, n)}
    beta, ang = theta * rng.uniform(0, 0.7, n), rng.uniform(0, 2 * np.pi, n)
    source = {"R_sersic": rng.uniform(0.1, 0.6, n), "n_sersic": rng.uniform(0.7, 3.0, n),
              "e1": rng.normal(0, 0.15, n), "e2": rng.normal(0, 0.15, n),
              "center_x": lens["center_x"] + beta * np.cos(ang), "center_y": lens["center_y"] + beta * np.sin(ang),
              "flux_g": np.ones(n), "flux_r": np.full(n, 2.0), "flux_z": np.full(n, 3.0)}
    images = render_lensed_sersic(lens, source, np.tile([1.45, FWHM_R, 1.15], (n, 1)))
    centers = np.stack([lens["center_x"], lens["center_y"]], axis=1) / PIX
    return images, theta / PIX, centers


def _legacy_annulus(theta_pix, fwhm_pix, center):
    """The earlier rule: [max(2, θ − 1.5 FWHM), θ + 1.5 FWHM) about the lens centre."""
    axis = np.arange(64) - 31.5
    r = np.hypot(axis[None, :] - center[0], axis[:, None] - center[1])
    return (r >= max(2.0, theta_pix - 1.5 * fwhm_pix)) & (r < theta_pix + 1.5 * fwhm_pix)


def _radial_moments(image, r):
    """(flux-weighted mean radius, rms spread about it) [pixels]."""
    mean = (image * r).sum() / image.sum()
    return mean, np.sqrt((image * (r - mean) ** 2).sum() / image.sum())


def _high_k_fraction(image, fwhm_pix):
    """Fraction of the image's power at spatial frequencies above 1 / FWHM [cycles/pixel]."""
    power = np.abs(np.fft.fft2(image)) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(image.shape[1]), np.fft.fftfreq(image.shape[0])))
    return power[k > 1.0 / fwhm_pix].sum() / power.sum()


def test_the_shuffled_annulus_holds_99_percent_of_the_arc_flux(arcs):
    """Outside the shuffled annulus < 1% of the arc flux (the earlier θ_E ± 1.5 FWHM annulus left
    up to a third out); inside, the flux of every band is kept within 1%."""
    images, theta, centers = arcs
    fwhm = FWHM_R / PIX
    outside, legacy_outside = [], []
    for i, delta in enumerate(images):
        center = tuple(centers[i])
        r_in, r_out = shuffle_annulus(delta, center)
        mask = annulus_mask(delta.shape[-2:], r_in, r_out, center)
        outside.append(delta[1][~mask].sum() / delta[1].sum())
        legacy_outside.append(delta[1][~_legacy_annulus(theta[i], fwhm, center)].sum() / delta[1].sum())
        out = shuffle_delta(delta, theta[i], fwhm, np.random.default_rng(i), center)
        np.testing.assert_allclose(out.sum(axis=(1, 2)), delta.sum(axis=(1, 2)), rtol=0.01)
    assert max(outside) < 0.01
    assert max(legacy_outside) > 0.04  # the reason for the change


def test_no_sub_psf_speckle(arcs):
    """The fraction of power above 1/FWHM of the shuffled arc is, in the median, that of the arc
    itself (within 1.5x; never 10x); the earlier pixel permutation raised it ~600x."""
    images, theta, centers = arcs
    fwhm = FWHM_R / PIX
    ratio, legacy = [], []
    for i, delta in enumerate(images):
        center = tuple(centers[i])
        out = shuffle_delta(delta, theta[i], fwhm, np.random.default_rng(i), center)
        ratio.append(_high_k_fraction(out[1], fwhm) / _high_k_fraction(delta[1], fwhm))
        index = np.flatnonzero(_legacy_annulus(theta[i], fwhm, center))
        old = delta.reshape(3, -1).copy()
        old[:, index] = old[:, index[np.random.default_rng(i).permutation(index.size)]]
        legacy.append(_high_k_fraction(old[1].reshape(64, 64), fwhm) / _high_k_fraction(delta[1], fwhm))
    assert np.median(ratio) < 1.5 and max(ratio) < 10
    assert np.median(legacy) > 100


def test_shuffle_breaks_the_arc_keeps_colours_and_radii():
    delta = _ring()
    fwhm = 5.0
    upper = np.broadcast_to(np.arange(64)[:, None] > 31.5, (64, 64))
    assert delta[0][upper].sum() / delta[0].sum() > 0.95
    fractions = []
    for seed in range(6):
        out = shuffle_delta(delta, 12.0, fwhm, np.random.default_rng(seed))
        np.testing.assert_allclose(out[1], 2 * out[0], rtol=1e-5, atol=1e-7)  # colours, pixel by pixel
        np.testing.assert_allclose(out.sum(axis=(1, 2)), delta.sum(axis=(1, 2)), rtol=0.01)
        axis = np.arange(64) - 31.5
        r = np.hypot(axis[None, :], axis[:, None])
        # the radial profile is kept: flux-weighted mean radius and spread
        assert _radial_moments(out[0], r)[0] == pytest.approx(_radial_moments(delta[0], r)[0], abs=0.1)
        assert _radial_moments(out[0], r)[1] == pytest.approx(_radial_moments(delta[0], r)[1], rel=0.05)
        fractions.append(out[0][upper].sum() / out[0].sum())
    assert min(fractions) < 0.8  # light moved to the other half of the ring
    assert not np.allclose(shuffle_delta(delta, 12.0, fwhm, np.random.default_rng(0)),
                           shuffle_delta(delta, 12.0, fwhm, np.random.default_rng(1)))


def test_sector_rules():
    rng = np.random.default_rng(0)
    for n in (3, 5, 8):
        for _ in range(200):
            perm = sector_permutation(rng, n)
            assert sorted(perm) == list(range(n))
            assert len(set((perm - np.arange(n)) % n)) > 1  # never a rigid rotation
    assert sector_count(2.0, 5.0) == MIN_SECTORS  # unresolved arc: three sectors
    assert sector_count(12.0, 5.0) == 7 and sector_count(40.0, 5.0) == 8
    assert sector_count(np.nan, 5.0) == MIN_SECTORS
    theta = np.array([2.0, 12.0, 40.0, np.nan, 5.0, np.inf, 7.9577471545947667, 1e300, 3.0])
    fwhm = np.array([5.0, 5.0, 5.0, 5.0, np.nan, 1.0, 1.0, 1e-300, 0.0])
    assert sector_counts(theta, fwhm).tolist() == [sector_count(t, f) for t, f in zip(theta, fwhm)] \
        == [MIN_SECTORS, 7, 8, MIN_SECTORS, MIN_SECTORS, MIN_SECTORS, 8, 8, MIN_SECTORS]


def test_no_light_is_left_alone():
    zero = np.zeros((3, 16, 16), np.float32)
    assert shuffle_annulus(zero) == (0.0, 0.0)
    assert np.array_equal(shuffle_delta(zero, 3.0, 4.0, np.random.default_rng(0)), zero)


# --- the compiled kernels against the numpy definition ------------------------------------------

def _reference_annulus(delta, center, flux_fraction=0.995):
    """(r_in, r_out): whole RADIAL_BIN bins of the radial cumulative positive flux, (1 - F)/2 left
    inside and outside (the numpy definition the kernel replaced)."""
    c, h, w = delta.shape
    flux = np.clip(delta, 0.0, None).sum(axis=0, dtype=np.float64).ravel()
    total = flux.sum()
    if not total > 0:
        return 0.0, 0.0
    radius = np.hypot((np.arange(w) - (w - 1) / 2.0 - center[0])[None, :],
                      (np.arange(h) - (h - 1) / 2.0 - center[1])[:, None])
    cum = np.cumsum(np.bincount((radius.ravel() / 0.25).astype(np.int64), weights=flux)) / total
    tail = 0.5 * (1.0 - flux_fraction)
    first = int(np.searchsorted(cum, tail, side="right"))
    last = min(int(np.searchsorted(cum, 1.0 - tail, side="left")), len(cum) - 1)
    return first * 0.25, (last + 1) * 0.25


def _reference_shuffle(delta, theta_pix, fwhm_pix, rng, center=(0.0, 0.0)):
    """The hard-negative shuffle written out with whole-array numpy, step by step as the module
    docstring defines it (float32, bilinear samples with a zero border)."""
    delta = np.asarray(delta, dtype=np.float32)
    c, h, w = delta.shape
    radius = np.hypot((np.arange(w) - (w - 1) / 2.0 - center[0])[None, :],
                      (np.arange(h) - (h - 1) / 2.0 - center[1])[:, None])
    r_in, r_out = _reference_annulus(delta, center)
    out = delta.copy()
    if r_out <= 0:
        return out
    ramp = 2.0 * max(float(fwhm_pix), 1.0)
    n = sector_count(theta_pix, max(float(fwhm_pix), 1.0))
    perm = sector_permutation(rng, n)
    inside = np.flatnonzero((radius >= r_in - ramp) & (radius <= r_out + ramp))
    rows, cols = np.divmod(inside, w)
    r = radius.ravel()[inside].astype(np.float32)
    x = (cols - ((w - 1) / 2.0 + center[0])).astype(np.float32)
    y = (rows - ((h - 1) / 2.0 + center[1])).astype(np.float32)
    width = np.float32(2.0 * np.pi / n)
    u = np.mod(np.arctan2(y, x), np.float32(2.0 * np.pi)) / width
    k = u.astype(np.int64) % n
    f = u - np.floor(u)
    half = np.minimum(np.float32(0.5 * ramp) / np.maximum(r, np.float32(1e-6)) / width, np.float32(0.5))
    t = np.minimum(np.minimum(f, 1.0 - f) / half, np.float32(1.0))
    w_own = np.float32(0.5) + np.float32(0.5) * np.sin(np.float32(0.5 * np.pi) * t)
    other = np.where(f < 0.5, k - 1, k + 1) % n

    def sample(sector):
        move = (perm[sector] - sector) % n
        cos, sin = np.cos(move * 2.0 * np.pi / n).astype(np.float32), np.sin(move * 2.0 * np.pi / n).astype(np.float32)
        padded = np.zeros((c, h + 2, w + 2), np.float32)
        padded[:, 1:-1, 1:-1] = delta
        row = np.clip(sin * x + cos * y + np.float32((h - 1) / 2.0 + center[1]) + np.float32(1), 0, np.float32(h + 1 - 1e-3))
        col = np.clip(cos * x - sin * y + np.float32((w - 1) / 2.0 + center[0]) + np.float32(1), 0, np.float32(w + 1 - 1e-3))
        r0, c0 = row.astype(np.int64), col.astype(np.int64)
        fr, fc = (row - r0).astype(np.float32), (col - c0).astype(np.float32)
        v00, v01, v10, v11 = padded[:, r0, c0], padded[:, r0, c0 + 1], padded[:, r0 + 1, c0], padded[:, r0 + 1, c0 + 1]
        top = v00 + (v01 - v00) * fc
        return top + (v10 + (v11 - v10) * fc - top) * fr

    shuffled = w_own * sample(k) + (1.0 - w_own) * sample(other)
    taper = np.cos(np.float32(0.5 * np.pi / ramp) * np.clip(np.maximum(r_in - r, r - r_out), 0.0, ramp)) ** 2
    flat = out.reshape(c, h * w)
    flat[:, inside] = taper * shuffled + (1.0 - taper) * flat[:, inside]
    return out


def _cases(arcs):
    """(delta, θ_E [px], FWHM [px], centre (x, y) [px]) cases: the realistic arcs, arcs near the
    stamp edge (the rotated samples leave the stamp), θ_E below the FWHM, odd shapes and bands."""
    images, theta, centers = arcs
    fwhm = FWHM_R / PIX
    cases = [(images[i], theta[i], fwhm, tuple(centers[i])) for i in range(len(images))]
    shifted = np.roll(images[:6], (20, -17), axis=(2, 3))  # lens far off centre: the annulus crosses the edge
    cases += [(shifted[i], theta[i], fwhm, (centers[i][0] - 17, centers[i][1] + 20)) for i in range(6)]
    small = np.argsort(theta)[:4]  # θ_E ≲ FWHM (unresolved: 3 sectors)
    cases += [(images[i], 0.6 * fwhm, fwhm, tuple(centers[i])) for i in small]
    ring = _ring(size=48, radius=9.0)
    cases += [(ring[:, 3:45, :], 9.0, 3.0, (0.0, 1.5)),  # H != W
              (ring[:1], 9.0, 3.0, (0.3, -0.2)),  # one band
              (np.concatenate([ring, ring[:2]]), 9.0, 7.0, (-0.6, 0.4)),  # five bands
              (images[0], theta[0], 0.4, tuple(centers[0])),  # FWHM < 1 pixel: fades of 2 pixels
              (images[1], theta[1], 40.0, tuple(centers[1]))]  # fades wider than the stamp
    return cases


def test_kernels_equal_the_numpy_definition(arcs):
    """Annulus radii exactly; shuffled pixels to float32 rounding (1e-5 of the peak, measured
    2e-6): polynomial atan2/sin/cos and products by reciprocals instead of divisions."""
    for delta, theta, fwhm, center in _cases(arcs):
        assert shuffle_annulus(delta, center) == _reference_annulus(delta, center)
        ref = _reference_shuffle(delta, theta, fwhm, np.random.default_rng(7), center)
        got = shuffle_delta(delta, theta, fwhm, np.random.default_rng(7), center)
        assert got.dtype == np.float32 and got.shape == delta.shape
        assert np.abs(got - ref).max() <= 1e-5 * np.abs(delta).max(), (theta, fwhm, center)
        r_in, r_out = _reference_annulus(delta, center)
        ramp = 2.0 * max(fwhm, 1.0)
        beyond = ~annulus_mask(delta.shape[-2:], r_in - ramp - 1e-3, r_out + ramp + 1e-3, center)
        assert np.array_equal(got[:, beyond], delta[:, beyond])  # pixels beyond the fades are Δ, bit for bit


def test_no_light_leaves_delta_and_its_generator_alone(arcs):
    """A Δ without positive flux comes back unchanged and its generator is not drawn from; a lit
    one draws its permutation."""
    images, theta, centers = arcs
    rng = np.random.default_rng(103)
    dark = np.zeros_like(images[3])
    assert np.array_equal(shuffle_delta(dark, theta[3], FWHM_R / PIX, rng, tuple(centers[3])), dark)
    assert rng.bit_generator.state == np.random.default_rng(103).bit_generator.state
    shuffle_delta(images[3], theta[3], FWHM_R / PIX, rng, tuple(centers[3]))
    assert rng.bit_generator.state != np.random.default_rng(103).bit_generator.state


def test_non_finite_light_is_left_alone(arcs):
    """Δ with a NaN or inf pixel has no defined flux annulus, and a NaN FWHM no fades: Δ comes back
    unchanged, as the numpy definition gives it."""
    images, theta, centers = arcs
    for bad in (np.nan, np.inf):
        delta = images[0].copy()
        delta[1, 5, 7] = bad
        assert shuffle_annulus(delta, tuple(centers[0])) == (0.0, 0.0)
        out = shuffle_delta(delta, theta[0], 5.0, np.random.default_rng(0), tuple(centers[0]))
        assert np.array_equal(out, delta, equal_nan=True)
    rng = np.random.default_rng(0)  # no FWHM: no fades defined; the permutation is drawn all the same
    out = shuffle_delta(images[0], theta[0], np.nan, rng, tuple(centers[0]))
    assert np.array_equal(out, _reference_shuffle(images[0], theta[0], np.nan, np.random.default_rng(0), tuple(centers[0])))
    assert np.array_equal(out, images[0]) and rng.bit_generator.state != np.random.default_rng(0).bit_generator.state


def test_seeded_permutations_are_the_generators_permutations():
    """seeded_sector_plan (each row's PCG64 stepped in compiled code) gives what sector_plan gives
    with the rows' default_rng([seed, stream]) generators: 3-8 sectors, rotations redrawn, a NaN
    FWHM (no sectors), 64-bit seeds."""
    from dhs_gen.injection.streams import generators

    rng = np.random.default_rng(2)
    seeds = np.concatenate([[0, 1, 2**32 - 1, 2**32, 2**63 - 1], rng.integers(0, 2**63, 3000)]).astype(np.int64)
    theta, fwhm = rng.uniform(1, 40, len(seeds)), rng.uniform(2, 8, len(seeds))
    fwhm[3] = np.nan
    expected = sector_plan(theta, fwhm, generators(seeds, 3))
    got = seeded_sector_plan(theta, fwhm, seeds, 3)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(got, expected))
    assert set(got[1].tolist()) == {0, 3, 4, 5, 6, 7, 8}
