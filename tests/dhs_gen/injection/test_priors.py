import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

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


def test_z_l_bins_hold_their_points_and_bin_redshifts_half_open():
    grid = grid_spec("grid_small", None)
    assert np.allclose(grid.z_l_bin_edges, [0.25, 0.35, 0.45, 0.55, 0.65, 0.75])
    assert grid.z_l_bin([0.2, 0.25, 0.349, 0.35, 0.7, 0.75, np.nan]).tolist() == [-1, 0, 0, 1, 4, -1, -1]
    assert np.allclose(grid_spec(None, {"theta_e_arcsec": [1.0], "z_l": [0.4], "src_mag_r_edges": [23, 24]})
                       .z_l_bin_edges, [0.35, 0.45])
    cells = grid.cell(np.arange(grid.n_cells))
    assert np.all((cells["z_l_lo"] <= cells["z_l"]) & (cells["z_l"] < cells["z_l_hi"]))
    # (z_l bin, sub-cell) -> flat cell -> the same bin and the sub-cell's theta_E / magnitude bin
    z_bin, sub = np.repeat(np.arange(5), grid.n_sub_cells), np.tile(np.arange(grid.n_sub_cells), 5)
    back = grid.cell(grid.cell_index(z_bin, sub))
    assert np.allclose(back["z_l"], np.asarray(grid.z_l)[z_bin])
    assert np.allclose(back["theta_e_arcsec"], np.asarray(grid.theta_e_arcsec)[sub // 2])
    with pytest.raises(ValueError, match="inside its bin"):
        GridSpec(theta_e_arcsec=[1.0], z_l=[0.3, 0.5], src_mag_r_edges=[23, 24], z_l_edges=[0.2, 0.3, 0.4])


def test_manifest_and_sersic_generator_share_one_source_colour_prior():
    from dhs_gen.sources.priors import SOURCE_G_MINUS_R, SOURCE_R_MINUS_Z
    from dhs_gen.sources.sersic import SersicSource

    u = np.random.default_rng(7).random((4000, N_UNIFORMS))
    p = sample_parameters(u, prior_spec("dr10_blue", None))
    g_r = nmgy_to_mag(p["src_flux_g"]) - nmgy_to_mag(p["src_flux_r"])
    r_z = nmgy_to_mag(p["src_flux_r"]) - nmgy_to_mag(p["src_flux_z"])
    v = np.zeros((4000, SersicSource.n_uniforms))
    v[:, 0], v[:, 5], v[:, 6] = u[:, 8], u[:, 15], u[:, 16]  # magnitude and the two colour uniforms
    s = SersicSource().from_uniforms(v)
    assert np.allclose(g_r, s["g_r"], atol=1e-9) and np.allclose(r_z, s["r_z"], atol=1e-9)
    assert prior_spec("dr10_blue", None).src_g_minus_r == SOURCE_G_MINUS_R
    assert prior_spec("dr10_blue", None).src_r_minus_z == SOURCE_R_MINUS_Z
    assert np.median(g_r) == pytest.approx(0.35, abs=0.02) and np.median(r_z) == pytest.approx(0.45, abs=0.03)
    assert g_r.min() >= -0.5 and r_z.max() <= 2.0


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
    assert p["z_s"].min() >= 1.0 and p["z_s"].max() < 3.0


def test_bad_uniform_shape_and_bad_prior():
    with pytest.raises(ValueError, match="uniforms of shape"):
        sample_parameters(np.zeros((3, 2)), prior_spec("dr10_blue", None))
    with pytest.raises(ValueError, match="lo <= hi"):
        prior_spec("dr10_blue", {"src_reff_arcsec": (0.5, 0.1)})
    with pytest.raises(ConfigError, match="unknown prior preset"):
        prior_spec("nope", None)


@pytest.mark.parametrize("preset", ["dr10_blue", "legacy_final"])
def test_z_s_prior_is_uniform_above_the_lens(preset):
    prior = prior_spec(preset, None)
    assert prior.z_s == (1.0, 3.0) and prior.z_s_dz_min == pytest.approx(0.2)
    p = sample_parameters(np.random.default_rng(3).random((4000, N_UNIFORMS)), prior)
    assert np.all(np.isfinite(p["z_s"])) and np.all(p["z_s"] >= p["z_l"] + 0.2) and p["z_s"].max() < 3.0
    # z_l <= 0.8 here, so the condition z_s >= z_l + 0.2 never binds: z_s ~ U(1, 3) exactly
    assert stats.kstest(p["z_s"], stats.uniform(1.0, 2.0).cdf).pvalue > 1e-3
    assert stats.kstest(p["z_s"], stats.uniform(1.0, 1.8).cdf).pvalue < 1e-6  # the check can fail


def test_z_s_map_equals_conditioning_by_rejection():
    """Where the condition binds, the one-uniform map has the law of U(lo, hi) given z_s >= z_l + dz."""
    prior = prior_spec("dr10_blue", {"z_s": (0.5, 1.5), "z_s_dz_min": 0.3})
    n = 4000
    p = sample_parameters(np.random.default_rng(4).random((n, N_UNIFORMS)), prior)
    assert np.all(p["z_s"] >= p["z_l"] + 0.3) and np.all(p["z_s"] < 1.5)
    rng, z_l = np.random.default_rng(5), p["z_l"]
    ref = rng.uniform(0.5, 1.5, n)
    while np.any(bad := ref < z_l + 0.3):
        ref[bad] = rng.uniform(0.5, 1.5, bad.sum())
    assert stats.ks_2samp(p["z_s"], ref).pvalue > 1e-3
    # and given z_l it is uniform on [max(lo, z_l + dz), hi)
    w = (p["z_s"] - np.maximum(0.5, z_l + 0.3)) / (1.5 - np.maximum(0.5, z_l + 0.3))
    assert stats.kstest(w, "uniform").pvalue > 1e-3 and abs(np.corrcoef(w, z_l)[0, 1]) < 0.05


def test_z_s_is_conditioned_on_a_grid_z_l_and_uses_only_the_last_uniform():
    u = np.random.default_rng(6).random((2000, N_UNIFORMS))
    prior = prior_spec("legacy_final", None)
    p = sample_parameters(u, prior, z_l=np.full(2000, 2.0))
    assert p["z_s"].min() >= 2.2 and p["z_s"].max() < 3.0
    assert stats.kstest(p["z_s"], stats.uniform(2.2, 0.8).cdf).pvalue > 1e-3
    # the z_s uniform is the last one and feeds z_s alone, so every other parameter ignores it
    v = u.copy()
    v[:, N_UNIFORMS - 1] = 1.0 - v[:, N_UNIFORMS - 1]
    a, b = sample_parameters(u, prior), sample_parameters(v, prior)
    assert all(np.array_equal(a[k], b[k]) for k in a if k != "z_s") and not np.array_equal(a["z_s"], b["z_s"])
    with pytest.raises(ValueError, match="must exceed z_l"):
        sample_parameters(u[:3], prior, z_l=np.full(3, 2.9))


@pytest.mark.parametrize("override, message", [
    ({"z_s": (3.0, 1.0)}, "z_s: need 0 < lo < hi"),
    ({"z_s": (2.0, 2.0)}, "z_s: need 0 < lo < hi"),
    ({"z_s": (-0.5, 2.0)}, "z_s: need 0 < lo < hi"),
    ({"z_s_dz_min": -0.1}, "greater than 0"),
    ({"z_s_dz_min": 0.0}, "greater than 0"),
    ({"z_s": (0.3, 0.9)}, "upper limit 0.9 must exceed z_l 0.8"),
    ({"z_l": (0.5, 0.2)}, "z_l: need 0 <= lo <= hi"),
])
def test_bad_z_s_prior_is_a_pydantic_error(override, message):
    with pytest.raises(ValidationError, match=message):
        prior_spec("dr10_blue", override)
