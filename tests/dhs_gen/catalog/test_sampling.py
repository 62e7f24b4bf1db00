import numpy as np
import pandas as pd
import pytest

from dhs_gen.catalog.config import SamplingConfig
from dhs_gen.catalog.sampling import quotas, sample_local, sample_spark, stratum_targets, summarize
from dhs_gen.determinism import stable_hash64

from .sparktest import assert_df_equal


def make_pool(n=3000, seed=0, n2_share=0.2):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "galaxy_id": [f"b{seed}_{i}" for i in range(n)],
        "nobs_z_bin": rng.choice(["3-5", "6-10", "11+"], n, p=[0.5, 0.3, 0.2]),
        "type_bin": rng.choice(["SER", "DEV", "REX"], n),
        "pool": np.where(rng.uniform(size=n) < n2_share, "N2", "N1"),
        "healpix_128": rng.integers(0, 1000, n),
    })


def positives_strata(counts):
    return pd.DataFrame([s for s, c in counts.items() for _ in range(c)], columns=["nobs_z_bin", "type_bin"])


def test_quotas_backfill_n2_shortfall_with_n1():
    avail = pd.DataFrame({"nobs_z_bin": ["3-5", "3-5"], "type_bin": ["SER", "SER"], "pool": ["N1", "N2"],
                          "available": [1000, 5]})
    plan = quotas({("3-5", "SER"): 200}, avail, 0.15).set_index("pool")
    assert plan.loc["N2", "requested"] == 30 and plan.loc["N1", "requested"] == 170
    assert plan.loc["N1", "quota"] == 195  # 200 - the 5 N2 available


def test_targets_from_positives_and_from_total():
    cfg = SamplingConfig(negatives_per_positive=100)
    avail = pd.DataFrame({"nobs_z_bin": ["3-5", "6-10"], "type_bin": ["SER", "DEV"], "pool": ["N1", "N1"],
                          "available": [300, 100]})
    t = stratum_targets(positives_strata({("3-5", "SER"): 2, ("11+", "REX"): 1}), avail, cfg)
    assert t[("3-5", "SER")] == 200 and t[("11+", "REX")] == 100 and t[("6-10", "DEV")] == 0 and len(t) == 9
    t = stratum_targets(None, avail, SamplingConfig(target_total=101))
    assert sum(t.values()) == 101 and t[("3-5", "SER")] == 76 and t[("6-10", "DEV")] == 25
    with pytest.raises(ValueError, match="target_total"):
        stratum_targets(None, avail, SamplingConfig())


def test_local_sample_is_the_smallest_hashes():
    pool = make_pool()
    cfg = SamplingConfig(negatives_per_positive=10, seed=5)
    strata = positives_strata({(z, t): 5 for z in ("3-5", "6-10", "11+") for t in ("SER", "DEV", "REX")})
    sampled, report = sample_local(pool, cfg, strata)
    assert len(sampled) == report["taken"].sum() and sampled["galaxy_id"].is_unique
    # in one group, the sample is exactly the quota smallest stable hashes
    grp = pool[(pool.nobs_z_bin == "3-5") & (pool.type_bin == "SER") & (pool.pool == "N1")]
    hashes = sorted((stable_hash64(5, g), g) for g in grp.galaxy_id)
    quota = int(report.query("nobs_z_bin == '3-5' and type_bin == 'SER' and pool == 'N1'")["quota"].iloc[0])
    expected = {g for _, g in hashes[:quota]}
    got = set(sampled.query("nobs_z_bin == '3-5' and type_bin == 'SER' and pool == 'N1'")["galaxy_id"])
    assert got == expected
    summary, gates = summarize(report, cfg)
    assert summary["taken"] == 450 and summary["n1_fraction"] == pytest.approx(42 / 50)  # N2 = round(0.15 * 50) = 8
    assert all(g.passed for g in gates)


def test_report_shortfall_and_gates_fail_clearly():
    pool = make_pool(300, n2_share=0.02)
    cfg = SamplingConfig(negatives_per_positive=100)
    sampled, report = sample_local(pool, cfg, positives_strata({("3-5", "SER"): 1}))
    row = report.set_index(["nobs_z_bin", "type_bin", "pool"]).loc[("3-5", "SER", "N2")]
    assert row["requested"] == 15 and row["taken"] == row["available"] < 15 and row["shortfall"] == 15 - row["taken"]
    summary, gates = summarize(report, cfg)
    failed = {g.name: g.message for g in gates if not g.passed}
    assert "sample_strata_represented" in failed and "6-10/DEV" in failed["sample_strata_represented"]
    assert "sample_total" in failed and "target 100" in failed["sample_total"]


@pytest.mark.spark
def test_spark_equals_local_and_ignores_partitioning(spark):
    pool = make_pool(4000, seed=1)
    cfg = SamplingConfig(negatives_per_positive=20, seed=11)
    strata = positives_strata({(z, t): 3 for z in ("3-5", "6-10", "11+") for t in ("SER", "DEV", "REX")})
    local, local_report = sample_local(pool, cfg, strata)
    results = []
    for parts in (1, 8):
        df = spark.createDataFrame(pool).repartition(parts)
        sampled, report, passes = sample_spark(spark, df, cfg, strata)
        results.append(sampled.select("galaxy_id", "sample_hash"))
        pd.testing.assert_frame_equal(report, local_report)
    assert_df_equal(results[0], results[1])
    assert_df_equal(results[0], spark.createDataFrame(local[["galaxy_id", "sample_hash"]]))


@pytest.mark.spark
def test_spark_prefilter_falls_back_when_too_tight(spark):
    pool = make_pool(2000, seed=2)
    cfg = SamplingConfig(target_total=300, candidate_margin=0.01, seed=3)
    local, _ = sample_local(pool, cfg)
    sampled, report, passes = sample_spark(spark, spark.createDataFrame(pool), cfg)
    assert set(sampled.toPandas()["galaxy_id"]) == set(local["galaxy_id"])
    assert report["taken"].sum() == 300
