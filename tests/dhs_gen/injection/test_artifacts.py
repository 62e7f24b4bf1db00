import numpy as np
import pytest

from dhs_gen.config import ConfigError
from dhs_gen.injection.artifacts import (
    PROFILES,
    ArtifactProfile,
    _stacked,
    _uniform,
    _unit_scale,
    compose_injection,
    draw_artifacts,
    draw_batch,
    get_profile,
)
from dhs_gen.injection.inject import InjectConfig, inject_batch
from dhs_gen.injection.manifest import ManifestConfig, build_manifest
from dhs_gen.io.stamps import decode_canonical_image


def test_uniform_is_numpys_uniform_bit_for_bit():
    """_uniform gives what Generator.uniform gives for every range the profiles use (and the angle
    and offset ranges), and leaves the generator in the same state; the shared unit PSF scale is
    read-only ones."""
    ranges = [(0.0, np.pi), (-0.5, 0.5)] + [getattr(p, name) for p in PROFILES.values() for name in (
        "cosmic_amp_sigma", "trail_amp_sigma", "psf_scale_range", "noise_scale_range")]
    for low, high in ranges:
        ours, numpys = np.random.default_rng(11), np.random.default_rng(11)
        got = np.array([_uniform(ours, low, high) for _ in range(20000)])
        want = np.array([numpys.uniform(low, high) for _ in range(20000)])
        assert got.tobytes() == want.tobytes() and ours.random() == numpys.random()
    ones = _unit_scale(3)
    assert ones.tolist() == [1.0, 1.0, 1.0] and ones.dtype == np.float64 and not ones.flags.writeable


def test_profiles_and_draws():
    assert draw_artifacts(get_profile("none"), np.random.default_rng(0), np.ones(3), (3, 8, 8)).kinds == 0
    with pytest.raises(ConfigError, match="unknown artifact profile"):
        get_profile("gen9")
    rng = np.random.default_rng(1)
    draws = [draw_artifacts(PROFILES["strong"], rng, np.full(3, 0.01), (3, 32, 32)) for _ in range(400)]
    assert np.mean([len(d.dead) for d in draws]) == pytest.approx(0.2, abs=0.06)
    scales = np.array([d.psf_scale for d in draws])
    assert scales.min() >= 0.85 and scales.max() <= 1.15 and np.mean(np.any(scales != 1, axis=1)) > 0.7
    img = np.ones((3, 32, 32), np.float32)
    d = next(d for d in draws if d.dead)
    band, column = d.dead[0]
    assert np.all(_applied(img, d)[band, :, column] == 0)


def _applied(image, draw):
    """numpy reference of a draw on one (C, H, W) float32 image: image + additive (a float32 sum;
    none without an additive), then the dead columns set to 0."""
    out = np.array(image, np.float32)
    if draw.additive is not None:
        out = out + draw.additive
    for band, column in draw.dead:
        out[band, :, column] = 0.0
    return out


def _composed(hosts, layers, draws):
    """numpy reference of the products of a batch: (N, C, H, W) host + layer (a float32 sum; the
    host alone for a None layer), then each row's draw (:func:`_applied`), for each layer."""
    return np.stack([[_applied(host if layer is None else host + layer[r], draw)
                      for r, (host, draw) in enumerate(zip(hosts, draws))] for layer in layers])


@pytest.fixture(scope="module")
def strong(real_hosts, with_cutouts):
    hosts, blobs = real_hosts
    m = build_manifest(hosts, ManifestConfig(injections_per_host=40, seed=5,
                                             variants=[{"artifact_profile": "strong"}]))
    return inject_batch(with_cutouts(m, blobs), InjectConfig()), m, blobs


def _stamps(out, column):
    return np.stack([decode_canonical_image(b) for b in out.column(column).to_pylist()])


