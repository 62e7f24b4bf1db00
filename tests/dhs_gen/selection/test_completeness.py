"""Completeness from scores: thresholds, counts, Wilson intervals, the region bootstrap."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from scipy.stats import norm

from dhs_gen.schemas import validate_table
from dhs_gen.selection.binning import Axis, build_axes
from dhs_gen.selection.completeness import (
    ALL,
    CLEAN,
    compute_completeness,
    count_batch,
    join_scores,
    reduce_counts,
    region_bootstrap,
    region_weights,
)
from dhs_gen.selection.config import SelectionConfig
from dhs_gen.selection.synthetic import THETA_GRID, analytic_completeness, synthetic_selection_set
from dhs_gen.selection.thresholds import score_cut_at_fpr
from dhs_gen.stats.intervals import wilson_interval


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_selection_set(n_per_cell=60, n_negatives=50000, seed=3, models=("m1", "m2"))


@pytest.fixture(scope="module")
def result(synthetic):
    cfg = SelectionConfig(bootstrap={"n_boot": 200, "nside": 8, "seed": 7})
    return compute_completeness(*synthetic, cfg)


def _select(table: pa.Table, **eq):
    df = table.to_pandas()
    for k, v in eq.items():
        df = df[df[k] == v]
    return df


def test_wilson_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    k = np.array([0, 1, 5, 25, 49, 50, 999])
    n = np.array([10, 10, 50, 50, 50, 50, 1000])
    lo, hi = wilson_interval(k, n)
    ref_lo, ref_hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    # statsmodels uses z = norm.ppf(0.975) = 1.95996..., the foundation 1.96
    np.testing.assert_allclose(lo, ref_lo, atol=2e-4)
    np.testing.assert_allclose(hi, ref_hi, atol=2e-4)
    lo2, hi2 = wilson_interval(k, n, z=norm.ppf(0.975))
    np.testing.assert_allclose(lo2, ref_lo, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(hi2, ref_hi, rtol=1e-12, atol=1e-15)


def test_score_cut_at_fpr_bounds_the_false_positive_rate():
    s = np.arange(1000, dtype=np.float64)
    cut, above = score_cut_at_fpr(s, 0.01)
    assert cut == 989.0 and above == 10
    cut, above = score_cut_at_fpr(s, 1e-4)  # unresolved: fpr * n < 1 -> the highest negative
    assert cut == 999.0 and above == 0
    ties = np.array([0.0] * 990 + [5.0] * 10)
    assert score_cut_at_fpr(ties, 0.005) == (5.0, 0)
    with pytest.raises(ValueError, match="no finite"):
        score_cut_at_fpr(np.array([np.nan]), 0.1)


def test_axis_bins_half_open_and_outside():
    axis = Axis(("theta_e_arcsec", "z_l"), ((0.5, 1.0, 2.0), (0.1, 0.5, np.inf)))
    t = pa.table({"theta_e_arcsec": [0.5, 0.99, 1.0, 2.0, np.nan, 1.5], "z_l": [0.1, 0.6, 0.4, 0.2, 0.3, 7.0]})
    np.testing.assert_array_equal(axis.index(t), [0, 1, 2, -1, -1, 3])
    lo, hi = axis.bounds(np.array([3]))
    assert lo.tolist() == [[1.0, 0.5]] and hi.tolist() == [[2.0, np.inf]]


def test_schema_and_all_bins_listed(result):
    table = result["completeness"]
    validate_table(table, "completeness", allow_extra=False)
    cfg = SelectionConfig()
    n_bins = sum(a.n_bins for a in build_axes(cfg.axes, cfg.grids))
    n_thresholds = len(cfg.fprs) + len(cfg.proxy_thresholds)
    assert table.num_rows == 2 * 2 * n_thresholds * n_bins  # models x subsets x thresholds x bins


def test_recovers_analytic_curve_within_intervals(result):
    thresholds = result["thresholds"].to_pandas()
    for model_id in ("m1", "m2"):
        for fpr in (1e-2, 1e-3):
            cut = thresholds[(thresholds.model_id == model_id) & (thresholds.threshold_value == fpr)].score_cut.item()
            rows = _select(result["completeness"], model_id=model_id, subset=ALL, threshold_kind="fpr",
                           threshold_value=fpr, axis="theta_e_arcsec")
            rows = rows[rows.n > 0]
            assert len(rows) == len(THETA_GRID)
            centres = np.array([(lo[0] + hi[0]) / 2 for lo, hi in zip(rows.bin_lo, rows.bin_hi)])
            np.testing.assert_allclose(centres, THETA_GRID, atol=1e-6)  # grid points at bin centres
            truth = analytic_completeness(centres, cut)
            inside = (rows.ci_lo.to_numpy() <= truth) & (truth <= rows.ci_hi.to_numpy())
            assert inside.mean() >= 0.85, (model_id, fpr, rows[["bin_lo", "completeness", "ci_lo", "ci_hi"]], truth)
            n, k = rows.n.to_numpy(), rows.k.to_numpy()
            expected, var = (n * truth).sum(), (n * truth * (1 - truth)).sum()
            assert abs(k.sum() - expected) < 4 * np.sqrt(var)


def test_counts_subsets_and_marginals_consistent(synthetic, result):
    injections, scores, _ = synthetic
    c = result["completeness"].to_pandas()
    overall = c[(c.axis == "overall") & (c.threshold_value == 0.01) & (c.threshold_kind == "fpr")]
    n_all = overall[(overall.model_id == "m1") & (overall.subset == ALL)].n.item()
    n_clean = overall[(overall.model_id == "m1") & (overall.subset == CLEAN)].n.item()
    inj = injections.to_pandas()
    scored = set(scores.filter(pc.equal(scores["model_id"], "m1"))["id"].to_pylist())
    valid = inj[(inj.status == "ok") & inj.cutout_ok & inj.task_id.isin(scored)]
    assert n_all == len(valid)
    assert n_clean == len(valid[(valid.bad_pixel_frac <= 0.2) & (valid.artifact_profile == "none")])
    # the theta_E x z_l grid marginalises to the 1-D theta_E curve
    grid = c[(c.axis == "theta_e_arcsec x z_l") & (c.model_id == "m1") & (c.subset == ALL) & (c.threshold_value == 0.01)
             & (c.threshold_kind == "fpr")]
    one_d = c[(c.axis == "theta_e_arcsec") & (c.model_id == "m1") & (c.subset == ALL) & (c.threshold_value == 0.01)
              & (c.threshold_kind == "fpr")]
    assert grid.k.sum() == one_d.k.sum() and grid.n.sum() == one_d.n.sum()
    assert (c.low_n == (c.n < 50)).all()


def test_proxy_thresholds_monotone(result):
    rows = _select(result["completeness"], model_id="m1", subset=ALL, threshold_kind="proxy", axis="overall")
    values = rows.sort_values("threshold_value")
    assert values.threshold_value.tolist() == [0.6, 0.7, 0.8, 0.9]
    assert np.all(np.diff(values.k.to_numpy()) <= 0)


def test_batching_does_not_change_counts(synthetic):
    injections, scores, negatives = synthetic
    cfg = SelectionConfig(bootstrap={"n_boot": 0})
    from dhs_gen.selection.completeness import build_spec

    spec, _ = build_spec(cfg, negatives)
    joined = join_scores(injections, scores)
    whole = reduce_counts(pa.Table.from_batches([count_batch(joined, spec)]))
    pieces = [count_batch(b, spec) for b in joined.to_batches(max_chunksize=777)]
    assert reduce_counts(pa.Table.from_batches(pieces)).equals(whole)


def test_region_bootstrap_reproducible_with_seed(synthetic):
    cfg = SelectionConfig(bootstrap={"n_boot": 100, "nside": 8, "seed": 11})
    a = compute_completeness(*synthetic, cfg)["completeness"]
    b = compute_completeness(*synthetic, cfg)["completeness"]
    assert a.equals(b)
    cfg2 = SelectionConfig(bootstrap={"n_boot": 100, "nside": 8, "seed": 12})
    c = compute_completeness(*synthetic, cfg2)["completeness"]
    assert not np.allclose(np.nan_to_num(a["boot_std"].to_numpy(zero_copy_only=False)),
                           np.nan_to_num(c["boot_std"].to_numpy(zero_copy_only=False)))


def test_region_bootstrap_spread_matches_binomial_when_regions_are_independent():
    # 400 regions of 25 rows, p = 0.3: region resampling ~ binomial standard error.
    rng = np.random.default_rng(0)
    n_rb = np.full((400, 1), 25.0)
    k_rb = rng.binomial(25, 0.3, size=(400, 1, 1)).astype(np.float64)
    std, lo, hi = region_bootstrap(n_rb, k_rb, region_weights(np.arange(400), 2000, 1, "x"))
    expected = np.sqrt(0.3 * 0.7 / 10000)
    assert abs(std[0, 0] / expected - 1) < 0.15
    assert lo[0, 0] < k_rb.sum() / 10000 < hi[0, 0]


def test_ensemble_spread(result):
    ens = result["ensemble"].to_pandas()
    row = ens[(ens.subset == ALL) & (ens.axis == "overall") & (ens.threshold_value == 0.01)
              & (ens.threshold_kind == "fpr")]
    c = _select(result["completeness"], subset=ALL, axis="overall", threshold_kind="fpr", threshold_value=0.01)
    assert row.n_models.item() == 2
    assert row.c_min.item() == c.completeness.min() and row.c_max.item() == c.completeness.max()


def test_coverage_and_duplicates(synthetic, result):
    injections, scores, negatives = synthetic
    cov = {r["model_id"]: r for r in result["coverage"].to_pylist()}
    for model_id in ("m1", "m2"):
        n_scored = pc.sum(pc.equal(scores["model_id"], model_id)).as_py()
        assert cov[model_id]["n_scored"] == n_scored
        assert cov[model_id]["n_unscored"] == injections.num_rows - n_scored > 0
    doubled = pa.concat_tables([scores, scores.slice(0, 2)])
    with pytest.raises(ValueError, match="scores: 2 duplicated"):
        compute_completeness(injections, doubled, negatives, SelectionConfig(bootstrap={"n_boot": 0}))


def test_model_without_negatives_fails_loudly(synthetic):
    injections, scores, negatives = synthetic
    only_m1 = negatives.filter(pc.equal(negatives["model_id"], "m1"))
    with pytest.raises(ValueError, match="m2.*no negatives"):
        compute_completeness(injections, scores, only_m1, SelectionConfig(bootstrap={"n_boot": 0}))


def test_reads_only_contract_columns():
    from dhs_gen.schemas import get_dataset
    from dhs_gen.selection.completeness import INJECTION_COLUMNS

    stamps = set(get_dataset("stamps").schema.names)
    assert set(INJECTION_COLUMNS) <= stamps, set(INJECTION_COLUMNS) - stamps
    assert {"id", "logit", "model_score", "model_id", "status"} <= set(get_dataset("scores").schema.names)
