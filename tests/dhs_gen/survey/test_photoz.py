"""Host photo-z (lrg_template_v1): the template table, the estimator, and its bias and scatter
against spectroscopic redshifts of real Legacy Surveys lenses (../shared/data)."""
import numpy as np
import pandas as pd
import pytest

from dhs_gen.survey import load_lrg_sample
from dhs_gen.survey.photoz import (
    colours_from_fluxes,
    photo_z,
    photo_z_from_fluxes,
    redshift_metrics,
    template_colours,
)


def test_template_track_has_the_lrg_colours_of_the_kcorrect_template():
    # kcorrect 5.1.9, kcorrect-lrg1-v4 through DECam r, z and WISE W1 (../shared/docs/HOST_REDSHIFTS.md)
    c = template_colours([0.2, 0.5, 0.8])
    assert np.allclose(c[:, 1], [0.76, 1.18, 2.00], atol=0.01)
    assert np.allclose(c[:, 2], [0.07, 1.00, 1.72], atol=0.01)
    assert np.all(np.diff(template_colours(np.linspace(0.1, 0.9, 9))[:, 1]) > 0)  # r-z reddens with z


def test_template_colours_return_their_redshift_and_missing_colours_give_nan():
    z_true = np.array([0.15, 0.3, 0.45, 0.6, 0.75, 0.9])
    z, err = photo_z(template_colours(z_true))
    assert np.allclose(z, z_true, atol=0.01) and np.all((err > 0) & (err < 0.05))
    one = template_colours([0.5])
    one[0, [0, 2]] = np.nan
    assert np.isnan(photo_z(one)[0][0])  # one colour cannot locate the template
    assert np.all(np.isnan(colours_from_fluxes([-1.0], [2.0], [5.0], [9.0])[:, 0]))


def test_photometric_errors_widen_the_redshift_error():
    flux = [np.array([1.0]), np.array([4.0]), np.array([12.0]), np.array([25.0])]
    _, tight = photo_z_from_fluxes(*flux, ivars=[np.array([1e6])] * 4)
    _, loose = photo_z_from_fluxes(*flux, ivars=[np.array([4.0])] * 4)
    assert loose[0] > 1.5 * tight[0]


def test_packaged_lrg_hosts_all_have_a_redshift_near_the_desi_lrg_range():
    lrg = load_lrg_sample()
    z, err = lrg["z_phot"].to_numpy(), lrg["z_phot_err"].to_numpy()
    assert np.all(np.isfinite(z)) and np.all(err > 0)
    p5, p50, p95 = np.percentile(z, [5, 50, 95])
    assert 0.5 < p50 < 0.56 and 0.3 < p5 < 0.45 and 0.7 < p95 < 0.8


@pytest.fixture(scope="module")
def lenses_with_spectra(shared_data):
    """Legacy Surveys lenses (Stein et al.) with DR9 grz photometry and a spectroscopic redshift."""
    ssl = pd.concat([pd.read_csv(shared_data / "ssl_legacysurvey" / f"{n}.tsv", sep="\t")
                     for n in ("new_lenses", "training_lenses")]).drop_duplicates(["ra", "dec"])
    return ssl[ssl["z_spec"] > 0]


def test_bias_and_scatter_against_spectroscopic_redshifts(lenses_with_spectra):
    s = lenses_with_spectra
    flux = [10 ** (-0.4 * (s[f"mag_{b}"].to_numpy() - 22.5)) for b in "grz"]
    z, err = photo_z_from_fluxes(*flux, np.full(len(s), np.nan))  # no W1 in these tables
    ours = redshift_metrics(z, s["z_spec"], err)
    survey = redshift_metrics(s["z_phot_mean"], s["z_spec"])  # DR9's own photo-z, for scale
    print(f"\nlrg_template_v1 (grz) vs z_spec: {ours}\nDR9 photo-z vs z_spec: {survey}")
    assert ours["n"] > 500
    assert abs(ours["bias"]) < 0.02 and ours["nmad"] < 0.035 and ours["outlier_frac"] < 0.08
    assert 0.7 < ours["pull_nmad"] < 1.3  # the quoted z_phot_err is about right
    assert survey["nmad"] < ours["nmad"]  # the survey's photo-z is better where it exists
