"""COSMOS bank: cleaning, storage, the flux/pixel -> surface brightness conversion, flux conservation."""
from __future__ import annotations

import numpy as np
import pytest

from dhs_gen.lensing import LensingInputError, render_lensed_sersic, total_flux
from dhs_gen.lensing.image_source import render_lensed_image, template_to_surface_brightness
from dhs_gen.lensing.magnification import magnification
from dhs_gen.sources import SourceError, get_source
from dhs_gen.sources.cosmos import (
    SMALL_HLR_ARCSEC,
    SMALL_SUPERSAMPLING,
    CosmosBank,
    clean_galaxy,
    template_supersampling,
)


@pytest.fixture(scope="module")
def bank():
    return get_source("cosmos").bank


def test_bank_from_packaged_catalogues(bank):
    assert len(bank) == 110  # 100 btk_26_extension + 10 paltas_23.5_n1
    assert bank.templates.dtype == np.float32 and bank.templates.shape[1:] == (64, 64)
    assert np.isfinite(bank.templates).all()
    np.testing.assert_allclose(bank.templates.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    # the footprint's negative sky noise is kept (clipping it added its ~3.5% as a positive halo)
    negative = -np.clip(bank.templates, None, 0.0).sum(axis=(1, 2))
    assert (negative > 0).mean() > 0.9 and 0.01 < np.median(negative) < 0.08
    assert np.all(bank.pixel_scale >= 0.03) and np.isfinite(bank.mag_g[:100]).all()
    assert 0.08 < np.median(bank.hlr_arcsec) < 0.4  # faint z ~ 1 galaxies are sub-arcsecond


def test_cleaning_removes_background_and_neighbours():
    rng = np.random.default_rng(0)
    yy, xx = np.indices((61, 61))
    galaxy = 5.0 * np.exp(-((xx - 30) ** 2 + (yy - 30) ** 2) / (2 * 3.0**2))
    neighbour = 5.0 * np.exp(-((xx - 52) ** 2 + (yy - 10) ** 2) / (2 * 2.0**2))
    image = galaxy + neighbour + 0.7 + rng.normal(0, 0.01, galaxy.shape)
    template, scale = clean_galaxy(image, noise_sigma=0.01, size=64)
    assert scale == 0.03 and template.shape == (64, 64)
    # the neighbour (at +22, -20 px from the centre) is gone, the galaxy kept whole
    cy = cx = 32
    assert template[cy - 20 - 4:cy - 20 + 5, cx + 22 - 4:cx + 22 + 5].sum() == 0
    np.testing.assert_allclose(template[cy - 10:cy + 11, cx - 10:cx + 11].sum(), 1.0, atol=0.01)
    with pytest.raises(SourceError, match="no pixels above"):
        clean_galaxy(rng.normal(0, 1, (40, 40)), noise_sigma=100.0)


def test_cleaning_keeps_the_sky_noise_unbiased():
    """A compact galaxy (sigma 2 px) in white noise: the template's light beyond 4 sigma (where the
    galaxy has none) averages to zero within its error; clipping the footprint's negative noise
    gave it +0.46% of the flux."""
    rng = np.random.default_rng(1)
    yy, xx = np.indices((81, 81))
    galaxy = np.exp(-((xx - 40) ** 2 + (yy - 40) ** 2) / (2 * 2.0**2))
    galaxy *= 2000.0 / galaxy.sum()
    r = np.hypot(*(np.indices((64, 64)) - 31.5))
    halo = [clean_galaxy(galaxy + 5.0 + rng.normal(0, 1.0, galaxy.shape), noise_sigma=1.0)[0][r > 8].sum()
            for _ in range(30)]
    assert abs(np.mean(halo)) < 3 * np.std(halo) / np.sqrt(len(halo)) + 1e-4
    assert abs(np.mean(halo)) < 0.002


def test_small_templates_are_rendered_with_finer_sub_pixels(bank):
    """Half-light radius < 0.15": ray-traced with >= 8 sub-pixels per side (the lensed flux at the
    default 4 is off by up to ~9%, against 32 sub-pixels)."""
    from dhs_gen.sources import render_lensed_source

    assert template_supersampling([0.1, 0.2], 4).tolist() == [SMALL_SUPERSAMPLING, 4]
    assert template_supersampling([0.1], 12).tolist() == [12]
    rows = np.flatnonzero(bank.hlr_arcsec < SMALL_HLR_ARCSEC)[:6]
    big = np.flatnonzero(bank.hlr_arcsec >= 0.3)[:2]
    pick = np.concatenate([rows, big])
    n = len(pick)
    rng = np.random.default_rng(0)
    lens = {"theta_E": np.full(n, 1.2), "e1": np.full(n, 0.05), "e2": np.zeros(n), "center_x": np.zeros(n),
            "center_y": np.zeros(n), "gamma1": np.zeros(n), "gamma2": np.zeros(n)}
    batch = {"kind": "image", "templates": bank.templates[pick], "template_pixel_scale": bank.pixel_scale[pick],
             "center_x": rng.uniform(0.05, 0.3, n), "center_y": rng.uniform(-0.1, 0.1, n),
             "flux_g": np.ones(n), "flux_r": np.ones(n), "flux_z": np.ones(n), "hlr_arcsec": bank.hlr_arcsec[pick]}
    psf = np.full((n, 3), 1.2)
    args = (batch["templates"], batch["template_pixel_scale"], np.ones((n, 3)), batch["center_x"], batch["center_y"],
            psf)
    got = render_lensed_source(lens, batch, psf, supersampling=4)
    at = {s: render_lensed_image(lens, *args, supersampling=s) for s in (4, 8, 32)}
    np.testing.assert_array_equal(got[:len(rows)], at[8][:len(rows)])
    np.testing.assert_array_equal(got[len(rows):], at[4][len(rows):])
    err = {s: np.abs(at[s][:len(rows)] - at[32][:len(rows)]).sum(axis=(1, 2, 3)) for s in (4, 8)}
    assert np.all(err[8] <= err[4]) and err[8].sum() < 0.6 * err[4].sum()
    with pytest.raises(LensingInputError, match="supersampling must be an integer"):
        render_lensed_source(lens, batch, psf, supersampling=2.5)  # not truncated to 2 before the per-row raise


def test_bank_save_load_roundtrip(bank, tmp_path):
    uri = str(tmp_path / "bank.npz")
    bank.save(uri)
    loaded = CosmosBank.load(uri)
    np.testing.assert_array_equal(loaded.templates, bank.templates)
    np.testing.assert_array_equal(loaded.ident, bank.ident)
    np.savez(tmp_path / "bad.npz", templates=np.zeros((2, 4, 4)))
    with pytest.raises(SourceError, match="missing arrays"):
        CosmosBank.load(str(tmp_path / "bad.npz"))


def test_surface_brightness_conversion_is_flux_over_pixel_area(bank):
    sb = template_to_surface_brightness(bank.templates[:3], 2.0, bank.pixel_scale[:3, None, None])
    # integrating surface brightness over template pixels gives back the flux, not flux / 0.03^2
    np.testing.assert_allclose((sb * bank.pixel_scale[:3, None, None] ** 2).sum(axis=(1, 2)), 2.0, rtol=1e-5)
    assert sb.max() > 1000 * bank.templates[:3].max()  # 1 / 0.03^2 = 1111: the 1000x unit


def _lens(n, theta_e):
    zeros = np.zeros(n)
    return dict(theta_E=np.full(n, theta_e), e1=zeros + 0.05, e2=zeros - 0.03, center_x=zeros, center_y=zeros,
                gamma1=zeros + 0.02, gamma2=zeros)


def test_injected_flux_is_source_flux_times_magnification():
    # a template sampled from a Sersic profile must give the Sersic answer: flux = mu x source flux
    n, size, scale = 3, 128, 0.03
    r_e, nser = np.array([0.2, 0.3, 0.25]), np.array([1.0, 1.0, 0.7])
    zeros = np.zeros(n)
    cx, cy = np.array([0.2, -0.1, 0.05]), np.array([0.1, 0.25, -0.2])
    from dhs_gen.lensing import fast

    x, y = fast.subpixel_grid(size, scale, 5)
    src = dict(R_sersic=r_e, n_sersic=nser, e1=zeros, e2=zeros, center_x=zeros, center_y=zeros)
    prof = fast.sersic_profile(x[None], y[None], src)
    templates = fast.bin_pixels(prof, size, 5)
    fluxes = np.array([[0.3, 1.0, 2.0], [0.05, 0.1, 0.2], [1.0, 1.0, 1.0]])
    lens = _lens(n, 1.4)
    images = render_lensed_image(lens, templates, np.full(n, scale), fluxes, cx, cy, np.full((n, 3), 1.2))
    src.update(center_x=cx, center_y=cy)
    mu = magnification(lens, src)
    assert np.all(mu > 2)
    np.testing.assert_allclose(total_flux(images), mu[:, None] * fluxes, rtol=0.02)
    sersic = render_lensed_sersic(lens, dict(src, flux_g=fluxes[:, 0], flux_r=fluxes[:, 1], flux_z=fluxes[:, 2]),
                                  np.full((n, 3), 1.2))
    assert np.linalg.norm(images - sersic) / np.linalg.norm(sersic) < 0.03  # 0.09" template vs analytic


def test_cosmos_fast_matches_lenstronomy_interpol_and_conserves_flux():
    n = 4
    gen = get_source("cosmos")
    batch = gen.sample(np.random.default_rng(8), n, theta_E=np.full(n, 1.5))
    lens = _lens(n, 1.5)
    fluxes = np.stack([batch["flux_g"], batch["flux_r"], batch["flux_z"]], axis=1)
    args = (lens, batch["templates"], batch["template_pixel_scale"], fluxes, batch["center_x"], batch["center_y"],
            np.full((n, 3), 1.3))
    fast_img = render_lensed_image(*args)
    ref = render_lensed_image(*args, backend="lenstronomy")
    np.testing.assert_allclose(total_flux(fast_img), total_flux(ref), rtol=1e-4)
    rel = np.linalg.norm((fast_img - ref).reshape(n * 3, -1), axis=1) / np.linalg.norm(ref.reshape(n * 3, -1), axis=1)
    assert rel.max() <= 1e-5
    # unlensed (tiny theta_E) the stamp holds exactly the source flux: no 1000x factor
    tiny = dict(lens, theta_E=np.full(n, 1e-4))
    unlensed = render_lensed_image(tiny, *args[1:4], np.zeros(n), np.zeros(n), args[6])
    np.testing.assert_allclose(total_flux(unlensed), fluxes, rtol=0.01)
