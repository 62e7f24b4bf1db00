import numpy as np
import pytest

from dhs_gen.injection.metrics import arc_metrics, count_images, half_light_radius, outer_sigma


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