def test_artifacts_are_identical_on_positives_and_controls(strong):
    """No artifact statistic can separate the labels: each row's realisation is the same on the
    positive, its control and the hard negative (their differences are artifact-free arcs)."""
    out, m, blobs = strong
    pos, ctrl, hard = _stamps(out, "stamp"), _stamps(out, "ctrl_stamp"), _stamps(out, "hardneg_stamp")
    hosts = np.stack([decode_canonical_image(blobs[h])[:, 18:82, 18:82] for h in m.column("host_id").to_pylist()])
    artifacts_ctrl = ctrl - hosts
    touched = np.any(np.abs(artifacts_ctrl) > 0, axis=(1, 2, 3))
    assert 0.6 < touched.mean() < 1.0  # strong profile: most rows carry artifacts
    dead = np.all(ctrl == 0, axis=2)  # (B, C, W) dead columns
    assert np.array_equal(dead, np.all(pos == 0, axis=2)) and np.array_equal(dead, np.all(hard == 0, axis=2))
    assert 0.1 < dead.any(axis=(1, 2)).mean() < 0.35
    # statistics of the artifact layer in the 6-px border (beyond the arcs and their PSF wings):
    # the same on every product, row by row (to 5e-5 nmgy, <1% of the sky sigma: Moffat wings)
    outer = np.ones((64, 64), bool)
    outer[6:58, 6:58] = False
    for stat in (lambda x: np.median(x, axis=-1), lambda x: np.percentile(x, 99.9, axis=-1),
                 lambda x: np.abs(x).max(axis=-1), lambda x: (x == 0).mean(axis=-1)):
        np.testing.assert_allclose(stat(pos[..., outer]), stat(ctrl[..., outer]), rtol=1e-4, atol=5e-5)
        np.testing.assert_allclose(stat(hard[..., outer]), stat(ctrl[..., outer]), rtol=1e-4, atol=5e-5)


def test_positive_minus_control_is_the_arc_alone(strong):
    out, m, _ = strong
    pos, ctrl = _stamps(out, "stamp"), _stamps(out, "ctrl_stamp")
    delta = pos - ctrl
    total = delta[:, 1].sum(axis=(1, 2))
    lensed = 10 ** ((22.5 - out.column("lensed_mag_r").to_numpy()) / 2.5)
    dead_r = np.all(ctrl[:, 1] == 0, axis=1).any(axis=1)
    np.testing.assert_allclose(total[~dead_r], lensed[~dead_r], rtol=1e-3)
    assert np.all(delta[:, :, :2, :].std(axis=(2, 3)) < 1e-3)  # no additive artifact survives the difference


def _reference_draw(profile, rng, sigma, shape):
    """The draw written out with whole-array numpy (tracks by np.round/np.clip, the trail on an
    mgrid, an additive image allocated up front): (psf_scale, additive or None, dead)."""
    n_bands, h, w = shape
    sigma = np.where(np.isfinite(sigma) & (sigma > 0), sigma, 0.0).astype(np.float32)
    psf_scale = rng.uniform(*profile.psf_scale_range, size=n_bands) if rng.random() < profile.p_psf_mismatch \
        else np.ones(n_bands)
    add, touched = np.zeros(shape, dtype=np.float32), False
    if rng.random() < profile.p_cosmic:
        for _ in range(max(1, rng.poisson(profile.cosmic_mean_count))):
            band, r0, c0 = rng.integers(n_bands), rng.integers(h), rng.integers(w)
            length, angle = rng.integers(1, 4), rng.uniform(0, np.pi)
            rows = np.clip(np.round(r0 + np.arange(length) * np.sin(angle)).astype(int), 0, h - 1)
            cols = np.clip(np.round(c0 + np.arange(length) * np.cos(angle)).astype(int), 0, w - 1)
            add[band, rows, cols] += rng.uniform(*profile.cosmic_amp_sigma) * sigma[band]
        touched = True
    if rng.random() < profile.p_trail:
        band, angle = rng.integers(n_bands), rng.uniform(0, np.pi)
        offset = rng.uniform(-0.5, 0.5) * min(h, w)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        dist = (xx - (w - 1) / 2) * np.sin(angle) - (yy - (h - 1) / 2) * np.cos(angle) - offset
        add[band] += rng.uniform(*profile.trail_amp_sigma) * sigma[band] * np.exp(-0.5 * dist**2)
        touched = True
    if rng.random() < profile.p_gradient:
        gx, gy = rng.normal(size=2)
        ramp = (np.arange(w)[None, :] * gx + np.arange(h)[:, None] * gy) / (np.hypot(gx, gy) or 1.0) / max(h, w)
        add += (profile.gradient_amp_sigma * sigma[:, None, None] * (ramp - ramp.mean())).astype(np.float32)
        touched = True
    if rng.random() < profile.p_noise:
        extra = sigma * np.sqrt(max(rng.uniform(*profile.noise_scale_range) ** 2 - 1.0, 0.0))
        add += rng.standard_normal(shape).astype(np.float32) * extra[:, None, None]
        touched = True
    dead = [(int(rng.integers(n_bands)), int(rng.integers(w)))] if rng.random() < profile.p_bad_column else []
    return psf_scale, add if touched else None, dead


