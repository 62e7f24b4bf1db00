"""The "sersic" generator: faint magnitudes, blue colours in nanomaggies, usable by the renderer."""
from __future__ import annotations

import numpy as np

from dhs_gen.lensing import total_flux
from dhs_gen.sources import get_source, render_lensed_source
from dhs_gen.units import nmgy_to_mag


def test_magnitudes_and_blue_colours_in_nanomaggies():
    batch = get_source("sersic").sample(np.random.default_rng(3), 4000, theta_E=np.full(4000, 1.2))
    np.testing.assert_allclose(nmgy_to_mag(batch["flux_r"]), batch["mag_r"], atol=1e-9)
    assert 1e-2 * 0.99 < batch["flux_r"].min() and batch["flux_r"].max() < 10 ** (-0.4 * 0.5) * 1.01  # r 23-26
    g_r = nmgy_to_mag(batch["flux_g"]) - nmgy_to_mag(batch["flux_r"])
    r_z = nmgy_to_mag(batch["flux_r"]) - nmgy_to_mag(batch["flux_z"])
    assert abs(np.median(g_r) - 0.35) < 0.03 and abs(np.median(r_z) - 0.45) < 0.03
    assert np.quantile(g_r, 0.9) < 0.8  # blue: star-forming, not LRG-red (g-r ~ 1.5-1.8)
    q = (1 - np.hypot(batch["e1"], batch["e2"])) / (1 + np.hypot(batch["e1"], batch["e2"]))
    assert q.min() >= 0.3 - 1e-9 and batch["R_sersic"].min() >= 0.15 and batch["n_sersic"].max() <= 2.0


def test_legacy_red_colours_are_an_option():
    batch = get_source("sersic", g_r=(1.15, 0.30)).sample(np.random.default_rng(4), 2000)
    g_r = nmgy_to_mag(batch["flux_g"]) - nmgy_to_mag(batch["flux_r"])
    assert abs(np.median(g_r) - 1.15) < 0.05


def test_rendered_arc_is_faint_and_magnified():
    n = 8
    rng = np.random.default_rng(5)
    theta_e = rng.uniform(1.0, 2.0, n)
    batch = get_source("sersic").sample(rng, n, theta_E=theta_e)
    zeros = np.zeros(n)
    lens = dict(theta_E=theta_e, e1=zeros, e2=zeros, center_x=zeros, center_y=zeros, gamma1=zeros, gamma2=zeros)
    images = render_lensed_source(lens, batch, np.full((n, 3), 1.3))
    lensed_mag = nmgy_to_mag(total_flux(images)[:, 1])
    assert np.all(lensed_mag < batch["mag_r"]) and np.all(lensed_mag > 23 - 2.5 * np.log10(40))
