"""Selection-function benchmarks: vectorised completeness counts, the matrix region bootstrap,
and the replicate cuts.

Baselines, measured side by side on the same synthetic grid set:
- counts: a pandas groupby per (subset, axis) over (model, bin, region, cut level), and one per
  proxy threshold, over the joined rows (the obvious way);
- bootstrap: :func:`dhs_gen.stats.bootstrap.region_bootstrap_ci` per bin (row multiplicities),
  against the (replicates x regions) @ (regions x bins) matrix form used by ``finalize``;
- replicate cuts: per replicate, the resampled negatives materialised (``np.repeat``) and the cut
  taken by ``np.partition``, against ``thresholds.replicate_cut_indices`` (sorted once, cumulative
  multiplicities of the top of the list);
- finalize: the whole finalisation with the cut recomputed in every replicate, against the same
  counts with the replicate cuts pinned to the full-sample cut (the earlier fixed-cut bootstrap).
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
    from dhs_gen.selection.binning import column_f64
    from dhs_gen.selection.completeness import proxy_recovered, regions, subset_masks

    df = joined.select(["model_id"]).to_pandas()
    df["region"] = regions(joined, spec.region_nside)
    df["level"] = spec.cut_set("model-a").level_of(column_f64(joined, "score"))
    masks = subset_masks(joined, spec)
    rec = proxy_recovered(joined, spec)
    rows = 0
    for mask in masks.values():
        for axis in spec.axes:
            df["bin"] = axis.index(joined)
            sub = df[mask & (df["bin"].to_numpy() >= 0)]
            rows += len(sub.groupby(["model_id", "bin", "region", "level"]).size())
            for j in range(rec.shape[1]):
                df["k"] = rec[:, j]
                sub = df[mask & (df["bin"].to_numpy() >= 0)]
                rows += len(sub.groupby(["model_id", "bin", "region", "level"])["k"].sum())
    return rows


def _cut_bench(n_boot: int, quick: bool) -> dict:
    from dhs_gen.selection.thresholds import cut_rank, region_draws, replicate_cut_indices

    rng = np.random.default_rng(0)
    n, n_regions, fprs = (20000 if quick else 200000), 768, [1e-2, 1e-3, 1e-4]
    s = np.sort(rng.standard_normal(n))[::-1]
    codes = rng.integers(0, n_regions, n)

    def naive():
        weights = region_draws(n_regions, n_boot, np.random.default_rng(1))
        for b in range(n_boot):
            sample = np.repeat(s, weights[b, codes].astype(np.int64))
            for f in fprs:
                k = int(cut_rank(f, sample.size))
                -np.partition(-sample, k)[k]

    t_fast = best_time(lambda: replicate_cut_indices(s, codes, fprs, n_boot, 1), repeats=3)
    t_naive = best_time(naive, repeats=1, warmup=0)
    return entry("selection_replicate_cuts_s", t_fast, "s", "repeat_and_partition_per_replicate", t_naive,
                 ratio=t_naive / t_fast, notes=f"{n} negatives in {n_regions} regions, {len(fprs)} FPRs, "
                 f"{n_boot} replicates; ratio = speed-up")


def run(quick: bool = False) -> list[dict]:
    from dhs_gen.selection.completeness import count_batch, region_bootstrap, region_weights
    from dhs_gen.stats.bootstrap import region_bootstrap_ci

    cfg, spec, joined = _setup(30 if quick else 250)
    n = joined.num_rows
    t_fast = best_time(lambda: count_batch(joined, spec), repeats=2 if quick else 3)
    t_naive = best_time(lambda: _naive_counts(joined, spec), repeats=1, warmup=0)
    out = [entry("selection_counts_rows_per_s", n / t_fast, "rows/s", "pandas_groupby_per_axis_threshold",
                 n / t_naive, ratio=t_naive / t_fast, notes=f"{n} joined rows, {len(spec.axes)} axes, "
                 f"{len(cfg.fprs)} FPR cuts on {len(spec.cut_set('model-a').levels)} cut levels, {spec.n_proxies} proxies, "
                 "2 subsets; ratio = speed-up")]

    # bootstrap of one axis (theta_E, 11 bins) at one threshold, 200 replicates
    from dhs_gen.selection.binning import column_f64
    from dhs_gen.selection.completeness import regions

    axis = spec.axis("theta_e_arcsec")
    rng = np.random.default_rng(0)
    keep = rng.random(n) < (0.3 if quick else 1.0)
    sub = joined.filter(pa.array(keep))
    bins, reg = axis.index(sub), regions(sub, spec.region_nside)
    rec = (column_f64(sub, "score") > spec.thresholds["model-a"][0].cut).astype(float)
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
    out.append(_cut_bench(n_boot, quick))

    # the whole finalisation: replicate cuts against the cut pinned in every replicate
    import dataclasses

    from dhs_gen.selection.completeness import finalize, reduce_counts

    counts = reduce_counts(pa.Table.from_batches([count_batch(joined, spec)]))
    pinned = dataclasses.replace(spec, cuts={m: dataclasses.replace(c, boot=np.repeat(c.point[:, None], c.boot.shape[1], 1))
                                             for m, c in spec.cuts.items()})
    boot = cfg.bootstrap
    t_new = best_time(lambda: finalize(counts, spec, cfg.low_n, boot.n_boot, boot.seed), repeats=2)
    t_pinned = best_time(lambda: finalize(counts, pinned, cfg.low_n, boot.n_boot, boot.seed), repeats=2)
    out.append(entry("selection_finalize_s", t_new, "s", "finalize_cut_fixed_in_every_replicate", t_pinned,
                     ratio=t_new / t_pinned, notes=f"{counts.num_rows} count rows, {boot.n_boot} replicates, "
                     f"{len(cfg.fprs)} FPRs; ratio = cost of recomputing the cut per replicate"))
    return out
