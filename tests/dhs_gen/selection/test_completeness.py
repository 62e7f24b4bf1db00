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
from dhs_gen.selection.thresholds import (
    MIN_NEGATIVES_ABOVE,
    cut_rank,
    expected_fpr,
    fpr_thresholds,
    region_draws,
    replicate_cut_indices,
    score_cut_at_fpr,
)
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
    cut, above = score_cut_at_fpr(s, 0.01)  # k = floor(0.01 * 1001) - 1 = 9: expected FPR 10/1001
    assert cut == 990.0 and above == 9
    cut, above = score_cut_at_fpr(s, 1e-4)  # unresolved: fpr * (n+1) < 1 -> the highest negative
    assert cut == 999.0 and above == 0
    ties = np.array([0.0] * 990 + [5.0] * 10)
    assert score_cut_at_fpr(ties, 0.005) == (5.0, 0)
    with pytest.raises(ValueError, match="no finite"):
        score_cut_at_fpr(np.array([np.nan]), 0.1)


def test_expected_fpr_of_the_cut_never_exceeds_the_target():
    # the earlier k = floor(fpr n) put the 3rd highest of 2,000 negatives at FPR 1e-3: expected 1.5e-3
    assert expected_fpr(cut_rank(1e-3, 2000), 2000) == pytest.approx(2 / 2001)
    for fpr in (1e-2, 1e-3, 1e-4, 0.29, 0.07):
        n = np.arange(int(1.0 / fpr), 30000, 7)
        k = cut_rank(fpr, n)
        assert (expected_fpr(k, n) <= fpr * (1 + 1e-12)).all()
        assert (expected_fpr(k + 1, n) > fpr).all()  # and it is the largest such k
    assert cut_rank(0.29, 99) == 28  # 0.29 * 100 is 28.999999999999996 in floating point


def test_thresholds_table_reports_expected_fpr_and_resolution():
    rng = np.random.default_rng(0)
    n = 10999  # the documented minimum at FPR 1e-3: (10 + 1) / 1e-3 - 1
    neg = pa.table({"id": [f"n{i}" for i in range(n)], "logit": rng.standard_normal(n).astype(np.float32),
                    "model_id": ["m"] * n, "status": ["ok"] * n})
    _, cuts, table = fpr_thresholds(neg, [1e-3, 1e-4], n_boot=50, seed=1)
    rows = {r["threshold_value"]: r for r in table.to_pylist()}
    assert rows[1e-3]["n_above"] == MIN_NEGATIVES_ABOVE and rows[1e-3]["resolved"]
    assert rows[1e-3]["expected_fpr"] == pytest.approx(11 / 11000) and rows[1e-3]["min_negatives"] == n
    assert not rows[1e-4]["resolved"] and rows[1e-4]["min_negatives"] == 109999
    assert rows[1e-3]["negative_resampling"] == "iid"
    assert rows[1e-3]["cut_boot_lo"] < rows[1e-3]["score_cut"] < rows[1e-3]["cut_boot_hi"]
    assert cuts["m"].boot.shape == (2, 50)
    doubled = pa.concat_tables([neg, neg.slice(5, 2)])
    with pytest.raises(ValueError, match=r"2 duplicated \(id, model_id\)"):
        fpr_thresholds(doubled, [1e-3])


def test_model_score_is_refused_as_the_cut_column():
    from pydantic import ValidationError

    # the float32 sigmoid is exactly 1.0 for every logit above ~17: it cannot order those negatives
    assert np.all(1 / (1 + np.exp(-np.float32([17.5, 20.0, 30.0]))) == np.float32(1.0))
    with pytest.raises(ValidationError, match="'logit'"):
        SelectionConfig(score_column="model_score")


def test_replicate_cuts_are_the_order_statistics_of_each_resample():
    rng = np.random.default_rng(4)
    n, n_boot, fprs, seed = 3000, 40, [0.05, 0.01], 9
    s = np.sort(rng.standard_normal(n))[::-1]
    codes = rng.integers(0, 60, n)
    idx = replicate_cut_indices(s, codes, fprs, n_boot, seed)
    weights = region_draws(60, n_boot, np.random.default_rng(seed))
    for b in range(n_boot):
        mult = weights[b, codes].astype(int)
        sample = np.sort(np.repeat(s, mult))[::-1]  # the resample, explicitly
        for i, f in enumerate(fprs):
            assert s[idx[i, b]] == sample[cut_rank(f, sample.size)]
    # i.i.d.: draws from the top r negatives ~ Poisson(r), so the cut's original rank ~ Gamma(k+1, 1)
    ranks = replicate_cut_indices(s, None, fprs, 400, seed)[1]
    k = cut_rank(0.01, n)
    assert abs(ranks.mean() - k) < 1.5 and 0.85 < ranks.std() / np.sqrt(k + 1) < 1.15


