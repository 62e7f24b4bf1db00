import numpy as np
import pyarrow as pa
import pytest

from dhs_gen.injection.proxy_completeness import ProxyConfig, proxy_completeness
from dhs_gen.schemas import validate_table
from dhs_gen.stats.intervals import wilson_interval


def _stamps(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    return pa.table({
        "status": np.where(rng.random(n) < 0.05, "missing_cutout", "ok").tolist(),
        "cutout_ok": rng.random(n) > 0.02,
        "theta_e_arcsec": rng.uniform(0.4, 3.1, n),
        "x_ratio": rng.uniform(0.3, 2.5, n),
        "bad_pixel_frac": np.where(rng.random(n) < 0.1, 0.5, 0.0),
        "arc_snr_sum": rng.uniform(0, 20, n),
        "arc_snr_max": rng.uniform(0, 10, n),
    })


def test_counts_and_wilson_intervals_match_a_direct_count():
    t = _stamps()
    cfg = ProxyConfig()
    out = proxy_completeness(t, cfg)
    validate_table(out, "completeness")
    f = t.to_pandas()
    valid = (f.status == "ok") & f.cutout_ok
    for x in cfg.x_ratio_thresholds:
        rec = valid & (f.arc_snr_sum >= 5) & (f.x_ratio >= x)
        for lo, hi in zip(cfg.theta_e_edges[:-1], cfg.theta_e_edges[1:]):
            inbin = (f.theta_e_arcsec >= lo) & (f.theta_e_arcsec < hi)
            row = out.filter(pa.compute.and_(pa.compute.equal(out["threshold_value"], x),
                                             pa.compute.equal(out["subset"], "all"))).to_pandas()
            row = row[row.bin_lo.apply(lambda v, lo=lo: v is not None and v[0] == lo)].iloc[0]
            n, k = int((valid & inbin).sum()), int((rec & inbin).sum())
            assert (row.n, row.k) == (n, k)
            assert (row.ci_lo, row.ci_hi) == pytest.approx(tuple(float(v) for v in wilson_interval(k, n)))
        overall = out.filter(pa.compute.and_(pa.compute.equal(out["threshold_value"], x),
                                             pa.compute.equal(out["axis"], "all"))).to_pandas()
        assert overall[overall.subset == "all"].n.iloc[0] == valid.sum()
        clean = valid & (f.bad_pixel_frac <= 0.2)
        assert overall[overall.subset == "clean"].n.iloc[0] == clean.sum()
        assert overall[overall.subset == "clean"].k.iloc[0] == (rec & clean).sum()


def test_higher_thresholds_recover_fewer_and_legacy_rule():
    t = _stamps(seed=1)
    out = proxy_completeness(t, ProxyConfig()).to_pandas()
    overall = out[(out.axis == "all") & (out.subset == "all")].sort_values("threshold_value")
    assert list(overall.threshold_value) == [0.6, 0.7, 0.8, 0.9]
    assert np.all(np.diff(overall.k) <= 0) and overall.k.iloc[0] > overall.k.iloc[-1]
    legacy = proxy_completeness(t, ProxyConfig(snr_column="arc_snr_max", x_ratio_thresholds=[0.8])).to_pandas()
    f = t.to_pandas()
    rec = (f.status == "ok") & f.cutout_ok & (f.arc_snr_max >= 5) & (f.x_ratio >= 0.8)
    assert legacy[(legacy.axis == "all") & (legacy.subset == "all")].k.iloc[0] == rec.sum()
    assert set(legacy.snr_column) == {"arc_snr_max"}


def test_empty_bins_and_bad_edges():
    t = _stamps(50).filter(pa.compute.less(pa.compute.field("theta_e_arcsec"), 1.0))
    out = proxy_completeness(t, ProxyConfig()).to_pandas()
    empty = out[(out.axis == "theta_e_arcsec") & (out.n == 0)]
    assert len(empty) and empty.completeness.isna().all() and empty.low_n.all()
    with pytest.raises(ValueError, match="increasing"):
        ProxyConfig(theta_e_edges=[1.0, 0.5])
