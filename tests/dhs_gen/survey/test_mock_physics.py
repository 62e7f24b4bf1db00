"""MockDR10 physics: noise <-> depth round trip, PSF FWHM on mock stars, PSFEx option, defects,
and pixel statistics against the real DR10 cutouts."""
from __future__ import annotations

import numpy as np
import pytest

from dhs_gen import PIXEL_SCALE_ARCSEC
from dhs_gen.psf import nea_fwhm, psfsize_kernels
from dhs_gen.survey import MockDR10
from dhs_gen.survey.cutout_batch import cutout_quality
from dhs_gen.survey.mock import correlated_sigma_factor
from dhs_gen.units import pixel_sigma_from_depth

EMPTY = dict(galaxy_density=0, star_density=0, include_lrgs=False, add_host=False,
             defect_rates={"nan_patch": 0, "satellite_trail": 0, "missing_band": 0})


def _recovered_mag5(mock, positions, band):
    """5-sigma depth from the scatter of PSF-weighted fluxes at 16 spots per noise-only cutout."""
    fluxes, fwhm, depth = [], None, None
    for ra, dec in positions:
        c = mock.get_cutout(ra, dec)
        fwhm, depth = c.psf_fwhm[band], c.psfdepth[band]
        psf = psfsize_kernels([fwhm], size=25)[0]  # the survey psfsize convention
        for r0 in range(0, 100, 25):
            for c0 in range(0, 100, 25):
                stamp = c.image[band, r0:r0 + 25, c0:c0 + 25].astype(np.float64)
                fluxes.append((stamp * psf).sum() / (psf**2).sum())
    sigma = np.std(fluxes)
    return 22.5 - 2.5 * np.log10(5 * sigma), float(depth), float(fwhm)


@pytest.mark.parametrize("correlated", [False, True])
def test_noise_depth_round_trip(correlated):
    mock = MockDR10(seed=11, correlated_noise=correlated, **EMPTY)
    positions = [(20.0, 1.0 + 0.0001 * i) for i in range(30)]  # one brick: fixed conditions
    for band in range(3):
        m5, depth, fwhm = _recovered_mag5(mock, positions, band)
        assert m5 == pytest.approx(depth, abs=0.1), (band, m5, depth)
    # per-pixel sigma: sigma_flux / sqrt(NEA), lowered by the coadd correlation factor; psfsize is
    # the NEA-FWHM of the mock's kernels, so the Gaussian-NEA formula of dhs_gen.units is exact
    c = mock.get_cutout(20.0, 1.0)
    factor = correlated_sigma_factor() if correlated else 1.0
    got = c.image.reshape(3, -1).std(axis=1)
    np.testing.assert_allclose(got, np.array(c.meta["sigma_pix_white"]) * factor, rtol=0.05)
    np.testing.assert_allclose(c.meta["sigma_pix_white"], pixel_sigma_from_depth(c.psfdepth, c.psf_fwhm), rtol=1e-3)
    np.testing.assert_allclose(got, pixel_sigma_from_depth(c.psfdepth, c.psf_fwhm) * factor, rtol=0.05)


@pytest.mark.parametrize("psf_model", ["moffat", "psfex"])
def test_psf_width_measured_on_mock_stars(psf_model):
    """A mock star (drawn at a sub-pixel offset with the cutout's PSF) has the cutout's psf_fwhm
    as its NEA-FWHM (legacypipe's psfsize), within 1%, in every band and PSF model."""
    from dhs_gen.survey.render import render_scene
    from dhs_gen.survey.sky import concat_objects

    mock = MockDR10(seed=5, **dict(EMPTY, noise=False, psf_model=psf_model))
    for i, (dx, dy) in enumerate([(0.0, 0.0), (0.3, -0.2), (-0.45, 0.4)]):
        ra, dec = 40.0 + 0.5 * i, 3.0
        c = mock.get_cutout(ra, dec)
        objs = mock.scene_objects(ra, dec, 101)[0]
        star = concat_objects([{k: v[:0] for k, v in objs.items()},
                               {**{k: np.zeros(1, v.dtype) for k, v in objs.items()},  # type 0 = PSF
                                "ra": np.array([ra - dx * PIXEL_SCALE_ARCSEC / 3600 / np.cos(np.radians(dec))]),
                                "dec": np.array([dec + dy * PIXEL_SCALE_ARCSEC / 3600]),
                                **{f"flux_{b}": np.array([10.0]) for b in "grz"}}])
        img = render_scene(star, ra, dec, 101, mock.make_psf(c.psf_fwhm), halo_frac=0.0)
        assert abs(img.sum(axis=(1, 2)) - 10.0).max() < 0.01
        measured = [nea_fwhm(band) * PIXEL_SCALE_ARCSEC for band in img]
        np.testing.assert_allclose(measured, c.psf_fwhm, rtol=0.01)