def test_draws_equal_the_reference_draw():
    """Same generator calls in the same order, bit-identical realisations (every kind, odd shapes,
    degenerate σ), so stamps do not change."""
    every = ArtifactProfile(p_cosmic=1.0, cosmic_mean_count=4.0, p_trail=1.0, p_bad_column=1.0, p_gradient=1.0,
                            p_psf_mismatch=1.0, p_noise=1.0)
    rng = np.random.default_rng(4)
    for seed in range(600):
        profile = [PROFILES["mild"], PROFILES["strong"], every][seed % 3]
        sigma = rng.choice([0.002, 0.01, 0.0, -1.0, np.nan], 3)
        shape = [(3, 64, 64), (3, 9, 5), (3, 1, 7)][seed % 4 % 3]
        ref_rng, rng_under_test = np.random.default_rng(seed), np.random.default_rng(seed)
        psf_scale, additive, dead = _reference_draw(profile, ref_rng, sigma, shape)
        draw = draw_artifacts(profile, rng_under_test, sigma, shape)
        assert draw.psf_scale.tobytes() == psf_scale.tobytes() and draw.dead == dead
        assert (draw.additive is None) == (additive is None)
        assert additive is None or (draw.additive.dtype == np.float32 and draw.additive.tobytes() == additive.tobytes())
        assert rng_under_test.bit_generator.state == ref_rng.bit_generator.state


def test_extra_noise_is_numpys_normals_for_any_bit_generator():
    """The noise kind draws what ``rng.standard_normal`` gives, bit for bit, and leaves the
    generator where numpy leaves it: PCG64 stepped inline (a pending 32-bit half kept, ziggurat
    tails included: 150k normals) and any other bit generator through numba's port."""
    noise_only = ArtifactProfile(p_noise=1.0, noise_scale_range=(1.5, 1.5))
    sigma = np.array([0.01, 0.02, 0.04], np.float32)
    for bits in (np.random.PCG64, np.random.MT19937, np.random.Philox):
        for seed in range(4):
            ours, numpys = np.random.Generator(bits(seed)), np.random.Generator(bits(seed))
            ours.integers(7), numpys.integers(7)  # a buffered uint32 half pending
            got = draw_artifacts(noise_only, ours, sigma, (3, 100, 128))
            expected = _reference_draw(noise_only, numpys, sigma, (3, 100, 128))[1]
            assert got.additive.tobytes() == expected.tobytes()
            assert ours.integers(7) == numpys.integers(7) and ours.integers(1 << 40) == numpys.integers(1 << 40)
            assert ours.standard_normal(9).tobytes() == numpys.standard_normal(9).tobytes()


