"""Wilson intervals (astropy) against the closed form and statsmodels; n = 0 gives NaN."""
from __future__ import annotations

import numpy as np
import pytest

from dhs_gen.stats.intervals import wilson_interval


def _closed_form(k, n, z):
    p = k / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


@pytest.mark.parametrize("z", [1.0, 1.96, 2.576])
def test_matches_the_closed_form_and_statsmodels(z):
    from scipy.stats import norm
    from statsmodels.stats.proportion import proportion_confint

    k = np.array([0, 1, 5, 17, 40, 3])
    n = np.array([10, 10, 10, 40, 40, 3])
    lo, hi = wilson_interval(k, n, z=z)
    ref_lo, ref_hi = _closed_form(k.astype(float), n.astype(float), z)
    np.testing.assert_allclose(lo, ref_lo, rtol=0, atol=1e-12)
    np.testing.assert_allclose(hi, ref_hi, rtol=0, atol=1e-12)
    sm_lo, sm_hi = proportion_confint(k, n, alpha=2 * norm.sf(z), method="wilson")
    np.testing.assert_allclose(lo, sm_lo, atol=1e-12)
    np.testing.assert_allclose(hi, sm_hi, atol=1e-12)


def test_empty_bins_are_nan_and_shapes_broadcast():
    lo, hi = wilson_interval(np.array([[0, 2], [1, 0]]), np.array([[0, 4], [2, 0]]))
    assert lo.shape == hi.shape == (2, 2)
    assert np.isnan(lo[0, 0]) and np.isnan(hi[1, 1]) and np.isfinite(lo[0, 1])
    assert tuple(float(v) for v in wilson_interval(3, 5)) == pytest.approx((0.2307, 0.8824), abs=1e-4)
