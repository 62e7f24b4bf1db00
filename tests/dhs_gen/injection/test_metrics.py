import warnings

import numpy as np
import pytest

from dhs_gen.injection import metric_kernels
from dhs_gen.injection.metrics import (
    arc_metrics,
    count_images,
    half_light_radius,
    light_centroid,
    noise_autocovariance,
    outer_sigma,
)
from dhs_gen.io.stamps import decode_canonical_image
from dhs_gen.lensing import render_lensed_sersic
from dhs_gen.lensing.fast import ray_trace


def test_outer_sigma_recovers_gaussian_noise_and_ignores_nans():
    rng = np.random.default_rng(0)
    img = rng.normal(0.0, [0.01, 0.02, 0.05], size=(2, 101, 101, 3)).transpose(0, 3, 1, 2).astype(np.float32)
    img[0, :, 50, 50] += 100.0  # a bright host in the centre does not matter
    img[1, 1, :5, :5] = np.nan
    sigma = outer_sigma(img)
    np.testing.assert_allclose(sigma, [[0.01, 0.02, 0.05]] * 2, rtol=0.05)


def test_arc_metrics_follow_their_definitions():
    arc = np.zeros((1, 3, 32, 32))
    arc[0, :, 10, 10:14] = [[1.0], [2.0], [4.0]]  # 4 pixels per band, r band 2 nmgy each
    arc[0, 1, 20, 20] = 0.1  # below 10% of the peak: outside the aperture
    m = arc_metrics(arc, sigma_r=np.array([0.5]), src_flux_r=np.array([1.0]), pixel_scale=0.262)
    assert m["arc_snr_sum"][0] == pytest.approx(8.0 / (0.5 * 2.0))
    assert m["arc_snr_max"][0] == pytest.approx(4.0)
    assert m["magnification"][0] == pytest.approx(8.1)
    assert m["lensed_mag_r"][0] == pytest.approx(22.5 - 2.5 * np.log10(8.1))
    assert m["lensed_mag_z"][0] == pytest.approx(22.5 - 2.5 * np.log10(16.0))


def test_half_light_radius_of_a_ring_is_its_radius():
    axis = np.arange(101) - 50.0
    r = np.hypot(axis[None, :], axis[:, None])
    ring = np.exp(-0.5 * ((r - 20.0) / 0.7) ** 2)
    assert half_light_radius(ring[None])[0] == pytest.approx(20.0, abs=0.6)
    assert np.isnan(half_light_radius(np.zeros((1, 8, 8)))[0])


def test_image_counts_match_lenstronomy():
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LensModel.Solver.lens_equation_solver import LensEquationSolver

    rng = np.random.default_rng(3)
    n = 25
    lens = {"theta_E": rng.uniform(0.5, 3.0, n), "e1": rng.normal(0, 0.1, n), "e2": rng.normal(0, 0.1, n),
            "center_x": rng.normal(0, 0.1, n), "center_y": rng.normal(0, 0.1, n),
            "gamma1": rng.normal(0, 0.05, n), "gamma2": rng.normal(0, 0.05, n)}
    beta = lens["theta_E"] * rng.uniform(0.0, 0.6, n)
    ang = rng.uniform(0, 2 * np.pi, n)
    sx, sy = lens["center_x"] + beta * np.cos(ang), lens["center_y"] + beta * np.sin(ang)
    counts = count_images(lens, sx, sy)
    solver = LensEquationSolver(LensModel(["SIE", "SHEAR"]))
    expected = []
    for i in range(n):
        kw = [{k: lens[k][i] for k in ("theta_E", "e1", "e2", "center_x", "center_y")},
              {"gamma1": lens["gamma1"][i], "gamma2": lens["gamma2"][i], "ra_0": 0, "dec_0": 0}]
        x, _ = solver.image_position_from_source(sx[i], sy[i], kw, min_distance=0.01, search_window=12)
        expected.append(len(x))
    assert set(expected) == {2, 4}
    assert np.array_equal(counts, expected)


def _lag_slices(h, w, dy, dx):
    """The two (rows, columns) slices of an (h, w) array whose pixels pair at lag (dy, dx)."""
    a = (slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0)))
    b = (slice(max(-dy, 0), h + min(-dy, 0)), slice(max(-dx, 0), w + min(-dx, 0)))
    return a, b


def _reference_pair_counts(aperture, max_lag):
    """(B, 2L+1, 2L+1) N_A(dy, dx) = Σ a a' over the pixel pairs of (B, H, W) bool apertures at each lag."""
    ap = np.asarray(aperture, dtype=np.int64)
    out = np.empty((len(ap), 2 * max_lag + 1, 2 * max_lag + 1))
    for dy in range(-max_lag, max_lag + 1):
        for dx in range(-max_lag, max_lag + 1):
            a, b = _lag_slices(*ap.shape[1:], dy, dx)
            out[:, dy + max_lag, dx + max_lag] = (ap[(slice(None), *a)] * ap[(slice(None), *b)]).sum(axis=(1, 2))
    return out