def test_injection_products_are_the_composed_layers():
    """compose_injection (each row's shuffle and composition in one compiled pass) gives the numpy
    composition (host + layer) + additive, dead columns 0, of the layers (arc, None, shuffle_delta
    of each arc), bit for bit: rows picked out of larger host and arc arrays, strided products,
    dead columns, rows without light or without a FWHM, and permutations drawn for every row
    (shuffle_delta draws only where there is light: the rows' generators are their own, so the
    pixels are the same)."""
    from dhs_gen.injection.hardneg import sector_plan, shuffle_delta
    from dhs_gen.lensing import render_lensed_sersic

    rng = np.random.default_rng(9)
    n, rows = 10, np.array([0, 2, 3, 5, 6, 7, 8, 9])
    theta = rng.uniform(0.6, 2.8, n)
    lens = {"theta_E": theta, "e1": rng.normal(0, 0.1, n), "e2": rng.normal(0, 0.1, n),
            "center_x": rng.normal(0, 0.2, n), "center_y": rng.normal(0, 0.2, n),
            "gamma1": rng.normal(0, 0.04, n), "gamma2": rng.normal(0, 0.04, n)}
    source = {"R_sersic": rng.uniform(0.1, 0.6, n), "n_sersic": rng.uniform(0.7, 3.0, n),
              "e1": rng.normal(0, 0.15, n), "e2": rng.normal(0, 0.15, n),
              "center_x": lens["center_x"] + 0.3, "center_y": lens["center_y"] - 0.2,
              "flux_g": np.ones(n), "flux_r": np.full(n, 2.0), "flux_z": np.full(n, 3.0)}
    arcs = render_lensed_sersic(lens, source, np.tile([1.45, 1.3, 1.15], (n, 1)))
    arcs[3] = 0.0  # no light: Δ as it is
    hosts = rng.normal(0, 0.05, arcs.shape).astype(np.float32)
    every = ArtifactProfile(p_cosmic=1.0, p_trail=1.0, p_bad_column=1.0, p_gradient=1.0, p_noise=1.0)
    draws = draw_batch([every, PROFILES["none"], PROFILES["strong"], every] * 2,
                       [np.random.default_rng([r, 2]) for r in range(len(rows))], np.full((len(rows), 3), 0.01),
                       arcs.shape[1:])
    assert any(d.dead for d in draws) and any(d.additive is None for d in draws)
    fwhm = np.full(len(rows), 1.3 / 0.262)
    fwhm[4] = np.nan  # no fades defined: Δ as it is
    centers = np.stack([lens["center_x"][rows], lens["center_y"][rows]], axis=1) / 0.262
    shuffled = np.stack([shuffle_delta(arcs[row], theta[row] / 0.262, fwhm[r], np.random.default_rng([r, 3]),
                                       tuple(centers[r])) for r, row in enumerate(rows)])
    expected = _composed(hosts[rows], [arcs[rows], None, shuffled], draws)
    got = np.full((3, len(rows), 2) + arcs.shape[1:], np.nan, np.float32)[:, :, 1]  # strided, as stamp_array's
    plan = sector_plan(theta[rows] / 0.262, fwhm, [np.random.default_rng([r, 3]) for r in range(len(rows))])
    compose_injection(hosts, rows, arcs, rows, centers, plan, draws, list(got))
    assert got.tobytes() == expected.tobytes()
    assert not np.array_equal(shuffled, arcs[rows])
    assert np.array_equal(shuffled[2], arcs[3]) and np.array_equal(shuffled[4], arcs[rows[4]])
    with pytest.raises(ValueError, match="contiguous"):
        compose_injection(hosts, rows, arcs, rows, centers, plan, draws, [g[:, :, :, ::2] for g in got])


