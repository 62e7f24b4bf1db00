"""Injection-recovery completeness from scores: per-batch counts, reduction, intervals.

The computation is split so that a local run and the Spark job give identical answers:
``count_batch`` turns joined rows (injection metrics + one model's logit) into integer counts
keyed by (model, subset, axis, bin, HEALPix region, cut level): ``level`` is how many of the
model's cut levels (``thresholds.CutSet``: the full-sample FPR cuts and every bootstrap replicate's
cuts) lie below the logit, and one ``k_j`` column per phase-4d proxy threshold; counts are summed
(pyarrow here, ``groupBy().sum()`` in ``jobs/selection_completeness.py``); ``finalize`` turns summed
counts into completeness with Wilson intervals (given the cut) and a bootstrap that resamples the
injections' HEALPix regions and the negatives (and so the cut) together.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dhs_gen.determinism import stable_hash64
from dhs_gen.schemas import STATUS_OK, conform
from dhs_gen.selection.binning import Axis, build_axes, column_f64, sky_regions, theta_over_psf
from dhs_gen.selection.config import SelectionConfig
from dhs_gen.selection.thresholds import (
    SCORE_COLUMN,
    CutSet,
    Threshold,
    fpr_thresholds,
    proxy_thresholds,
    region_draws,
)
from dhs_gen.stats.intervals import wilson_interval

ALL, CLEAN = "all", "clean"
SUBSETS = (ALL, CLEAN)
# Stamp columns the computation reads (never the image blobs).
INJECTION_COLUMNS = [
    "task_id", "status", "cutout_ok", "bad_pixel_frac", "artifact_profile", "healpix_128", "ra", "dec",
    "theta_e_arcsec", "z_l", "z_s", "src_mag_r", "arc_snr_sum", "arc_snr_max", "psf_fwhm_used_r",
    "psfsize_r",
]
COUNT_KEYS = ["model_id", "subset", "axis", "bin", "region", "level"]
MIN_BOOTSTRAP_REGIONS = 10  # fewer HEALPix regions in a bin understate the injections' spread
AMBIGUOUS_CELLS = 1 << 22  # replicate x cell products per block in the replicate-cut bootstrap


def counts_schema(n_proxies: int) -> pa.Schema:
    """Counts keyed by COUNT_KEYS: n rows (at that cut level) and k_j recovered by the j-th proxy."""
    return pa.schema([
        ("model_id", pa.string()), ("subset", pa.string()), ("axis", pa.string()), ("bin", pa.int32()),
        ("region", pa.int64()), ("level", pa.int32()), ("n", pa.int64()),
        *[(f"k_{j}", pa.int64()) for j in range(n_proxies)],
    ])


@dataclass
class CountSpec:
    """Everything ``count_batch`` needs: axes, thresholds and cut levels per model, region size."""

    axes: list[Axis]
    thresholds: dict[str, list[Threshold]]  # model_id -> FPR thresholds (descending FPR)
    cuts: dict[str, CutSet]  # model_id -> the full-sample and replicate cuts on one level grid
    proxies: list[Threshold] = field(default_factory=list)
    max_bad_pixel_frac: float = 0.2
    clean_artifact_profiles: tuple[str, ...] = ("none", "clean", "")
    proxy_arc_snr_min: float = 5.0
    region_nside: int = 16

    @property
    def n_proxies(self) -> int:
        return len(self.proxies)

    def cut_set(self, model_id: str) -> CutSet:
        if model_id not in self.cuts:
            raise ValueError(f"model {model_id!r} has scores but no negatives to set its FPR threshold")
        return self.cuts[model_id]

    def model_thresholds(self, model_id: str) -> list[Threshold]:
        """The model's FPR thresholds then the proxies: the order of the output rows."""
        self.cut_set(model_id)
        return list(self.thresholds[model_id]) + list(self.proxies)

    def axis(self, name: str) -> Axis:
        for a in self.axes:
            if a.name == name:
                return a
        raise KeyError(f"unknown axis {name!r}")