def _reference_aperture_sigma(aperture, acov):
    """(B,) √(Σ_lag C(lag) N_A(lag)) of (B, H, W) bool apertures and autocovariances (B, 2L+1, 2L+1)."""
    return np.sqrt((_reference_pair_counts(aperture, acov.shape[-1] // 2) * acov).sum(axis=(1, 2)))


def _reference_sigma(images):
    """(B, C) 1.4826 MAD of the outer-annulus checkerboard pixels, by np.median (the pixel count is
    odd, so each median is the middle pixel)."""
    size = images.shape[-1]
    axis = np.arange(size) - (size - 1) / 2
    checkerboard = (np.arange(size)[None, :] + np.arange(size)[:, None]) % 2 == 0
    outer = (np.hypot(axis[None, :], axis[:, None]) >= 0.35 * size) & checkerboard
    index = np.flatnonzero(outer)
    index = index[: len(index) - (1 - len(index) % 2)]
    pix = images.reshape(images.shape[:2] + (-1,))[..., index].astype(np.float32)
    return 1.4826 * np.median(np.abs(pix - np.median(pix, axis=-1, keepdims=True)), axis=-1)


def test_outer_sigma_equals_the_median_definition_on_real_cutouts(real_hosts):
    _, blobs = real_hosts
    rng = np.random.default_rng(1)
    real = np.stack([decode_canonical_image(b) for b in blobs.values()])
    assert np.isfinite(real).all()
    hosts = np.concatenate([real, real + rng.normal(0, 0.003, real.shape).astype(np.float32)])
    sigma = outer_sigma(hosts)
    assert np.array_equal(sigma, _reference_sigma(hosts))
    with_nan = hosts.copy()
    with_nan[0, 1, 0, :3] = np.nan  # one host with a bad outer pixel: the others keep the exact path
    mixed = outer_sigma(with_nan)
    assert np.array_equal(mixed[1:], sigma[1:]) and np.isfinite(mixed[0]).all()
    assert np.array_equal(outer_sigma(hosts.astype(np.float64)), sigma)


@pytest.fixture(scope="module")
def arcs():
    """float64 (B, 64, 64) r-band arcs of random SIE + shear lenses: θ_E 0.5-3" and, so that some
    half-light circles leave the smaller windows, 3-6"; a few lenses near the stamp edge."""
    rng = np.random.default_rng(7)
    n = 96
    theta = np.concatenate([rng.uniform(0.5, 3.0, n - 16), rng.uniform(3.0, 6.0, 16)])
    cx, cy = rng.normal(0, 0.2, n), rng.normal(0, 0.2, n)
    cx[:8] = rng.choice([-1.0, 1.0], 8) * rng.uniform(4.0, 7.0, 8)
    beta, ang = theta * rng.uniform(0, 0.8, n), rng.uniform(0, 2 * np.pi, n)
    lens = {"theta_E": theta, "e1": rng.normal(0, 0.1, n), "e2": rng.normal(0, 0.1, n), "center_x": cx,
            "center_y": cy, "gamma1": rng.normal(0, 0.05, n), "gamma2": rng.normal(0, 0.05, n)}
    source = {"R_sersic": rng.uniform(0.1, 0.8, n), "n_sersic": rng.uniform(0.7, 4.0, n),
              "e1": rng.normal(0, 0.15, n), "e2": rng.normal(0, 0.15, n),
              "center_x": cx + beta * np.cos(ang), "center_y": cy + beta * np.sin(ang),
              **{f"flux_{b}": np.ones(n) for b in "grz"}}
    return render_lensed_sersic(lens, source, np.tile([1.45, 1.30, 1.15], (n, 1)))[:, 1].astype(np.float64)


def _reference_hlr(images):
    """Every pixel sorted by its radius about the centroid; the radius where the sum first reaches half."""
    total, cx, cy = light_centroid(images)
    flux = np.clip(images, 0.0, None)
    b, h, w = flux.shape
    rows, cols = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    radius = np.hypot(cols[None, None, :] - cx[:, None, None], rows[None, :, None] - cy[:, None, None]).reshape(b, -1)
    order = np.argsort(radius, axis=1)
    cum = np.cumsum(np.take_along_axis(flux.reshape(b, -1), order, axis=1), axis=1)
    k = np.argmax(cum >= 0.5 * total[:, None], axis=1)
    return np.where(total > 0, np.take_along_axis(radius, order, axis=1)[np.arange(b), k], np.nan)


def test_half_light_radius_equals_the_full_sort(arcs, real_hosts):
    """Windows that hold the half-light pixel (radius < 11.5, 19.5 px), and the whole image beyond."""
    hlr = half_light_radius(arcs)
    assert np.array_equal(hlr, _reference_hlr(arcs))
    assert np.isfinite(hlr).all() and (hlr < 11).any() and (hlr > 12).any()
    _, blobs = real_hosts
    hosts = np.stack([decode_canonical_image(b)[1] for b in blobs.values()]).astype(np.float64)
    assert (half_light_radius(hosts) > 20).all()  # noisy 101-px hosts: sorted whole
    for images in (hosts, hosts[:, 18:82, 18:82], hosts[:, :16, :20], np.zeros((2, 8, 8)), arcs[:3, ::-1]):
        assert np.array_equal(half_light_radius(images), _reference_hlr(images), equal_nan=True)


def test_arc_metrics_take_the_half_light_radius_in_arcsec(arcs):
    m = arc_metrics(np.stack([arcs] * 3, axis=1), np.full(len(arcs), 0.01), np.ones(len(arcs)), 0.262)
    assert np.array_equal(m["lensed_hlr_arcsec"], _reference_hlr(arcs) * 0.262)


def _reference_counts(lens, src_x, src_y, n_side=51, step=0.1):
    """Triangle mapping written out triangle by triangle (vertex triplets, three cross products),
    hit cells grouped by a flood fill over Chebyshev neighbours."""
    theta = lens["theta_E"]
    axis = (np.arange(n_side) - (n_side - 1) / 2.0) * step
    gx, gy = (g.ravel() for g in np.meshgrid(axis, axis))
    near = np.hypot(gx, gy) < 0.2
    v00 = (np.arange(n_side - 1)[:, None] * n_side + np.arange(n_side - 1)[None, :]).ravel()
    cx, cy, g1, g2 = lens["center_x"] / theta, lens["center_y"] / theta, lens["gamma1"], lens["gamma2"]
    unit = dict(lens, theta_E=np.ones_like(theta), center_x=np.zeros_like(theta), center_y=np.zeros_like(theta))
    bx, by = ray_trace(unit, gx, gy)
    px = bx - (src_x / theta - cx + (g1 * cx + g2 * cy))[:, None].astype(np.float32)
    py = by - (src_y / theta - cy + (g2 * cx - g1 * cy))[:, None].astype(np.float32)
    counts = []
    for x, y in zip(px, py):
        cells = set()
        for a, b, c in ((v00, v00 + 1, v00 + n_side + 1), (v00, v00 + n_side + 1, v00 + n_side)):
            d = [x[p] * y[q] - y[p] * x[q] for p, q in ((a, b), (b, c), (c, a))]
            inside = ((d[0] > 0) & (d[1] > 0) & (d[2] > 0)) | ((d[0] < 0) & (d[1] < 0) & (d[2] < 0))
            cells.update(v00[inside & ~(near[a] | near[b] | near[c])].tolist())
        groups, todo = 0, {divmod(v, n_side) for v in cells}
        while todo:
            groups, stack = groups + 1, [todo.pop()]
            while stack:
                i, j = stack.pop()
                linked = {(i + di, j + dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)} & todo
                todo -= linked
                stack.extend(linked)
        counts.append(groups)
    return np.array(counts)


def test_image_counts_equal_the_triangle_by_triangle_definition():
    """Shared edges, the sign tests and the 8-connected grouping change nothing: the same counts as
    the triangle-by-triangle definition (traced by the numpy engine, fast.ray_trace; the compiled
    count by kernels.sie_source_position, the same map to float32 rounding), sources in and out of
    the caustics; a row's count does not depend on its batch."""
    rng = np.random.default_rng(11)
    n = 400
    lens = {"theta_E": rng.uniform(0.5, 3.0, n), "e1": rng.normal(0, 0.15, n), "e2": rng.normal(0, 0.15, n),
            "center_x": rng.normal(0, 0.2, n), "center_y": rng.normal(0, 0.2, n),
            "gamma1": rng.normal(0, 0.08, n), "gamma2": rng.normal(0, 0.08, n)}
    beta, ang = lens["theta_E"] * rng.uniform(0.0, 1.3, n), rng.uniform(0, 2 * np.pi, n)
    sx, sy = lens["center_x"] + beta * np.cos(ang), lens["center_y"] + beta * np.sin(ang)
    counts = count_images(lens, sx, sy)
    assert np.array_equal(counts, _reference_counts(lens, sx, sy))
    assert {1, 2, 4} <= set(counts.tolist())
    one = {k: v[:40] for k, v in lens.items()}
    assert np.array_equal(count_images(one, sx[:40], sy[:40]), counts[:40])  # a row does not depend on its batch


def test_noise_autocovariance_of_known_correlated_noise():
    """White noise smoothed by [a, 1, a] x [a, 1, a]: the measured autocovariance is the kernel's
    own, and the predicted aperture sigma matches brute-force sums; a bright source is masked."""
    rng = np.random.default_rng(4)
    a = 0.3
    k1 = np.array([a, 1.0, a])
    white = rng.normal(0.0, 1.0, (6, 205, 205))
    noise = np.stack([np.apply_along_axis(np.convolve, 1, np.apply_along_axis(np.convolve, 0, w, k1, "same"),
                                          k1, "same") for w in white])[:, 2:-2, 2:-2]
    noise[:, 90:110, 90:110] += 50.0  # a bright "galaxy": masked as a source
    acov = noise_autocovariance(noise, max_lag=3)
    expected_1d = np.array([0.0, a * a, 2 * a, 1 + 2 * a * a, 2 * a, a * a, 0.0])  # lags -3..3
    np.testing.assert_allclose(acov.mean(axis=0), np.outer(expected_1d, expected_1d), atol=0.03)
    box = np.zeros((1, 32, 32), bool)
    box[0, 10:15, 8:20] = True  # a 5 x 12 aperture
    counts = _reference_pair_counts(box, 3)[0]
    assert counts[3, 3] == 60 and counts[3, 4] == 5 * 11 and counts[4, 4] == 4 * 11 and counts[0, 0] == 2 * 9
    sums = [w[r:r + 5, c:c + 12].sum() for w in noise for r in range(0, 80, 6) for c in range(0, 70, 13)]
    predicted = _reference_aperture_sigma(box, acov[:1])[0]
    assert np.std(sums) == pytest.approx(predicted, rel=0.08)
    assert np.std(sums) > 1.5 * np.sqrt(acov[0, 3, 3] * 60)  # white noise would be far too small


def test_arc_snr_sum_uses_the_noise_correlation_of_real_dr10_cutouts(arcs, real_hosts):
    """On the six real DR10 cutouts (all bands), the aperture sigma predicted from the blank-sky
    autocovariance matches the std of the same arc apertures' sums placed on blank sky (sources
    > 3 sigma of the smoothed image, grown by 4 px, avoided) within 15%, pooled; the white-noise
    sigma x sqrt(N) of the old arc_snr_sum is > 1.3x too small."""
    from scipy import ndimage
    from scipy.signal import fftconvolve

    _, blobs = real_hosts
    images = np.stack([decode_canonical_image(b) for b in blobs.values()]).astype(np.float64)
    bands = images.reshape(-1, *images.shape[-2:])
    acov = noise_autocovariance(bands)
    sigma_pix = outer_sigma(images).reshape(-1)
    theta_ok = np.flatnonzero([(a > 0).any() and np.ptp(np.nonzero(a >= 0.1 * a.max())[0]) < 30 for a in arcs])
    apertures = np.stack([arcs[i] >= 0.1 * arcs[i].max() for i in theta_ok[:24]])
    empirical, predicted, white = [], [], []
    for k, x in enumerate(bands):
        smooth = ndimage.gaussian_filter(x, 1.5)
        med = np.median(smooth)
        blank = ~ndimage.binary_dilation(smooth - med > 3 * 1.4826 * np.median(np.abs(smooth - med)), iterations=4)
        sky = np.where(blank, x - np.median(x[blank]), 0.0)
        pred = _reference_aperture_sigma(apertures, np.repeat(acov[k:k + 1], len(apertures), axis=0))
        for j, ap in enumerate(apertures):
            rows, cols = np.nonzero(ap)
            crop = ap[rows.min():rows.max() + 1, cols.min():cols.max() + 1].astype(np.float64)[::-1, ::-1]
            sums = fftconvolve(sky, crop, mode="valid")
            on_sky = fftconvolve((~blank).astype(np.float64), crop, mode="valid") < 0.5
            if on_sky.sum() >= 50:
                empirical.append(np.std(sums[on_sky]))
                predicted.append(pred[j])
                white.append(sigma_pix[k] * np.sqrt(ap.sum()))
    empirical, predicted, white = map(np.asarray, (empirical, predicted, white))
    assert len(empirical) > 200
    pooled = np.sqrt(np.mean(predicted**2) / np.mean(empirical**2))
    assert 0.85 < pooled < 1.15, pooled
    assert np.sqrt(np.mean(white**2) / np.mean(empirical**2)) < 1 / 1.3
    # arc_metrics: the same sigma in arc_snr_sum; the white-noise path only without an autocovariance
    arc = np.zeros((len(apertures), 3, 64, 64))
    arc[:, 1] = arcs[theta_ok[:24]]
    signal = np.where(apertures, arcs[theta_ok[:24]], 0).sum(axis=(1, 2))
    overstated = []
    for k in range(1, len(bands), 3):  # every host's r band
        acov_r = np.repeat(acov[k:k + 1], len(arc), axis=0)
        sigma_r = np.full(len(arc), sigma_pix[k])
        m = arc_metrics(arc, sigma_r, np.ones(len(arc)), 0.262, noise_acov_r=acov_r)
        np.testing.assert_allclose(m["arc_snr_sum"], signal / _reference_aperture_sigma(apertures, acov_r))
        old = arc_metrics(arc, sigma_r, np.ones(len(arc)), 0.262)["arc_snr_sum"]
        overstated.append(np.median(old / m["arc_snr_sum"]))
    assert min(overstated) > 1.2 and np.median(overstated) > 1.4, overstated


def test_noise_autocovariance_ignores_bad_pixels_and_flags_empty_cutouts():
    rng = np.random.default_rng(9)
    images = rng.normal(0.0, 0.01, (3, 101, 101)).astype(np.float32)
    images[1, :20, :] = np.nan  # a masked strip: the rest still measures the noise
    images[2] = np.nan  # nothing to measure
    acov = noise_autocovariance(images)
    assert acov.shape == (3, 13, 13)
    np.testing.assert_allclose(acov[:2, 6, 6], 1e-4, rtol=0.05)
    assert np.all(np.abs(acov[:2, 6, 7]) < 5e-6)  # white noise: no lag-1 covariance
    assert np.isnan(acov[2]).all()
    arc = np.zeros((1, 3, 16, 16))
    arc[0, :, 4:8, 4:8] = 1.0
    m = arc_metrics(arc, np.array([0.01]), np.array([1.0]), 0.262, noise_acov_r=acov[2:3])
    assert np.isnan(m["arc_snr_sum"][0]) and np.isfinite(m["arc_snr_max"][0])


def test_noise_autocovariance_and_pair_counts_equal_their_lag_sums():
    """The compiled autocovariance and pair counts (metric_kernels.pair_counts) equal the direct
    sums over pixel pairs at each lag: C(dy, dx) = sum m x m' x' / sum m m' (x less its blank-sky
    mean) and N_A = sum a a'."""
    rng = np.random.default_rng(11)
    images = rng.normal(0.0, 0.02, (3, 31, 29)).astype(np.float32)  # < MIN_BLANK_PIXELS: every finite pixel
    images[1, 5:9, 10:20] = np.nan
    images[2] += 0.01 * np.arange(29, dtype=np.float32)  # a gradient: correlated at every lag
    lag = 4
    acov = noise_autocovariance(images, max_lag=lag)
    apertures = rng.random((3, 40, 36)) < 0.4
    counts = np.empty((3, 2 * lag + 1, 2 * lag + 1))
    for ap, out in zip(apertures, counts):
        metric_kernels.pair_counts(ap.astype(np.uint8), lag, out)
    for i, img in enumerate(images):
        m = np.isfinite(img).astype(np.float64)
        x = np.where(m > 0, img, 0.0) - (np.where(m > 0, img, 0.0).sum() / m.sum())
        x *= m
        for dy in range(-lag, lag + 1):
            for dx in range(-lag, lag + 1):
                a, b = _lag_slices(*img.shape, dy, dx)
                expected = (x[a] * x[b]).sum() / (m[a] * m[b]).sum()
                assert acov[i, dy + lag, dx + lag] == pytest.approx(expected, rel=1e-4, abs=1e-4 * acov[i, lag, lag])
                ap = apertures[i].astype(np.int64)
                a, b = _lag_slices(*ap.shape, dy, dx)
                assert counts[i, dy + lag, dx + lag] == (ap[a] * ap[b]).sum()


def _reference_autocovariance(images, max_lag=6):
    """The blank-sky autocovariance written out with numpy/scipy: scipy's Gaussian smoothing and
    maximum filter, np.median / np.nanmedian, and float64 sums over the pixel pairs of each lag."""
    from scipy import ndimage

    out = []
    for img in np.asarray(images, dtype=np.float32):
        finite = np.isfinite(img)
        x = np.where(finite, img, np.float32(0.0))
        smooth = ndimage.gaussian_filter(x, 1.5, truncate=3.0)
        sample = smooth[::2, ::2][finite[::2, ::2]]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.median(sample)
            mad = np.median(np.abs(sample - med))
        source = ndimage.maximum_filter(smooth - med > np.float32(3.0 * 1.4826) * mad, size=7)
        blank = finite & ~source
        if blank.sum() < 1000:
            blank = finite
        m = blank.astype(np.float64)
        with np.errstate(all="ignore"):
            xs = (np.where(blank, x, 0.0) - np.where(blank, x, 0.0).sum() / m.sum()) * m
        h, w = img.shape
        acov = np.full((2 * max_lag + 1,) * 2, np.nan)
        for dy in range(-max_lag, max_lag + 1):
            for dx in range(-max_lag, max_lag + 1):
                a = (slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0)))
                b = (slice(max(-dy, 0), h + min(-dy, 0)), slice(max(-dx, 0), w + min(-dx, 0)))
                pairs = (m[a] * m[b]).sum()
                if pairs > 0:
                    acov[dy + max_lag, dx + max_lag] = (xs[a] * xs[b]).sum() / pairs
        out.append(acov)
    return np.array(out)


def test_noise_autocovariance_equals_the_numpy_definition_on_real_cutouts(real_hosts):
    """All three bands of the six real DR10 cutouts, then the same with bad pixels: a NaN strip at
    the edge, a NaN block on the host, NaN on every other row and column (the robust level from
    the finite ones, an even number), a mostly NaN cutout (< MIN_BLANK_PIXELS blank: every finite
    pixel) and an all-NaN one; as a (B, H, W) array or a list of cutouts."""
    _, blobs = real_hosts
    bands = np.stack([decode_canonical_image(b) for b in blobs.values()]).reshape(-1, 101, 101)
    bad = bands[:6].copy()
    bad[0, :, :7] = np.nan
    bad[1, 40:60, 45:58] = np.nan
    bad[2, ::2, ::2][5:9, :] = np.nan
    bad[2, 0, 0] = np.nan
    bad[3, 9:] = np.nan
    bad[4] = np.nan
    bad[5, 50:53, :] = np.inf
    images = np.concatenate([bands, bad])
    acov = noise_autocovariance(images)
    expected = _reference_autocovariance(images)
    assert np.array_equal(np.isnan(acov), np.isnan(expected)) and np.isnan(acov[len(bands) + 4]).all()
    scale = expected[:, 6:7, 6:7]  # the variance of each cutout
    ok = np.isfinite(expected)
    assert np.all(np.abs(acov - expected)[ok] <= 2e-6 * np.broadcast_to(scale, acov.shape)[ok])
    assert np.array_equal(noise_autocovariance(list(images)), acov, equal_nan=True)
    assert np.array_equal(noise_autocovariance(images.astype(np.float64)), acov, equal_nan=True)


def test_source_smoothing_and_dilation_equal_scipy():
    """The compiled Gaussian smoothing repeats scipy's operations bit for bit ('reflect' edges,
    double-precision sums rounded to float32) and the square dilation is scipy's maximum filter."""
    from scipy import ndimage

    from dhs_gen.injection.metrics import _source_smoothing_weights

    rng = np.random.default_rng(5)
    for shape in ((101, 101), (31, 29), (12, 40), (65, 130)):
        x = rng.normal(0.0, 0.01, shape).astype(np.float32)
        x[shape[0] // 2, shape[1] // 2] = 3.0
        smooth = np.empty_like(x)
        metric_kernels.gaussian_smooth(x, _source_smoothing_weights(), smooth)
        assert np.array_equal(smooth, ndimage.gaussian_filter(x, 1.5, truncate=3.0))
        mask = rng.random(shape) < 0.02
        mask[0, -1] = mask[-1, 0] = True
        bits = metric_kernels.dilate_bits(metric_kernels.pack_rows(mask.astype(np.uint8)), shape[1], 3)
        grown = np.unpackbits(bits.view(np.uint8), axis=1, count=shape[1], bitorder="little")
        assert np.array_equal(grown.astype(bool), ndimage.maximum_filter(mask, size=7))


def test_smooth_and_sample_with_and_without_bad_pixels_equal_scipy():
    """smooth_and_sample (its all-finite path and its masked path): the image with non-finite
    pixels as 0 smoothed as scipy does, and the smoothed values at the finite pixels of every other
    row and column, in row order."""
    from scipy import ndimage

    from dhs_gen.injection.metrics import _source_smoothing_weights

    rng = np.random.default_rng(11)
    for bad in (0, 1, 40):
        x = rng.normal(0.0, 0.01, (101, 101)).astype(np.float32)
        x[50, 50] = 3.0
        flat = x.reshape(-1)
        flat[rng.choice(flat.size, bad, replace=False)] = np.nan
        if bad:
            flat[0] = np.inf
        smooth, sample = np.empty_like(x), np.full(51 * 51, -1.0, np.float32)
        n = metric_kernels.smooth_and_sample(x, _source_smoothing_weights(), smooth, sample)
        want = ndimage.gaussian_filter(np.where(np.isfinite(x), x, 0), 1.5, truncate=3.0)
        assert np.array_equal(smooth, want)
        keep = np.isfinite(x[::2, ::2])
        assert n == keep.sum() and np.array_equal(sample[:n], want[::2, ::2][keep])


def test_cutouts_of_the_wrong_shape_are_refused(real_hosts):
    _, blobs = real_hosts
    hosts = [decode_canonical_image(b) for b in blobs.values()]  # read-only views of the blobs
    with pytest.raises(ValueError, match="square"):
        outer_sigma(np.stack(hosts)[:, :, :99])
    with pytest.raises(ValueError, match="one shape"):
        noise_autocovariance([hosts[0][1], hosts[1][1, :99, :99]])


def test_arc_metrics_equal_the_numpy_definition(arcs):
    """float32 arcs in three bands with a correlated-noise autocovariance: the aperture (r >= 10% of
    the peak), its signal and noise sigma, the band totals and magnitudes, as numpy computes them
    in float64; an empty arc and a negative one have no aperture (S/N 0, magnitudes NaN)."""
    n = 40
    arc = np.stack([0.5 * arcs[:n], arcs[:n], 2.0 * arcs[:n]], axis=1).astype(np.float32)
    arc[0] = 0.0
    arc[1] = -arc[1]
    k1 = np.array([0.0, 0.04, 0.3, 1.0, 0.3, 0.04, 0.0])
    acov = np.outer(k1, k1)[None] * np.linspace(1e-4, 4e-4, n)[:, None, None]
    sigma_r, flux = np.full(n, 0.01), np.linspace(0.5, 2.0, n)
    m = arc_metrics(arc, sigma_r, flux, 0.262, noise_acov_r=acov)
    a = arc.astype(np.float64)
    peak = a[:, 1].max(axis=(1, 2))
    aperture = (a[:, 1] >= 0.1 * peak[:, None, None]) & (peak[:, None, None] > 0)
    var = (_reference_pair_counts(aperture, 3) * acov).sum(axis=(1, 2))
    signal = np.where(aperture, a[:, 1], 0.0).sum(axis=(1, 2))
    with np.errstate(all="ignore"):
        snr = np.where(aperture.any(axis=(1, 2)), signal / np.sqrt(var), 0.0)
        totals = a.sum(axis=(2, 3))
        mags = 22.5 - 2.5 * np.log10(np.where(totals > 0, totals, np.nan))
    np.testing.assert_allclose(m["arc_snr_sum"], snr, rtol=1e-12)
    np.testing.assert_allclose(m["arc_snr_max"], np.maximum(peak, 0.0) / sigma_r, rtol=1e-12)
    np.testing.assert_allclose(m["magnification"], totals[:, 1] / flux, rtol=1e-12)
    for i, b in enumerate("grz"):
        np.testing.assert_allclose(m[f"lensed_mag_{b}"], mags[:, i], rtol=1e-12)
    assert m["arc_snr_sum"][0] == m["arc_snr_sum"][1] == 0.0 and np.isnan(m["lensed_mag_r"][:2]).all()
    assert (m["arc_snr_sum"][2:] > 0).all()
    assert np.array_equal(m["lensed_hlr_arcsec"], half_light_radius(a[:, 1]) * 0.262, equal_nan=True)


def test_crop_and_outer_pixels_copy_count_and_gather_as_numpy():
    """The host crop's copy (non-finite pixels as 0) and its bad-pixel counts, whole and central,
    and the outer-annulus pixels, read in one pass: the same as numpy's crop, isfinite counts and
    fancy indexing, for an even crop of an odd cutout, an odd crop, and the whole cutout."""
    from dhs_gen.injection.metric_kernels import crop_and_outer_pixels
    from dhs_gen.injection.metrics import outer_pixel_index

    rng = np.random.default_rng(2)
    cutout = rng.normal(0.0, 0.01, (3, 101, 101)).astype(np.float32)
    cutout[0, 20:30, 20:90] = np.nan
    cutout[2, 50, 40:60] = np.inf
    cutout[1, 18, 18] = -np.inf
    cutout[1, 0, :] = np.nan  # outer pixels are gathered as they are
    index, start = outer_pixel_index(101, 0.35)
    for size, margin in ((64, 16), (33, 8), (101, 25)):
        a = (101 - size) // 2
        crop = cutout[:, a:a + size, a:a + size]
        out = np.full((3, size, size), 7.0, np.float32)
        pixels = np.full((3, len(index)), 7.0, np.float32)
        n_bad, n_central = crop_and_outer_pixels(cutout, a, size, margin, index, start, out, pixels)
        bad = ~np.isfinite(crop)
        assert np.array_equal(out, np.where(bad, 0.0, crop))
        assert (n_bad, n_central) == (bad.sum(), bad[:, margin:size - margin, margin:size - margin].sum())
        assert np.array_equal(pixels, cutout.reshape(3, -1)[:, index], equal_nan=True)
    assert 0 < n_central < n_bad


def test_light_centroid_is_the_first_moment_of_the_positive_flux(arcs, real_hosts):
    _, blobs = real_hosts
    hosts = np.stack([decode_canonical_image(b)[1] for b in blobs.values()])
    for images in (arcs, hosts, hosts[:, 18:82, 10:90], arcs[:3, ::-1], np.zeros((2, 8, 8))):
        flux = np.clip(images.astype(np.float64), 0.0, None)
        total = flux.sum(axis=(1, 2))
        rows, cols = np.arange(images.shape[1]), np.arange(images.shape[2])
        safe = np.where(total > 0, total, 1.0)
        got = light_centroid(images)
        np.testing.assert_allclose(got[0], total, rtol=1e-12)
        np.testing.assert_allclose(got[1], (flux.sum(axis=1) * cols).sum(axis=1) / safe, rtol=1e-12)
        np.testing.assert_allclose(got[2], (flux.sum(axis=2) * rows).sum(axis=1) / safe, rtol=1e-12)


def test_lag_sums_equal_float64_sums_over_pixel_pairs_for_any_width_and_lag():
    """The blocked lag sums (strips of STRIP columns, LAG_ROWS row lags per pass) are the sums over
    pixel pairs at each lag, to float32 rounding, for images narrower and wider than one strip, row
    counts not a multiple of the blocking, and every lag up to MAX_SUM_LAG; a larger lag is refused."""
    rng = np.random.default_rng(3)
    for (h, w), lag in (((101, 101), 6), ((13, 20), 6), ((9, 9), 8), ((37, 129), 7), ((30, 300), 16),
                        ((101, 101), 0), ((20, 31), 3)):
        x = rng.normal(0.0, 1.0, (h, w)).astype(np.float32)
        x[rng.random((h, w)) < 0.3] = 0.0
        out = np.empty((2 * lag + 1,) * 2)
        metric_kernels.lag_sums(x, lag, out)
        xd = np.pad(x.astype(np.float64), lag)
        expected = np.array([[(xd[lag:lag + h, lag:lag + w] * xd[lag + dy:lag + dy + h, lag + dx:lag + dx + w]).sum()
                              for dx in range(-lag, lag + 1)] for dy in range(-lag, lag + 1)])
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5 * expected[lag, lag])
    with pytest.raises(ValueError, match="MAX_SUM_LAG"):
        metric_kernels.lag_sums(x, metric_kernels.MAX_SUM_LAG + 1, np.empty((2 * metric_kernels.MAX_SUM_LAG + 3,) * 2))


def test_mad_equals_numpy_median_of_absolute_deviations_bit_for_bit():
    """_mad (sort, then the window search of sorted_median_mad) gives numpy's median and
    median(|v - median|) exactly, in the array's precision, with ties and a single value."""
    from dhs_gen.injection.metrics import _mad

    rng = np.random.default_rng(4)
    for shape, step in (((40, 3, 3199), None), ((300, 7), 0.003), ((50, 1), None), ((200, 5), 0.002),
                        ((60, 101), 0.02)):
        for dtype in (np.float32, np.float64):
            x = (0.01 * rng.standard_normal(shape)).astype(dtype)
            if step:
                x = (np.round(x / step) * step).astype(dtype)  # many equal values
            median, mad = _mad(x.copy())
            expected = np.median(x, axis=-1)
            assert median.dtype == dtype and np.array_equal(median, expected)
            assert np.array_equal(mad, np.median(np.abs(x - expected[..., None]), axis=-1).astype(dtype))


def test_pack_rows_equals_numpy_packbits():
    rng = np.random.default_rng(6)
    for shape in ((101, 101), (5, 64), (3, 1), (7, 130)):
        mask = (rng.random(shape) < 0.5).astype(np.uint8)
        bits = metric_kernels.pack_rows(mask)
        nw = (shape[1] + 63) // 64
        padded = np.zeros((shape[0], 64 * nw), np.uint8)
        padded[:, :shape[1]] = mask
        expected = np.packbits(padded, axis=1, bitorder="little").view("<u8")
        assert bits.shape == (shape[0], nw + 1) and np.array_equal(bits[:, :nw], expected) and not bits[:, nw].any()


def test_outer_sigma_equals_the_numpy_definition_with_nan_and_inf_pixels():
    """σ = 1.4826 median |p - median p| over the outer-annulus checkerboard pixels p, NaN ignored,
    ±inf counted as values (numpy's nanmedian), bit for bit, whichever host holds non-finite pixels."""
    from dhs_gen.injection.metrics import outer_pixel_index

    rng = np.random.default_rng(12)
    img = rng.normal(0.0, 0.01, (5, 3, 41, 41)).astype(np.float32)
    img[1, 0, 0, :6] = np.inf  # +inf only: sorts last, like NaN, but is a value
    img[2, 2, -1, -6:] = -np.inf
    img[3, 1, :2, :] = np.nan
    img[4, 2] = np.nan  # a band without a finite pixel
    p = img.reshape(5, 3, -1)[:, :, outer_pixel_index(41, 0.35)[0]]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = 1.4826 * np.nanmedian(np.abs(p - np.nanmedian(p, axis=-1, keepdims=True)), axis=-1)
        sigma = outer_sigma(img)
    assert np.array_equal(sigma, expected, equal_nan=True) and np.isnan(sigma[4, 2]) and np.isfinite(sigma[:4]).all()