def test_psfex_option_uses_real_models_with_the_conditions_fwhm():
    from dhs_gen.survey.psfmodels import PSFExPSF

    psf = PSFExPSF([1.2, 1.1, 1.0])
    assert psf.kernels.shape == (3, 33, 33)
    np.testing.assert_allclose(psf.kernels.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    # centred: light centroid on the middle pixel within 0.1 px
    yy, xx = np.mgrid[:33, :33]
    for k in psf.kernels:
        assert abs((k * xx).sum() - 16) < 0.05 and abs((k * yy).sum() - 16) < 0.05
    a = MockDR10(seed=2, psf_model="psfex").get_cutout(30.0, 0.5)
    b = MockDR10(seed=2, psf_model="moffat").get_cutout(30.0, 0.5)
    np.testing.assert_allclose(a.psf_fwhm, b.psf_fwhm)
    assert not np.allclose(a.image, b.image)


def test_defects_flags_and_rates():
    mock = MockDR10(seed=3, defect_rates={"nan_patch": 1.0, "satellite_trail": 1.0, "missing_band": 1.0})
    c = mock.get_cutout(50.0, -2.0)
    assert {"nan_patch", "satellite_trail", "missing_band"} <= set(c.meta["defects"])
    q = cutout_quality(c.image)
    assert q["has_nan"] and q["nan_pixel_count"] > 0 and not q["cutout_ok"] and q["bad_pixel_frac"] > 0.3
    missing = c.meta["missing_bands"]
    assert len(missing) == 1 and np.isnan(c.psfdepth["grz".index(missing)])
    # at the default rates, defects are rare but present; most cutouts are clean
    default = MockDR10(seed=3)
    flags = [cutout_quality(default.get_cutout(60.0 + 0.01 * i, 1.0).image)["cutout_ok"] for i in range(150)]
    assert 0.9 <= np.mean(flags) <= 1.0


def test_bright_star_saturates_and_has_a_halo():
    mock = MockDR10(seed=9, **dict(EMPTY, star_density=0))
    from dhs_gen.survey.sky import concat_objects

    objs = mock.scene_objects(70.0, 5.0, 101)[0]
    star = {k: v[:0] for k, v in objs.items()}
    star = concat_objects([star, {**{k: np.zeros(1, v.dtype) for k, v in objs.items()},
                                  "ra": np.array([70.0]), "dec": np.array([5.0 + 8 / 3600]),
                                  "flux_g": np.array([3e4]), "flux_r": np.array([5e4]), "flux_z": np.array([6e4])}])
    from dhs_gen.survey.psfmodels import MoffatPSF
    from dhs_gen.survey.render import render_scene

    img = render_scene(star, 70.0, 5.0, 101, MoffatPSF([1.3, 1.2, 1.1]))
    # halo: light 40 px from the star is well above what the Moffat core alone gives
    core_only = render_scene(star, 70.0, 5.0, 101, MoffatPSF([1.3, 1.2, 1.1]), halo_frac=0.0)
    assert img[1, 40, 50] > 5 * core_only[1, 40, 50]
    assert img.max() > mock.saturation_nmgy


def test_pixel_statistics_match_real_dr10_cutouts(project_data):
    """Background sigma (robust, outer region) and central brightness: mock at the real cutouts'
    positions vs the six real DR10 cutouts (real hosts are lens candidates, mock hosts real LRGs)."""
    from dhs_gen.survey.gallery import real_cutouts

    mock = MockDR10(seed=0)
    yy, xx = np.mgrid[:101, :101]
    outer = np.hypot(xx - 50, yy - 50) > 35

    def stats(image):
        bg = [1.4826 * np.nanmedian(np.abs(b[outer] - np.nanmedian(b[outer]))) for b in image]
        return np.array(bg), float(np.nanmean(image[1, 48:53, 48:53]))

    real, fake = [], []
    for _, stamp in real_cutouts():
        real.append(stats(stamp.image))
        fake.append(stats(mock.get_cutout(stamp.meta["ra"], stamp.meta["dec"]).image))
    real_bg = np.median([r[0] for r in real], axis=0)
    fake_bg = np.median([f[0] for f in fake], axis=0)
    np.testing.assert_allclose(fake_bg, real_bg, rtol=0.5)          # same noise level per band
    assert np.all(fake_bg[[0, 1]] < fake_bg[2]) and np.all(real_bg[[0, 1]] < real_bg[2])  # z noisiest
    real_core = np.median([r[1] for r in real])
    fake_core = np.median([f[1] for f in fake])
    assert 1 / 3 < fake_core / real_core < 3


def _lag1(image):
    """Mean lag-1 autocorrelation (x and y) of sigma-clipped background pixels, per band."""
    out = []
    for band in image:
        d = band - np.nanmedian(band)
        sig = 1.4826 * np.nanmedian(np.abs(d))
        m = np.abs(d) < 3 * sig
        mx, my = m[:, 1:] & m[:, :-1], m[1:, :] & m[:-1, :]
        var = (d[m] ** 2).mean()
        out.append(0.5 * ((d[:, 1:] * d[:, :-1])[mx].mean() + (d[1:, :] * d[:-1, :])[my].mean()) / var)
    return np.array(out)


def test_coadd_noise_correlation_matches_real_cutouts(project_data):
    from dhs_gen.survey.gallery import real_cutouts

    real = np.median([_lag1(s.image) for _, s in real_cutouts()], axis=0)
    assert np.all((real > 0.2) & (real < 0.5))
    mock = MockDR10(seed=6, **dict(EMPTY, star_density=0))
    corr = np.median([_lag1(mock.get_cutout(80.0 + 0.01 * i, 1.0).image) for i in range(6)], axis=0)
    white = _lag1(MockDR10(seed=6, correlated_noise=False, **EMPTY).get_cutout(80.0, 1.0).image)
    np.testing.assert_allclose(corr, real, atol=0.1)
    assert np.all(np.abs(white) < 0.05)
