"""Gen7 "sersic_clumps": per-band templates with bluer clumps, fluxes from the magnitudes."""
from __future__ import annotations

import numpy as np

from dhs_gen.sources import get_source
from dhs_gen.units import mag_to_nmgy


def test_clumps_are_bluer_than_the_disk_and_fluxes_match_magnitudes():
    batch = get_source("sersic_clumps").sample(np.random.default_rng(2), 20, theta_E=np.full(20, 1.5))
    t = batch["templates"]
    assert t.shape == (20, 3, 64, 64) and t.dtype == np.float32
    np.testing.assert_allclose(batch["flux_r"], mag_to_nmgy(batch["mag_r"]), rtol=1e-12)
    # where g light exceeds r light (the clumps) the g template is more peaked: g/r ratio > 1 at the clumps
    ratio_max = (t[:, 0] / np.maximum(t[:, 1], 1e-12)).reshape(20, -1).max(axis=1)
    assert np.all(ratio_max > 1.05)
    assert np.all((batch["n_clumps"] >= 1) & (batch["n_clumps"] <= 5))
    assert np.all((batch["clump_fraction"] >= 0.1) & (batch["clump_fraction"] <= 0.4))


def test_clumpy_source_is_not_a_smooth_sersic():
    # a single-clump-heavy source has a secondary peak: the template is not monotonic from the centre
    batch = get_source("sersic_clumps", clump_fraction=(0.4, 0.4), clump_sigma=(0.03, 0.03)).sample(
        np.random.default_rng(3), 5)
    r = batch["templates"][:, 1]
    peak_to_centre = r.reshape(5, -1).max(axis=1) / r[:, 31:33, 31:33].mean(axis=(1, 2))
    assert np.all(peak_to_centre > 1.0)