def test_negatives_resampled_by_region_widen_a_clustered_cut():
    rng = np.random.default_rng(5)
    n, n_regions = 20000, 40
    region = rng.integers(0, n_regions, n)
    logit = (rng.standard_normal(n) + rng.normal(0, 0.6, n_regions)[region]).astype(np.float32)
    hp = (region * 4**5).astype(np.int64)  # distinct NESTED nside-4 pixels at nside 128
    base = {"id": [f"n{i}" for i in range(n)], "logit": logit, "model_id": ["m"] * n, "status": ["ok"] * n}
    _, _, iid = fpr_thresholds(pa.table(base), [1e-2], n_boot=300, seed=2, nside=4)
    _, _, by_region = fpr_thresholds(pa.table({**base, "healpix_128": hp}), [1e-2], n_boot=300, seed=2, nside=4)
    (a,), (b,) = iid.to_pylist(), by_region.to_pylist()
    assert b["negative_resampling"] == "healpix_nested_nside4" and b["n_negative_regions"] == n_regions
    assert a["score_cut"] == b["score_cut"]
    assert b["cut_boot_hi"] - b["cut_boot_lo"] > 1.5 * (a["cut_boot_hi"] - a["cut_boot_lo"])


def _coverage(fpr: float, n_negatives: int, reps: int, n_per_cell: int = 100, n_boot: int = 200):
    """Share of theta_E bins (true C in [0.05, 0.95]) whose bootstrap interval holds the true C at the
    target FPR, and the mean C - truth, over ``reps`` synthetic sets (every one fully re-drawn).

    The scorer's theta_0 puts C = 0.5 at theta_E = 1.5" for every FPR, so six grid points are in range."""
    edges = [0.375 + 0.25 * i for i in range(10)]
    cfg = SelectionConfig(fprs=[fpr], proxy_thresholds=[], axes={"theta_e_arcsec": edges}, grids=[],
                          bootstrap={"n_boot": n_boot, "nside": 8, "seed": 1})
    true_cut = norm.isf(fpr)  # the cut whose true FPR is the target
    theta_0 = 1.5 - true_cut / 2.0
    truth = analytic_completeness(THETA_GRID, true_cut, theta_0=theta_0)
    mid = (truth > 0.05) & (truth < 0.95)
    hits, diffs = [], []
    for rep in range(reps):
        inj, scores, neg = synthetic_selection_set(n_per_cell=n_per_cell, n_negatives=n_negatives, seed=1000 + rep,
                                                   theta_0=theta_0)
        c = compute_completeness(inj, scores, neg, cfg)["completeness"].to_pandas()
        c = c[(c.axis == "theta_e_arcsec") & (c.subset == ALL) & (c.n > 0)].sort_values("bin_index")
        assert len(c) == len(THETA_GRID)
        hits.append(((c.boot_lo.to_numpy() <= truth) & (truth <= c.boot_hi.to_numpy()))[mid])
        diffs.append((c.completeness.to_numpy() - truth)[mid])
    return float(np.mean(hits)), int(np.size(hits)), float(np.mean(diffs))


# the documented minimum number of negatives per FPR: (MIN_NEGATIVES_ABOVE + 1) / fpr - 1
MINIMUM_NEGATIVES = {1e-2: 1099, 1e-3: 10999, 1e-4: 109999}


@pytest.mark.parametrize("fpr", sorted(MINIMUM_NEGATIVES, reverse=True))
def test_interval_covers_true_completeness_with_the_minimum_negatives(fpr):
    """The bootstrap resamples the negatives and recomputes the cut in every replicate: with the
    documented minimum number of negatives its 95% interval covers the true C. (With the cut fixed
    from all negatives and only the injections resampled, this test measured 0.66, 0.72 and 0.84.)"""
    assert MINIMUM_NEGATIVES[fpr] == int(np.ceil((MIN_NEGATIVES_ABOVE + 1) / fpr - 1))
    cover, n_intervals, bias = _coverage(fpr, MINIMUM_NEGATIVES[fpr], reps=20)
    assert cover >= 0.90, (fpr, cover, n_intervals)
    assert abs(bias) < 0.03, bias


@pytest.mark.slow
@pytest.mark.parametrize("fpr", sorted(MINIMUM_NEGATIVES, reverse=True))
def test_interval_coverage_long(fpr):
    cover, n_intervals, bias = _coverage(fpr, MINIMUM_NEGATIVES[fpr], reps=100)
    assert cover >= 0.92, (fpr, cover, n_intervals)
    assert abs(bias) < 0.01, bias


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