def build_spec(cfg: SelectionConfig, negatives: pa.Table) -> tuple[CountSpec, pa.Table]:
    """The CountSpec for a config, with FPR cuts (and their bootstrap replicates) set on the
    ``negatives``' logits, and the thresholds table."""
    per_model, cuts, table = fpr_thresholds(negatives, cfg.fprs, cfg.bootstrap.n_boot, cfg.bootstrap.seed,
                                            cfg.bootstrap.nside)
    spec = CountSpec(
        axes=build_axes(cfg.axes, cfg.grids), thresholds=per_model, cuts=cuts,
        proxies=proxy_thresholds(cfg.proxy_thresholds),
        max_bad_pixel_frac=cfg.clean.max_bad_pixel_frac,
        clean_artifact_profiles=tuple(cfg.clean.clean_artifact_profiles),
        proxy_arc_snr_min=cfg.proxy_arc_snr_min, region_nside=cfg.bootstrap.nside,
    )
    return spec, table


def prepare_scores(scores: pa.Table) -> pa.Table:
    """Scores renamed for the join: id -> task_id, status -> score_status; the logit as 'score'."""
    for name in ("id", "model_id", "status", SCORE_COLUMN):
        if name not in scores.column_names:
            raise KeyError(f"scores lack column {name!r}")
    return pa.table({"task_id": scores["id"], "model_id": scores["model_id"],
                     "score_status": scores["status"], "score": scores[SCORE_COLUMN].cast(pa.float64())})


def join_scores(injections: pa.Table, scores: pa.Table) -> pa.Table:
    """Left join of injection metrics with scores on task_id = id (an unscored row keeps nulls)."""
    cols = [c for c in INJECTION_COLUMNS if c in injections.column_names]
    return injections.select(cols).join(prepare_scores(scores), "task_id", join_type="left outer")


def _bool(table, name: str) -> np.ndarray:
    arr = table.column(name)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.bool_()).fill_null(False).to_numpy(zero_copy_only=False)


def _equals(table, name: str, value: str) -> np.ndarray:
    """Bool per row: the string column equals ``value`` (null -> False)."""
    return _mask(pc.equal(table.column(name).cast(pa.string()), value))


def _mask(arr) -> np.ndarray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.fill_null(False).to_numpy(zero_copy_only=False)


def _codes(table, name: str) -> tuple[np.ndarray, list]:
    """(int32 codes, values) of a string column; null rows get code -1."""
    arr = table.column(name).cast(pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    enc = arr.dictionary_encode()
    return enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32), enc.dictionary.to_pylist()


def _string_column(codes: np.ndarray, values: list) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(values, pa.string())).cast(pa.string())


def regions(table, nside: int) -> np.ndarray:
    """int64 NESTED HEALPix region at ``nside`` per row (``binning.sky_regions``); a row with no
    position at all forms the block -1."""
    reg = sky_regions(table, nside)
    return np.where(np.isfinite(reg), reg, -1).astype(np.int64)


def subset_masks(table, spec: CountSpec) -> dict[str, np.ndarray]:
    """valid_all = stamp ok and cutout_ok and score present; clean adds bad pixels and artifacts."""
    score = column_f64(table, "score")
    valid = (
        _equals(table, "status", STATUS_OK) & _bool(table, "cutout_ok")
        & _equals(table, "score_status", STATUS_OK) & np.isfinite(score)
    )
    bad = column_f64(table, "bad_pixel_frac")
    clean = valid & (bad <= spec.max_bad_pixel_frac)
    if "artifact_profile" in table.column_names:
        profile = table.column("artifact_profile").cast(pa.string())
        allowed = pc.is_in(profile, value_set=pa.array(list(spec.clean_artifact_profiles), pa.string()))
        clean &= _mask(pc.or_kleene(pc.is_null(profile), allowed))
    return {ALL: valid, CLEAN: clean}


def proxy_recovered(table, spec: CountSpec) -> np.ndarray:
    """(rows, proxies) bool: cutout_ok, theta_E > 0, arc_snr_max >= the minimum, theta_E/PSF >= cut."""
    out = np.zeros((table.num_rows, spec.n_proxies), dtype=bool)
    if spec.proxies:
        ratio = theta_over_psf(table)
        base = (_bool(table, "cutout_ok") & (column_f64(table, "theta_e_arcsec") > 0)
                & (column_f64(table, "arc_snr_max") >= spec.proxy_arc_snr_min))
        for j, t in enumerate(spec.proxies):
            out[:, j] = base & (ratio >= t.cut)
    return out


