"""Phase 4d: proxy completeness of an injection set, before any model exists.

An injection is *valid* when ``status == 'ok'`` and ``cutout_ok`` (subset ``all``); subset
``clean`` also needs ``bad_pixel_frac ≤ max_bad_pixel_frac``. It is *recovered* (resolvable)
at threshold x when valid, θ_E > 0, ``snr_column ≥ snr_min`` and ``x_ratio`` = θ_E / PSF FWHM(r)
≥ x (PSF FWHM = the survey psfsize, the NEA-FWHM of the kernel the arcs were rendered with,
:mod:`dhs_gen.psf`; before that convention the rendered PSF was 1.23x wider than the axis said). Completeness k/n per θ_E bin (and overall) with Wilson 95% intervals, for every x in
``x_ratio_thresholds``. The earlier pipeline's rule is ``snr_column='arc_snr_max'``, snr_min 5,
x 0.8 (configs/phase4d_legacy.yaml).

The work is split so Spark can do the heavy part: :func:`proxy_flags` (per row, batch function)
→ sum by θ_E bin → :func:`completeness_from_counts` (tiny table on the driver).
"""
from __future__ import annotations

from typing import List, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import Field, field_validator

from dhs_gen.config import StrictModel
from dhs_gen.schemas import STATUS_OK, conform
from dhs_gen.stats.intervals import wilson_interval

SUBSETS = ("all", "clean")
LOW_N = 50
PROXY_MODEL_ID = "proxy"  # the completeness schema's model_id for model-free proxy rows


class ProxyConfig(StrictModel):
    """Thresholds and binning of the proxy completeness."""

    x_ratio_thresholds: List[float] = Field(default_factory=lambda: [0.6, 0.7, 0.8, 0.9])
    snr_column: Literal["arc_snr_sum", "arc_snr_max"] = "arc_snr_sum"
    snr_min: float = 5.0
    theta_e_edges: List[float] = Field(default_factory=lambda: [0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0001],
                                       description="θ_E bin edges [arcsec], bins [lo, hi)")
    max_bad_pixel_frac: float = 0.2

    @field_validator("theta_e_edges")
    @classmethod
    def _increasing(cls, edges: List[float]) -> List[float]:
        if len(edges) < 2 or not np.all(np.diff(edges) > 0):
            raise ValueError(f"theta_e_edges must be >= 2 increasing values, got {edges}")
        return edges


INPUT_COLUMNS = ("status", "cutout_ok", "theta_e_arcsec", "x_ratio", "bad_pixel_frac", "arc_snr_sum", "arc_snr_max")


def count_columns(cfg: ProxyConfig) -> List[str]:
    """Names of the per-row 0/1 columns that are summed per θ_E bin."""
    return [f"{kind}_{s}_{k}" if kind == "rec" else f"{kind}_{s}" for s in SUBSETS
            for kind in ("n", "rec") for k in (range(len(cfg.x_ratio_thresholds)) if kind == "rec" else [0])]


def flags_schema(cfg: ProxyConfig) -> pa.Schema:
    return pa.schema([("theta_bin", pa.int32())] + [(c, pa.int64()) for c in count_columns(cfg)])


def proxy_flags(batch, cfg: ProxyConfig) -> pa.RecordBatch:
    """Per-row θ_E bin index (-1 outside the edges) and 0/1 valid/recovered flags per subset."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch

    def num(name):
        return table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)

    status = np.asarray(table.column("status").to_pylist(), dtype=object) == STATUS_OK
    cutout_ok = table.column("cutout_ok").fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
    theta, x_ratio, snr = num("theta_e_arcsec"), num("x_ratio"), num(cfg.snr_column)
    bad = num("bad_pixel_frac")
    valid = {"all": status & cutout_ok}
    valid["clean"] = valid["all"] & (np.nan_to_num(bad, nan=1.0) <= cfg.max_bad_pixel_frac)
    with np.errstate(invalid="ignore"):
        detect = (theta > 0) & (snr >= cfg.snr_min)
        passes = [detect & (x_ratio >= x) for x in cfg.x_ratio_thresholds]
    edges = np.asarray(cfg.theta_e_edges)
    bins = np.searchsorted(edges, np.nan_to_num(theta, nan=-1.0), side="right") - 1
    bins = np.where((bins >= 0) & (bins < len(edges) - 1), bins, -1)
    arrays = [pa.array(bins.astype(np.int32))]
    for s in SUBSETS:
        arrays.append(pa.array(valid[s].astype(np.int64)))
        arrays.extend(pa.array((valid[s] & p).astype(np.int64)) for p in passes)
    return pa.RecordBatch.from_arrays(arrays, schema=flags_schema(cfg))


def completeness_from_counts(counts: pd.DataFrame, cfg: ProxyConfig) -> pa.Table:
    """``completeness``-schema rows from per-θ_E-bin sums (columns theta_bin + count_columns).

    Rows: per subset × x threshold, one per θ_E bin (axis ``theta_e_arcsec``) and one overall
    (axis ``all``, including injections outside the θ_E edges). Extra columns record the SNR rule.
    """
    edges = cfg.theta_e_edges
    counts = counts.set_index("theta_bin")
    rows = []
    for s in SUBSETS:
        for k, x in enumerate(cfg.x_ratio_thresholds):
            groups = [("all", 0, None, None, counts)]
            groups += [("theta_e_arcsec", b, edges[b], edges[b + 1], counts.loc[[b]] if b in counts.index else None)
                       for b in range(len(edges) - 1)]
            for axis, index, lo, hi, part in groups:
                n = int(part[f"n_{s}"].sum()) if part is not None else 0
                kk = int(part[f"rec_{s}_{k}"].sum()) if part is not None else 0
                ci_lo, ci_hi = wilson_interval(kk, n) if n else (np.nan, np.nan)
                rows.append({"model_id": PROXY_MODEL_ID, "bin_index": index, "subset": s, "threshold_kind": "proxy", "threshold_value": float(x), "axis": axis,
                             "bin_lo": None if lo is None else [float(lo)],
                             "bin_hi": None if hi is None else [float(hi)], "n": n, "k": kk,
                             "completeness": kk / n if n else np.nan, "ci_lo": float(ci_lo), "ci_hi": float(ci_hi),
                             "low_n": n < LOW_N})
    table = conform(pa.Table.from_pylist(rows), "completeness")
    table = table.append_column("snr_column", pa.array([cfg.snr_column] * table.num_rows))
    return table.append_column("snr_min", pa.array([float(cfg.snr_min)] * table.num_rows))


def sum_flags(flags: pa.Table) -> pd.DataFrame:
    """Sum the flag columns per θ_E bin (the local twin of the Spark groupBy)."""
    return flags.to_pandas().groupby("theta_bin", as_index=False).sum()


def proxy_completeness(stamps: pa.Table, cfg: ProxyConfig) -> pa.Table:
    """Function API: the proxy completeness table of a stamps table (metric columns suffice)."""
    flags = pa.Table.from_batches([proxy_flags(stamps.select(list(INPUT_COLUMNS)), cfg)])
    return completeness_from_counts(sum_flags(flags), cfg)
