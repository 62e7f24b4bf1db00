"""MockDR10: determinism, interface, catalogue <-> cutout consistency, real LRG hosts."""
from __future__ import annotations

import numpy as np
import pytest

from dhs_gen.survey import Cutout, MockDR10, ProviderConfig, SurveyError, load_lrg_sample, make_provider
from dhs_gen.survey.sky import TYPES


@pytest.fixture(scope="module")
def mock():
    return MockDR10(seed=7)


def test_cutout_interface(mock):
    c = mock.get_cutout(150.1, 2.2, size=101)
    assert isinstance(c, Cutout)
    assert c.image.shape == (3, 101, 101) and c.image.dtype == np.float32
    assert c.bands == "grz"
    assert c.psf_fwhm.shape == (3,) and np.all((c.psf_fwhm > 0.6) & (c.psf_fwhm < 3.0))
    assert c.psfdepth.shape == (3,) and np.all((c.psfdepth > 21.5) & (c.psfdepth < 26.5))
    assert c.meta["provider"] == "mock" and c.meta["request_url"].startswith("mock://")
    assert mock.get_cutout(150.1, 2.2, size=31).image.shape == (3, 31, 31)


def test_same_seed_same_pixels_and_positions_differ(mock):
    a = mock.get_cutout(34.5, -5.1)
    b = MockDR10(seed=7).get_cutout(34.5, -5.1)
    np.testing.assert_array_equal(a.image, b.image)
    other = mock.get_cutout(34.5, -5.1 + 10 / 3600)
    assert not np.allclose(a.image, other.image)
    assert not np.allclose(a.image, MockDR10(seed=8).get_cutout(34.5, -5.1).image)


def test_bad_requests_raise_clear_errors(mock):
    with pytest.raises(SurveyError, match="bad_position"):
        mock.get_cutout(10.0, 95.0)
    with pytest.raises(SurveyError, match="bad_size"):
        mock.get_cutout(10.0, 5.0, size=100)
    with pytest.raises(ValueError, match="psf_model"):
        MockDR10(psf_model="gauss")
    with pytest.raises(ValueError, match="unknown defect"):
        MockDR10(defect_rates={"cosmic_rays": 0.1})


def test_catalogue_row_is_centred_galaxy(mock):
    cat = mock.catalog(3000).to_pandas()
    assert len(cat) == 3000
    assert not cat.duplicated(["brickname", "objid"]).any()
    bright = cat[(cat.mock_population == "galaxy") & (cat.flux_r > 5)].iloc[:3]
    assert len(bright)
    for row in bright.itertuples():
        c = mock.get_cutout(row.ra, row.dec)
        assert c.meta["central_objid"] == row.objid
        assert c.meta["central_type"] == row.type
        np.testing.assert_allclose(c.meta["central_flux"], [row.flux_g, row.flux_r, row.flux_z], rtol=1e-5)
        # the galaxy's light is at the centre: central 5x5 flux well above the noise
        core = c.image[1, 48:53, 48:53].sum()
        assert core > 10 * c.meta["sigma_pix_white"][1] * 5


def test_real_lrg_position_shows_the_real_lrg(mock):
    lrgs = load_lrg_sample()
    assert {"ra", "dec", "brickname", "flux_g", "flux_r", "flux_z", "flux_w1", "type"} <= set(lrgs.columns)
    assert len(lrgs) > 6000 and set(lrgs["type"]) <= set(TYPES)
    row = lrgs[lrgs.flux_r > 10].iloc[0]
    c = mock.get_cutout(row.ra, row.dec)
    assert c.meta["central_population"] == "lrg"
    assert c.meta["central_type"] == row.type
    np.testing.assert_allclose(c.meta["central_flux"], [row.flux_g, row.flux_r, row.flux_z], rtol=1e-6)
    # the r light within 6" holds the real flux (plus companions), peaking at the centre
    yy, xx = np.mgrid[:101, :101]
    inner = np.hypot(xx - 50, yy - 50) < 6 / 0.262
    assert np.nansum(c.image[1][inner]) > 0.85 * row.flux_r
    peak = np.unravel_index(np.nanargmax(c.image[1, 40:61, 40:61]), (21, 21))
    assert abs(peak[0] - 10) <= 1 and abs(peak[1] - 10) <= 1