def _group(key: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct keys, index of each row's key): a dense bincount when the key space is
    small against the rows, else a sort."""
    if size <= 8 * key.size + 65536:
        present = np.bincount(key, minlength=size) > 0
        return np.flatnonzero(present), (np.cumsum(present) - 1)[key]
    return np.unique(key, return_inverse=True)


def count_batch(batch, spec: CountSpec) -> pa.RecordBatch:
    """Integer counts of one batch of joined rows, keyed by COUNT_KEYS (``counts_schema``).

    Rows without a model_id (unscored) and rows outside an axis's edges add nothing.
    """
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    schema = counts_schema(spec.n_proxies)
    names = {"model_id": [], "subset": list(SUBSETS), "axis": [a.name for a in spec.axes]}
    parts: dict[str, list] = {k: [] for k in schema.names}
    if table.num_rows:
        model_codes, names["model_id"] = _codes(table, "model_id")
        region = regions(table, spec.region_nside)
        ureg, rinv = np.unique(region, return_inverse=True)
        masks = subset_masks(table, spec)
        bins = [a.index(table) for a in spec.axes]
        score = column_f64(table, "score")
        rec = proxy_recovered(table, spec)
        for mi, model_id in enumerate(names["model_id"]):
            in_model = model_codes == mi
            cuts = spec.cut_set(model_id)
            level, n_levels = cuts.level_of(score), len(cuts.levels) + 1
            for si, subset in enumerate(SUBSETS):
                for ai, axis_bins in enumerate(bins):
                    sel = in_model & masks[subset] & (axis_bins >= 0)
                    if not sel.any():
                        continue
                    key = (axis_bins[sel] * len(ureg) + rinv[sel]) * n_levels + level[sel]
                    ukey, inverse = _group(key, spec.axes[ai].n_bins * len(ureg) * n_levels)
                    m = len(ukey)
                    for name, code in (("model_id", mi), ("subset", si), ("axis", ai)):
                        parts[name].append(np.full(m, code, dtype=np.int32))
                    cell = ukey // n_levels
                    parts["bin"].append((cell // len(ureg)).astype(np.int32))
                    parts["region"].append(ureg[cell % len(ureg)])
                    parts["level"].append((ukey % n_levels).astype(np.int32))
                    parts["n"].append(np.bincount(inverse, minlength=m).astype(np.int64))
                    for j in range(rec.shape[1]):
                        k = np.bincount(inverse, weights=rec[sel, j], minlength=m)
                        parts[f"k_{j}"].append(np.rint(k).astype(np.int64))
    arrays = []
    for f in schema:
        values = np.concatenate(parts[f.name]) if parts[f.name] else np.zeros(0, dtype=np.int32)
        arrays.append(_string_column(values, names[f.name]) if f.name in names else pa.array(values, type=f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def reduce_counts(counts: pa.Table) -> pa.Table:
    """Sum the count columns over duplicate keys (batches) and sort canonically."""
    sums = [c for c in counts.column_names if c not in COUNT_KEYS]
    summed = counts.group_by(COUNT_KEYS).aggregate([(c, "sum") for c in sums])
    summed = summed.rename_columns([c[:-4] if c.endswith("_sum") else c for c in summed.column_names])
    summed = summed.select(counts.column_names).cast(counts.schema)
    return summed.sort_by([(k, "ascending") for k in COUNT_KEYS])


def region_weights(regions: np.ndarray, n_boot: int, seed: int, key: str):
    """(n_boot, n_regions) float32 draw counts of each region (sorted unique labels) in a
    resample with replacement, seeded by stable_hash64(seed, key); None with fewer than 2 regions."""
    if n_boot <= 0 or len(regions) < 2:
        return None
    return region_draws(len(regions), n_boot, np.random.default_rng(stable_hash64(seed, key))).astype(np.float32)


def _column_quantiles(c: np.ndarray, qs) -> list[np.ndarray]:
    """Linear-interpolated quantiles down each column ignoring NaN (a fast nanpercentile)."""
    srt = np.sort(c, axis=0)  # NaN sort last
    m = np.count_nonzero(~np.isnan(c), axis=0)
    out = []
    for q in qs:
        pos = q * np.maximum(m - 1, 0)
        i0 = np.floor(pos).astype(np.int64)
        i1 = np.minimum(i0 + 1, np.maximum(m - 1, 0))
        v0 = np.take_along_axis(srt, i0[None, :], axis=0)[0]
        v1 = np.take_along_axis(srt, i1[None, :], axis=0)[0]
        out.append(np.where(m > 0, v0 + (pos - i0) * (v1 - v0), np.nan))
    return out


def region_bootstrap(n_rb: np.ndarray, k_rb: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, ...]:
    """Bootstrap of completeness at fixed thresholds from per-region counts n (regions, bins),
    k (regions, T, bins): :func:`replicate_spread` of the region-weighted sums."""
    r, t, b = k_rb.shape
    kb = (weights @ k_rb.reshape(r, t * b).astype(np.float32)).reshape(-1, t, b)
    return replicate_spread(weights @ n_rb.astype(np.float32), kb)


def replicate_recovered(weights: np.ndarray, cell_region: np.ndarray, cell_bin: np.ndarray, cell_level: np.ndarray,
                        cell_n: np.ndarray, boot_levels: np.ndarray, n_bins: int) -> np.ndarray:
    """(n_boot, bins) recovered count of each replicate under its own cut.

    Count cells (region index, bin, cut level, n) with a level above every replicate cut count in all
    replicates (one matrix product, as at a fixed cut); only cells between the lowest and highest
    replicate cut (few: injections whose logit lies in the cut's own spread) are masked per replicate
    and summed per bin (``np.add.reduceat`` over the cells sorted by bin).
    """
    n_boot, n_regions = weights.shape
    always = cell_level > boot_levels.max()
    base = np.bincount(cell_region[always] * n_bins + cell_bin[always], weights=cell_n[always],
                       minlength=n_regions * n_bins).reshape(n_regions, n_bins)
    out = (weights @ base.astype(np.float32)).astype(np.float64)
    amb = np.flatnonzero((cell_level > boot_levels.min()) & ~always)
    if amb.size:
        amb = amb[np.argsort(cell_bin[amb], kind="stable")]
        starts = np.flatnonzero(np.r_[True, np.diff(cell_bin[amb]) != 0])
        bins_hit = cell_bin[amb][starts]
        step = max(1, AMBIGUOUS_CELLS // amb.size)
        for b0 in range(0, n_boot, step):
            w = weights[b0:b0 + step][:, cell_region[amb]] * cell_n[amb]
            w *= cell_level[amb][None, :] > boot_levels[b0:b0 + step, None]
            out[b0:b0 + step, bins_hit] += np.add.reduceat(w, starts, axis=1)
    return out


def replicate_spread(nb: np.ndarray, kb: np.ndarray) -> tuple[np.ndarray, ...]:
    """(std, p2.5, p97.5), each (T, bins), of completeness kb / nb over replicates (nb: (n_boot,
    bins), kb: (n_boot, T, bins)); replicates where a bin is empty are skipped for it, and a bin
    empty in every replicate gives NaN."""
    _, t, b = kb.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(nb[:, None, :] > 0, kb / nb[:, None, :], np.nan).reshape(-1, t * b).astype(np.float64)
    m = np.count_nonzero(~np.isnan(c), axis=0)
    mean = np.where(m > 0, np.nansum(c, axis=0) / np.maximum(m, 1), np.nan)
    var = np.nansum((c - mean) ** 2, axis=0) / np.maximum(m, 1)
    lo, hi = _column_quantiles(c, (0.025, 0.975))
    std = np.where(m > 0, np.sqrt(var), np.nan)
    return std.reshape(t, b), lo.reshape(t, b), hi.reshape(t, b)


def finalize(counts: pa.Table, spec: CountSpec, low_n: int = 50, n_boot: int = 500, seed: int = 42) -> pa.Table:
    """Completeness per (model, subset, threshold, axis, bin), every bin listed (empty ones n=0).

    Columns: the ``completeness`` dataset: C = k/n at the full-sample cut, its Wilson 95% interval
    (binomial, given that cut), ``low_n`` = n < low_n, and the bootstrap (``boot_std``, ``boot_lo``,
    ``boot_hi``; 2.5/97.5 percentiles) in which every replicate resamples the injections' HEALPix
    regions and, for FPR thresholds, uses its own cut recomputed on resampled negatives (the same
    draws for every axis and threshold of a model and subset), and ``n_regions``.
    """
    import pandas as pd

    df = reduce_counts(counts).to_pandas()
    kcols = [f"k_{j}" for j in range(spec.n_proxies)]
    frames = []
    for (model_id, subset), part in df.groupby(["model_id", "subset"], sort=True):
        thresholds = spec.model_thresholds(model_id)
        cuts = spec.cut_set(model_id)
        reg = np.unique(part["region"].to_numpy())
        weights = region_weights(reg, n_boot, seed, f"{model_id}|{subset}")
        if weights is not None and cuts.boot.shape[1] != weights.shape[0]:
            raise ValueError(f"model {model_id!r}: {cuts.boot.shape[1]} replicate cuts for {weights.shape[0]} "
                             "replicates; build the spec with the same bootstrap.n_boot")
        for axis_name, g in part.groupby("axis", sort=True):
            axis = spec.axis(axis_name)
            nb_ = axis.n_bins
            cell_region = np.searchsorted(reg, g["region"].to_numpy())
            cell_bin, cell_level = g["bin"].to_numpy().astype(np.int64), g["level"].to_numpy()
            cell_n = g["n"].to_numpy().astype(np.float64)
            flat = cell_region * nb_ + cell_bin
            n_rb = np.bincount(flat, weights=cell_n, minlength=len(reg) * nb_).reshape(len(reg), nb_)
            k_rb = np.stack([np.bincount(flat, weights=g[c].to_numpy(), minlength=len(reg) * nb_)
                             .reshape(len(reg), nb_) for c in kcols], axis=1) if kcols else np.zeros((len(reg), 0, nb_))
            n = n_rb.sum(axis=0).astype(np.int64)
            k_fpr = [np.bincount(cell_bin, weights=cell_n * (cell_level > p), minlength=nb_) for p in cuts.point]
            k_all = np.rint(np.vstack([*k_fpr, k_rb.sum(axis=0)])).astype(np.int64)  # (T, bins)
            if weights is not None:
                kb = np.concatenate([
                    np.stack([replicate_recovered(weights, cell_region, cell_bin, cell_level, cell_n, b, nb_)
                              for b in cuts.boot], axis=1),
                    (weights @ k_rb.reshape(len(reg), len(kcols) * nb_).astype(np.float32)).reshape(len(weights), len(kcols), nb_),
                ], axis=1)
                bstd, blo, bhi = replicate_spread(weights @ n_rb.astype(np.float32), kb)
            else:
                bstd = blo = bhi = np.full((len(thresholds), nb_), np.nan)
            b_lo, b_hi = axis.bounds(np.arange(nb_))
            n_regions = np.count_nonzero(n_rb > 0, axis=0).astype(np.int32)
            for j, t in enumerate(thresholds):
                k = k_all[j]
                lo, hi = wilson_interval(k, n)
                with np.errstate(divide="ignore", invalid="ignore"):
                    c = np.where(n > 0, k / np.maximum(n, 1), np.nan)
                frames.append(pd.DataFrame({
                    "model_id": model_id, "subset": subset, "threshold_kind": t.kind,
                    "threshold_value": t.value, "axis": axis_name,
                    "bin_index": np.arange(nb_, dtype=np.int32), "bin_lo": list(b_lo), "bin_hi": list(b_hi),
                    "n": n, "k": k, "completeness": c, "ci_lo": lo, "ci_hi": hi, "low_n": n < low_n,
                    "boot_std": bstd[j], "boot_lo": blo[j], "boot_hi": bhi[j], "n_regions": n_regions,
                }))
    if not frames:
        return _empty_completeness()
    table = pa.Table.from_pandas(pd.concat(frames, ignore_index=True), preserve_index=False)
    return conform(table, "completeness").sort_by(
        [(c, "ascending") for c in ("model_id", "subset", "threshold_kind", "threshold_value", "axis", "bin_index")])


def reported_interval(ci_lo, ci_hi, boot_lo, boot_hi, n_regions) -> tuple[np.ndarray, np.ndarray]:
    """The 95% interval to quote for a bin: the bootstrap (injection regions and negatives resampled,
    the cut recomputed per replicate) where the bin has >= MIN_BOOTSTRAP_REGIONS regions; with fewer
    regions its union with the Wilson interval (the bootstrap still carries the cut's uncertainty,
    Wilson the binomial spread few regions understate); Wilson alone where there is no bootstrap."""
    wlo, whi, blo, bhi = (np.asarray(v, dtype=float) for v in (ci_lo, ci_hi, boot_lo, boot_hi))
    many = np.asarray(n_regions) >= MIN_BOOTSTRAP_REGIONS
    has = np.isfinite(blo) & np.isfinite(bhi)
    lo = np.where(has & many, blo, np.where(has, np.fmin(wlo, blo), wlo))
    hi = np.where(has & many, bhi, np.where(has, np.fmax(whi, bhi), whi))
    return lo, hi


def _empty_completeness() -> pa.Table:
    from dhs_gen.schemas import get_dataset

    return get_dataset("completeness").schema.empty_table()


def ensemble_spread(table: pa.Table) -> pa.Table:
    """Across models: mean, std, min, max of completeness per (subset, threshold, axis, bin)."""
    df = table.select(["model_id", "subset", "threshold_kind", "threshold_value", "axis", "bin_index",
                       "completeness"]).to_pandas()
    keys = ["subset", "threshold_kind", "threshold_value", "axis", "bin_index"]
    agg = df.groupby(keys, sort=True)["completeness"].agg(["count", "mean", "std", "min", "max"]).reset_index()
    agg = agg.rename(columns={"count": "n_models", "mean": "c_mean", "std": "c_std", "min": "c_min", "max": "c_max"})
    return pa.Table.from_pandas(agg, preserve_index=False)


def check_unique(table: pa.Table, keys: list[str], what: str) -> None:
    """Raise ValueError naming duplicated keys (a duplicate would be counted twice)."""
    counts = table.select(keys).group_by(keys).aggregate([([], "count_all")])
    dup = counts.filter(pc.greater(counts["count_all"], 1))
    if dup.num_rows:
        raise ValueError(f"{what}: {dup.num_rows} duplicated {keys}, e.g. {dup.slice(0, 3).to_pylist()}")


def coverage(scored_per_model: dict, n_injections: int) -> pa.Table:
    """Per model: injections, injections with a score row, injections without one."""
    models = sorted(m for m in scored_per_model if m is not None)
    scored = [int(scored_per_model[m]) for m in models]
    return pa.table({"model_id": pa.array(models, pa.string()), "n_injections": [n_injections] * len(models),
                     "n_scored": scored, "n_unscored": [n_injections - k for k in scored]})


def compute_completeness(injections: pa.Table, scores: pa.Table, negatives: pa.Table,
                         cfg: SelectionConfig) -> dict[str, pa.Table]:
    """The local function: injections (stamps) + scores + negative scores -> result tables.

    Returns {"completeness", "thresholds", "counts", "coverage", "ensemble" (several models)}.
    """
    check_unique(injections, ["task_id"], "injections")
    check_unique(scores, ["id", "model_id"], "scores")
    spec, thresholds = build_spec(cfg, negatives)
    joined = join_scores(injections, scores)
    counts = reduce_counts(pa.Table.from_batches([count_batch(joined, spec)]))
    per_model = joined.group_by("model_id").aggregate([([], "count_all")]).to_pylist()
    cov = coverage({r["model_id"]: r["count_all"] for r in per_model}, injections.num_rows)
    return assemble(counts, spec, thresholds, cfg, cov)


def assemble(counts: pa.Table, spec: CountSpec, thresholds: pa.Table, cfg: SelectionConfig,
             coverage_table: pa.Table) -> dict[str, pa.Table]:
    """Summed counts -> the result tables (shared by the local function and the Spark job)."""
    table = finalize(counts, spec, cfg.low_n, cfg.bootstrap.n_boot, cfg.bootstrap.seed)
    out = {"completeness": table, "thresholds": thresholds, "counts": counts, "coverage": coverage_table}
    if len(pc.unique(table["model_id"])) > 1:
        out["ensemble"] = ensemble_spread(table)
    return out
