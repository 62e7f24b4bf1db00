import numpy as np
import pytest

from dhs_gen.config import ConfigError
from dhs_gen.injection.priors import (
    GRID_PRESETS,
    N_UNIFORMS,
    GridSpec,
    grid_spec,
    prior_spec,
    sample_parameters,
)
from dhs_gen.units import nmgy_to_mag


@pytest.mark.parametrize("name", sorted(GRID_PRESETS))
def test_named_grids_span_the_default_theta_range(name):
    grid = grid_spec(name, None)
    assert min(grid.theta_e_arcsec) == pytest.approx(0.5) and max(grid.theta_e_arcsec) == pytest.approx(3.0)
    cells = grid.cell(np.arange(grid.n_cells))
    assert len({(t, z, lo) for t, z, lo in zip(cells["theta_e_arcsec"], cells["z_l"], cells["mag_lo"])}) == grid.n_cells
    assert np.all(cells["mag_hi"] > cells["mag_lo"])


def test_grid_overrides_and_bad_grids():
    assert grid_spec("grid_small", {"z_l": [0.4]}).z_l == [0.4]
    with pytest.raises(ConfigError, match="unknown grid preset"):
        grid_spec("grid_huge", None)
    with pytest.raises(ValueError, match="theta_E must be > 0"):
        GridSpec(theta_e_arcsec=[0.0, 1.0], z_l=[0.5], src_mag_r_edges=[23, 24])
    with pytest.raises(ValueError, match="increase"):
        GridSpec(theta_e_arcsec=[1.0], z_l=[0.5], src_mag_r_edges=[24, 23])


def test_legacy_final_priors_are_reproduced():
    prior = prior_spec("legacy_final", None)
    u = np.random.default_rng(0).random((20000, N_UNIFORMS))
    p = sample_parameters(u, prior)
    assert p["theta_e_arcsec"].min() >= 0.5 and p["theta_e_arcsec"].max() <= 3.0
    assert 23.0 <= p["src_mag_r"].min() and p["src_mag_r"].max() <= 26.0
    beta = np.hypot(p["src_x_arcsec"], p["src_y_arcsec"]) / p["theta_e_arcsec"]
    assert beta.min() >= 0.1 - 1e-9 and beta.max() <= 0.4 + 1e-9
    # area weighting: p(beta) ∝ beta, so the median is sqrt((0.1² + 0.4²) / 2)
    assert np.median(beta) == pytest.approx(np.sqrt((0.01 + 0.16) / 2), abs=0.01)
    q = (1 - np.hypot(p["lens_e1"], p["lens_e2"])) / (1 + np.hypot(p["lens_e1"], p["lens_e2"]))
    assert q.min() >= 0.5 - 1e-9
    assert np.std(p["shear_gamma1"]) == pytest.approx(0.05, rel=0.05)
    assert np.corrcoef(p["shear_gamma1"], p["shear_gamma2"])[0, 1] == pytest.approx(0, abs=0.03)
    g_r = nmgy_to_mag(p["src_flux_g"]) - nmgy_to_mag(p["src_flux_r"])
    r_z = nmgy_to_mag(p["src_flux_r"]) - nmgy_to_mag(p["src_flux_z"])
    assert np.mean(g_r) == pytest.approx(1.15, abs=0.02) and np.std(g_r) == pytest.approx(0.30, rel=0.05)
    assert np.mean(r_z) == pytest.approx(0.85, abs=0.02)


def test_default_priors_give_blue_sources_in_nanomaggies():
    p = sample_parameters(np.random.default_rng(1).random((5000, N_UNIFORMS)), prior_spec("dr10_blue", None))
    g_r = nmgy_to_mag(p["src_flux_g"]) - nmgy_to_mag(p["src_flux_r"])
    assert np.mean(g_r) == pytest.approx(0.35, abs=0.02)
    # r = 22.5 - 2.5 log10(flux): 23-26 mag sources are 0.04-0.63 nmgy
    assert np.allclose(nmgy_to_mag(p["src_flux_r"]), p["src_mag_r"], atol=1e-9)
    assert 0.039 < p["src_flux_r"].min() and p["src_flux_r"].max() < 0.64


def test_grid_cells_fix_theta_z_and_magnitude_bin():
    u = np.random.default_rng(2).random((100, N_UNIFORMS))
    p = sample_parameters(u, prior_spec("dr10_blue", None), theta_e=np.full(100, 1.25), z_l=np.full(100, 0.4),
                          mag_range=(np.full(100, 24.0), np.full(100, 24.5)))
    assert np.all(p["theta_e_arcsec"] == 1.25) and np.all(p["z_l"] == 0.4)
    assert p["src_mag_r"].min() >= 24.0 and p["src_mag_r"].max() <= 24.5


def test_bad_uniform_shape_and_bad_prior():
    with pytest.raises(ValueError, match="uniforms of shape"):
        sample_parameters(np.zeros((3, 2)), prior_spec("dr10_blue", None))
    with pytest.raises(ValueError, match="lo <= hi"):
        prior_spec("dr10_blue", {"src_reff_arcsec": (0.5, 0.1)})
    with pytest.raises(ConfigError, match="unknown prior preset"):
        prior_spec("nope", None)