def test_catalogue_columns_units_and_speed_shape(mock):
    cat = mock.catalog(2000)
    for name in ("brickname", "objid", "ra", "dec", "type", "flux_g", "flux_r", "flux_z", "flux_w1", "shape_r",
                 "shape_e1", "shape_e2", "sersic", "nobs_g", "nobs_r", "nobs_z", "psfsize_g", "psfdepth_r",
                 "galdepth_z", "maskbits", "ebv", "z_phot_median"):
        assert name in cat.column_names, name
    df = cat.to_pandas()
    # psfdepth is an inverse variance [nmgy^-2] as in sweeps: 5-sigma depth 22-26 mag
    m5 = 22.5 - 2.5 * np.log10(5 / np.sqrt(df.psfdepth_r))
    assert m5.between(22.0, 26.5).all()
    assert (df.galdepth_r < df.psfdepth_r).all()
    assert set(df.type) <= set(TYPES) and df.type.nunique() == 5
    assert df.psfsize_r.between(0.6, 3.0).all()
    assert (df.loc[df.type == "PSF", "shape_r"] == 0).all()
    assert (df.loc[df.type == "DEV", "sersic"] == 4).all()
    np.testing.assert_array_equal(MockDR10(seed=7).catalog(2000).column("ra"), cat.column("ra"))


def test_provider_config_factory():
    p = make_provider(ProviderConfig(kind="mock", mock={"seed": 3, "psf_model": "psfex"}))
    assert isinstance(p, MockDR10) and p.seed == 3 and p.psf_model == "psfex"
    assert make_provider({"kind": "legacysurvey", "legacysurvey": {"base_url": "http://127.0.0.1:9/x"}}).kind == "legacysurvey"
    with pytest.raises(ValueError, match="coadd.root"):
        make_provider({"kind": "coadd"})
    from dhs_gen.config import ConfigError

    with pytest.raises(ConfigError, match="kind"):
        make_provider({"kind": "sdss"})


def test_catalogue_columns_follow_the_real_dr9_tractor_file(shared_data):
    """Names (lower-cased) and storage conventions of a real DR9 Tractor catalogue."""
    from astropy.io import fits

    with fits.open(shared_data / "dr9_tractor_schema" / "tractor-1054p567.fits") as hdul:
        real = hdul[1].data
        names = {n.lower() for n in real.columns.names}
        real_ivar = float(real["PSFDEPTH_R"][0])
    cat = MockDR10(seed=1).catalog(500)
    ours = set(cat.column_names) - {"z_phot_median", "mock_population"}
    assert ours <= names, sorted(ours - names)
    # both store psfdepth as an inverse variance of the same order (hundreds of nmgy^-2 in r)
    assert 10 < real_ivar < 1e4
    assert 10 < float(np.median(cat.column("psfdepth_r").to_numpy())) < 1e4


def test_catalogue_distributions_are_survey_like():
    df = MockDR10(seed=2).catalog(20000).to_pandas()
    gal = df[df.mock_population == "galaxy"]
    mag_r = 22.5 - 2.5 * np.log10(gal.flux_r)
    # rising galaxy counts: each magnitude bin ~2x the previous (slope 0.33 dex/mag)
    counts = np.histogram(mag_r, bins=[20, 21, 22, 23])[0]
    assert np.all(np.diff(np.log10(counts)) > 0.2)
    frac = gal.type.value_counts(normalize=True)
    assert 0.25 < frac["REX"] < 0.6 and frac["DEV"] > 0.05 and frac["SER"] > 0.03
    stars = df[df.mock_population == "star"]
    assert 0.05 < len(stars) / len(df) < 0.2 and (stars.type == "PSF").all()
    assert gal.z_phot_median.between(0, 2).all() and (stars.z_phot_median == 0).all()
    assert (df.maskbits != 0).mean() < 0.1
    lrg = df[df.mock_population == "lrg"]
    assert len(lrg) > 100  # the plan starts with the real LRG bricks
    assert (22.5 - 2.5 * np.log10(lrg.flux_z)).median() < 20.5


def test_neighbour_counts_follow_the_density():
    """Objects per cutout average density x area (26.5" square), with Poisson scatter."""
    mock = MockDR10(seed=4, include_lrgs=False)
    half = 101 * 0.262 / 2
    counts = []
    for i in range(40):
        ra, dec = 100.0 + 0.05 * i, 10.0
        objs, x, y = mock.scene_objects(ra, dec, 101)
        inside = (np.abs(x - 50) <= 50.5) & (np.abs(y - 50) <= 50.5) & (objs["population"] != 3)
        counts.append(int(inside.sum() - (objs["population"][inside] == 4).sum()))
    expected = (mock.galaxy_density + mock.star_density) * (2 * half / 3600) ** 2
    assert np.mean(counts) == pytest.approx(expected, rel=0.35)
    assert np.var(counts) > 0.3 * expected