def test_a_batch_of_draws_is_its_rows():
    """draw_batch gives each row what draw_artifacts gives it (σ checked once for the batch), its
    additive images are consecutive slots of one array, and compose_injection reads them in place
    (no copy) with the same pixels as the numpy composition."""
    every = ArtifactProfile(p_cosmic=1.0, p_trail=1.0, p_bad_column=1.0, p_gradient=1.0, p_noise=1.0)
    profiles = [PROFILES["mild"], every, PROFILES["none"], PROFILES["strong"], every] * 8
    sigma = np.random.default_rng(5).choice([0.002, 0.01, 0.0, -1.0, np.nan], (len(profiles), 3))
    draws = draw_batch(profiles, [np.random.default_rng([r, 2]) for r in range(len(profiles))], sigma, (3, 12, 10))
    rows = [draw_artifacts(p, np.random.default_rng([r, 2]), sigma[r], (3, 12, 10)) for r, p in enumerate(profiles)]
    added = [d.additive for d in draws if d.additive is not None]
    assert len(added) > 10 and all(a.base is added[0].base for a in added)
    assert len({a.__array_interface__["data"][0] for a in added}) == len(added)  # distinct slots
    assert np.shares_memory(_stacked(added), added[0]) and _stacked(added).tobytes() == np.stack(added).tobytes()
    for draw, row in zip(draws, rows):
        assert draw.psf_scale.tobytes() == row.psf_scale.tobytes() and draw.dead == row.dead
        assert (draw.additive is None) == (row.additive is None)
        assert draw.additive is None or draw.additive.tobytes() == row.additive.tobytes()
    host, arc = np.random.default_rng(6).normal(0, 0.05, (2, len(draws), 3, 12, 10)).astype(np.float32)
    n = len(draws)
    unshuffled = (np.full(n, 2.0), np.zeros(n, np.int64), np.zeros((n, 8), np.int64))  # 0 sectors: Δ as it is
    for picked in (np.arange(n), np.array([0, 3, 4, 1])):  # slots in order (a view), out of order (a copy)
        got = np.zeros((3, len(picked), 3, 12, 10), np.float32)
        compose_injection(host, picked, arc, picked, np.zeros((len(picked), 2)),
                          [p[picked] for p in unshuffled], [draws[r] for r in picked], list(got))
        expected = _composed(host[picked], [arc[picked], None, arc[picked]], [rows[r] for r in picked])
        assert got.tobytes() == expected.tobytes()


def test_a_batch_never_writes_into_slots_an_earlier_batch_still_holds():
    """draw_batch reuses the previous batch's slot array only once no draw of it is referred to:
    while the first batch's draws are held, the second batch's additive images lie elsewhere and
    leave the first's pixels as they were; once they are gone, the array is reused."""
    noise_only = ArtifactProfile(p_noise=1.0)
    sigma = np.full((6, 3), 0.01)

    def batch(stream):
        return draw_batch([noise_only] * 6, [np.random.default_rng([r, stream]) for r in range(6)], sigma, (3, 8, 8))

    first = batch(2)
    kept = np.stack([d.additive for d in first]).copy()
    second = batch(3)
    assert not any(np.shares_memory(a.additive, b.additive) for a in first for b in second)
    assert np.stack([d.additive for d in first]).tobytes() == kept.tobytes()
    assert not np.array_equal(np.stack([d.additive for d in second]), kept)
    address = second[0].additive.__array_interface__["data"][0]
    del first, second
    assert batch(4)[0].additive.__array_interface__["data"][0] == address  # no draw held: the spare reused


def test_extra_noise_is_gaussian_with_the_asked_sigma_and_independent_rows():
    """The noise kind: mean 0, σ·sqrt(s² − 1) per band, no correlation between pixels or rows."""
    noise_only = ArtifactProfile(p_noise=1.0, noise_scale_range=(1.5, 1.5))
    sigma = np.array([0.01, 0.02, 0.04])
    draws = draw_batch([noise_only] * 200, [np.random.default_rng([r, 2]) for r in range(200)],
                       np.tile(sigma, (200, 1)), (3, 32, 32))
    noise = np.stack([d.additive for d in draws]).astype(np.float64)
    expected = sigma * np.sqrt(1.5**2 - 1.0)
    np.testing.assert_allclose(noise.std(axis=(0, 2, 3)), expected, rtol=0.01)
    assert np.all(np.abs(noise.mean(axis=(0, 2, 3))) < 4 * expected / np.sqrt(noise[:, 0].size))
    flat = noise[:, 1].reshape(200, -1) / expected[1]
    rows = np.corrcoef(flat)[np.triu_indices(200, 1)]
    assert np.abs(rows).max() < 5 / np.sqrt(flat.shape[1])  # rows independent
    assert abs(np.mean(flat[:, 1:] * flat[:, :-1])) < 5 / np.sqrt(flat.size)  # neighbouring pixels independent
