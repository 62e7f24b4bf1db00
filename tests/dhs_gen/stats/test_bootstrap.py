"""Bootstrap CIs: reproducible, correct coverage scale, region resampling keeps blocks together."""
from __future__ import annotations

import numpy as np
import pytest

from dhs_gen.stats import bootstrap as B
from dhs_gen.stats.metrics import roc_auc


def _weighted_mean(x, sample_weight):
    return float(np.average(x, weights=sample_weight))


def test_iid_mean_ci_matches_normal_theory_and_is_reproducible():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 2.0, 800)
    ci = B.bootstrap_ci(_weighted_mean, x, n_boot=400, seed=7)
    assert ci.estimate == pytest.approx(x.mean())
    assert ci.lo < x.mean() < ci.hi
    assert ci.std == pytest.approx(x.std(ddof=1) / np.sqrt(x.size), rel=0.15)
    assert B.bootstrap_ci(_weighted_mean, x, n_boot=400, seed=7) == ci
    assert B.bootstrap_ci(_weighted_mean, x, n_boot=400, seed=8) != ci


def test_multiplicities_sum_to_n_and_respect_strata():
    strata = np.array([0] * 30 + [1] * 5)
    for m in B.iid_multiplicities(35, 20, seed=1, strata=strata):
        assert m[:30].sum() == 30 and m[30:].sum() == 5
    regions = np.repeat([3, 9, 11, 40], [5, 1, 2, 7])
    for m in B.region_multiplicities(regions, 20, seed=1):
        # every row of a region shares one multiplicity; 4 regions drawn
        for r in np.unique(regions):
            assert len(set(m[regions == r])) == 1
        assert sum(m[regions == r][0] for r in np.unique(regions)) == 4


def test_region_bootstrap_is_wider_for_correlated_regions():
    # 40 sky regions each with a shared offset: i.i.d. bootstrap underestimates the error
    rng = np.random.default_rng(2)
    regions = np.repeat(np.arange(40), 50)
    x = rng.normal(0, 1, 40)[regions] + rng.normal(0, 0.1, regions.size)
    iid = B.bootstrap_ci(_weighted_mean, x, n_boot=300, seed=0)
    reg = B.region_bootstrap_ci(_weighted_mean, x, regions=regions, n_boot=300, seed=0)
    assert reg.std > 3 * iid.std
    assert reg.std == pytest.approx(1 / np.sqrt(40), rel=0.3)
    assert reg.method == "region"


def test_healpix_regions_nested_and_validated():
    import healpy as hp

    pix = B.healpix_regions([10.0, 150.0], [0.0, 30.0], nside=16)
    assert pix.tolist() == hp.ang2pix(16, [10.0, 150.0], [0.0, 30.0], nest=True, lonlat=True).tolist()
    with pytest.raises(ValueError, match="dec"):
        B.healpix_regions([0.0], [95.0])
    with pytest.raises(ValueError, match="2 distinct regions"):
        B.region_bootstrap_ci(_weighted_mean, np.ones(4), regions=np.zeros(4))


def test_auc_ci_and_paired_difference():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 600)
    good = rng.normal(size=600) + 1.5 * y
    bad = rng.normal(size=600) + 0.3 * y
    ci = B.bootstrap_ci(roc_auc, y, good, n_boot=200, seed=0, strata=y)
    assert ci.lo < roc_auc(y, good) < ci.hi and ci.n_valid == 200
    out = B.paired_difference_ci(roc_auc, y, good, bad, n_boot=200, seed=0)
    d = out["difference"]
    assert d["estimate"] == pytest.approx(roc_auc(y, good) - roc_auc(y, bad))
    assert d["lo"] > 0  # clearly better
    # paired replicate of identical scores is exactly zero
    same = B.paired_difference_ci(roc_auc, y, good, good, n_boot=50, seed=0)["difference"]
    assert same["lo"] == same["hi"] == 0.0


def test_undefined_replicates_are_skipped():
    y = np.array([1] + [0] * 9)
    s = np.linspace(0, 1, 10)
    ci = B.bootstrap_ci(roc_auc, y, s, n_boot=100, seed=0)
    assert 0 < ci.n_valid < 100  # replicates without the positive are dropped, not fatal
