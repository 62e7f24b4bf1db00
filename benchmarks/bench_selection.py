"""Selection-function benchmarks: vectorised completeness counts and the matrix region bootstrap.

Baselines, measured side by side on the same synthetic grid set:
- counts: a pandas groupby per (subset, axis, threshold) over the joined rows (the obvious way);
- bootstrap: :func:`dhs_gen.stats.bootstrap.region_bootstrap_ci` per bin (row multiplicities),
  against the (replicates x regions) @ (regions x bins) matrix form used by ``finalize``.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from benchmarks.timing import best_time, entry


def _setup(n_per_cell: int):
    from dhs_gen.selection.completeness import build_spec, join_scores
    from dhs_gen.selection.config import SelectionConfig
    from dhs_gen.selection.synthetic import synthetic_selection_set

    injections, scores, negatives = synthetic_selection_set(n_per_cell=n_per_cell, n_negatives=20000, seed=0)
    cfg = SelectionConfig(bootstrap={"n_boot": 200, "nside": 16, "seed": 1})
    spec, _ = build_spec(cfg, negatives)
    return cfg, spec, join_scores(injections, scores)


def _naive_counts(joined: pa.Table, spec) -> int:
    from dhs_gen.selection.completeness import recovered, regions, subset_masks

    df = joined.select(["model_id"]).to_pandas()
    df["region"] = regions(joined, spec.region_nside)
    masks = subset_masks(joined, spec)
    rec = recovered(joined, spec.model_thresholds("model-a"), spec)
    rows = 0
    for mask in masks.values():
        for axis in spec.axes:
            df["bin"] = axis.index(joined)
            for j in range(rec.shape[1]):
                df["k"] = rec[:, j]
                sub = df[mask & (df["bin"].to_numpy() >= 0)]
                rows += len(sub.groupby(["model_id", "bin", "region"])["k"].agg(["size", "sum"]))
    return rows


def run(quick: bool = False) -> list[dict]:
    from dhs_gen.selection.completeness import count_batch, region_bootstrap, region_weights
    from dhs_gen.stats.bootstrap import region_bootstrap_ci

    cfg, spec, joined = _setup(30 if quick else 250)
    n = joined.num_rows
    t_fast = best_time(lambda: count_batch(joined, spec), repeats=2 if quick else 3)
    t_naive = best_time(lambda: _naive_counts(joined, spec), repeats=1, warmup=0)
    out = [entry("selection_counts_rows_per_s", n / t_fast, "rows/s", "pandas_groupby_per_axis_threshold",
                 n / t_naive, ratio=t_naive / t_fast, notes=f"{n} joined rows, {len(spec.axes)} axes, "
                 f"{spec.n_thresholds} thresholds, 2 subsets; ratio = speed-up")]

    # bootstrap of one axis (theta_E, 11 bins) at one threshold, 200 replicates
    from dhs_gen.selection.completeness import recovered, regions

    axis = spec.axis("theta_e_arcsec")
    rng = np.random.default_rng(0)
    keep = rng.random(n) < (0.3 if quick else 1.0)
    sub = joined.filter(pa.array(keep))
    bins, reg = axis.index(sub), regions(sub, spec.region_nside)
    rec = recovered(sub, spec.model_thresholds("model-a")[:1], spec)[:, 0].astype(float)
    ok = bins >= 0
    bins, reg, rec = bins[ok], reg[ok], rec[ok]
    ureg, rinv = np.unique(reg, return_inverse=True)
    n_rb = np.zeros((len(ureg), axis.n_bins))
    np.add.at(n_rb, (rinv, bins), 1.0)
    k_rb = np.zeros_like(n_rb)
    np.add.at(k_rb, (rinv, bins), rec)
    n_boot = 200

    def fast():
        region_bootstrap(n_rb, k_rb[:, None, :], region_weights(ureg, n_boot, 1, "bench"))

    def naive():
        for b in np.unique(bins):
            m = bins == b
            region_bootstrap_ci(lambda y, sample_weight: np.average(y, weights=sample_weight), rec[m],
                                regions=reg[m], n_boot=n_boot, seed=1)

    t_fast = best_time(fast, repeats=3)
    t_naive = best_time(naive, repeats=1, warmup=0)
    out.append(entry("selection_region_bootstrap_s", t_fast, "s", "stats.region_bootstrap_ci_per_bin", t_naive,
                     ratio=t_naive / t_fast, notes=f"{int(ok.sum())} rows, {len(ureg)} regions, "
                     f"{axis.n_bins} bins, {n_boot} replicates; ratio = speed-up"))
    return out
