"""``dhs selection-function --config …``: scores -> completeness tables -> figures, one command.

Reads the grid injection set (phase-4c stamps), the injections' scores and the negatives'
scores, proves every scored model never trained on the selection set, computes completeness
(local function; ``--from-tables`` reuses the tables of ``dhs completeness`` in the output
folder instead), the observability map with its SLACS check, the injection-realism audit, and
writes Parquet + JSON tables, ``selection_summary.json`` and PNG figures under ``output``.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dhs_gen.config import load_config, save_resolved_config
from dhs_gen.entrypoint import plain_text
from dhs_gen.log import get_logger, setup_logging
from dhs_gen.selection.config import SelectionConfig
from dhs_gen.storage import join_uri, mark_complete, read_json, read_parquet, write_json

log = get_logger(__name__)


def read_columns(uri: str, wanted) -> pa.Table:
    """Only the ``wanted`` columns a Parquet dataset has (never the stamp blobs by accident)."""
    import pyarrow.dataset as ds

    from dhs_gen.storage import get_fs

    fs, path = get_fs(uri)
    names = ds.dataset(path, filesystem=fs, format="parquet", partitioning="hive",
                       ignore_prefixes=[".", "_"]).schema.names
    return read_parquet(uri, columns=[c for c in wanted if c in names])


def _require(cfg: SelectionConfig, *names: str) -> None:
    missing = [n for n in names if not getattr(cfg, n)]
    if missing:
        raise SystemExit(f"dhs selection-function: config needs {missing}")


def _axis_centres(edges) -> np.ndarray:
    e = np.asarray(edges, dtype=float)
    hi = np.where(np.isfinite(e[1:]), e[1:], e[:-1] + np.nanmedian(np.diff(e[np.isfinite(e)])))
    return 0.5 * (e[:-1] + hi)


def observability_outputs(cfg: SelectionConfig, injections: pa.Table) -> tuple[pa.Table, dict, float]:
    """The observables of each (theta_E, z_l) cell from its own injections, the SLACS check, and the
    set's median z_s.

    Every injection converts its theta_E [arcsec] to sigma_v [km/s] and M(<theta_E) [M_sun] at its
    host's redshift ``z_l`` and its own ``z_s``; the table holds their medians per cell of the
    configured ``theta_e_arcsec`` x ``z_l`` edges (one open bin where an axis is not configured).
    Only injections that rendered (status ok, cutout_ok) count, as in the completeness."""
    from dhs_gen.schemas import STATUS_OK
    from dhs_gen.selection.observability import observability_by_bin, slacs_check

    rows = injections
    if "status" in rows.column_names:
        rows = rows.filter(pc.equal(rows["status"], STATUS_OK))
    if "cutout_ok" in rows.column_names:
        rows = rows.filter(pc.fill_null(rows["cutout_ok"], False))
    missing = [c for c in ("theta_e_arcsec", "z_l", "z_s") if c not in rows.column_names]
    if missing:
        raise ValueError(f"{cfg.injections}: the observability map needs each injection's {missing} "
                         "(z_l is the host's redshift from phase 4a)")
    zs = rows["z_s"].cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    z_s = float(np.nanmedian(zs)) if np.isfinite(zs).any() else float("nan")
    edges = [cfg.axes.get(a, [-np.inf, np.inf]) for a in ("theta_e_arcsec", "z_l")]
    table = observability_by_bin(rows, *edges, cosmology=cfg.observability.cosmology)
    return table, slacs_check(cfg.observability.cosmology), z_s


def _observable_grid(obs: pa.Table, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(theta_E cell centres, z_l cell centres, per-cell median of ``column`` with NaN where a cell is
    empty) from :func:`observability_outputs`'s table, for contour plots."""
    cols = {c: obs[c].to_numpy() for c in ("theta_lo", "theta_hi", "z_l_lo", "z_l_hi", column)}
    theta_edges = np.unique(np.r_[cols["theta_lo"], cols["theta_hi"]])
    z_edges = np.unique(np.r_[cols["z_l_lo"], cols["z_l_hi"]])
    grid = np.full((len(theta_edges) - 1, len(z_edges) - 1), np.nan)
    grid[np.searchsorted(theta_edges, cols["theta_lo"]), np.searchsorted(z_edges, cols["z_l_lo"])] = cols[column]
    return _axis_centres(theta_edges), _axis_centres(z_edges), grid


def _images(column: pa.ChunkedArray) -> list[np.ndarray]:
    from dhs_gen.io.stamps import decode_stamp_npz

    return [decode_stamp_npz(b, nan_policy="report").image for b in column.to_pylist()]


def _crop(images: list[np.ndarray], size: int) -> np.ndarray:
    """Central size x size crops stacked as float32 (N, C, size, size)."""
    out = []
    for img in images:
        y0, x0 = (img.shape[1] - size) // 2, (img.shape[2] - size) // 2
        out.append(img[:, y0:y0 + size, x0:x0 + size])
    return np.stack(out).astype(np.float32)


def realism_outputs(cfg: SelectionConfig) -> dict:
    """Run the realism audit against the configured REAL lens set; otherwise say why it did not run.

    The result names the set (``real_set``: name, source, path, n, failures) beside the AUCs."""
    from dhs_gen.determinism import stable_hash64_many
    from dhs_gen.schemas import STATUS_OK
    from dhs_gen.selection.real_lenses import load_real_lenses
    from dhs_gen.selection.realism import EARLIER_PIPELINE_AUC, realism_audit

    rc = cfg.realism
    if not rc.enabled or not rc.real_cutouts:
        return {"status": "not run: realism.enabled and realism.real_cutouts are required",
                "earlier_pipeline_auc": EARLIER_PIPELINE_AUC}
    real = load_real_lenses(rc.real_cutouts, rc.real_catalogue, rc.real_column, rc.real_set_name, rc.real_set_source)
    if len(real.images) < 2:
        return {"status": f"not run: {len(real.images)} real lens images decoded (need >= 2)",
                "real_set": real.summary(), "earlier_pipeline_auc": EARLIER_PIPELINE_AUC}
    inj = read_columns(cfg.injections, ["task_id", "status", "cutout_ok", rc.injection_column])
    inj = inj.filter(pc.and_(pc.equal(inj["status"], STATUS_OK), pc.fill_null(inj["cutout_ok"], False)))
    inj = inj.filter(pc.is_valid(inj[rc.injection_column]))
    order = np.argsort(stable_hash64_many(rc.seed, inj["task_id"].to_pylist()), kind="stable")
    inj = inj.take(order[: max(rc.max_injections, len(real.images))])
    inj_list = _images(inj[rc.injection_column])
    size = min(min(i.shape[1:]) for i in real.images + inj_list)
    real_img, inj_img = _crop(real.images, size), _crop(inj_list, size)
    model = None
    if rc.frozen_model:
        from training.export import load_frozen_model

        model = load_frozen_model(rc.frozen_model)
    out = realism_audit(real_img, inj_img, model, rc.n_splits, rc.seed, rc.n_boot)
    return {"status": "ok", "real_set": real.summary(), "stamp_size_pix": int(real_img.shape[-1]), **out}


def run_selection(cfg: SelectionConfig, from_tables: bool = False) -> dict:
    """The whole stage; returns the summary written to ``selection_summary.json``."""
    from dhs_gen.selection.completeness import INJECTION_COLUMNS, compute_completeness
    from dhs_gen.selection.provenance import verify_provenance
    from dhs_gen.selection.report import headline, table_records, write_tables
    from dhs_gen.selection.thresholds import NEGATIVE_COLUMNS

    _require(cfg, "injections", "output")
    injections = read_columns(cfg.injections, [*INJECTION_COLUMNS, "host_id"])
    if from_tables:
        results = {n: read_parquet(join_uri(cfg.output, f"{n}.parquet"))
                   for n in ("completeness", "thresholds", "coverage")}
        provenance = read_json(join_uri(cfg.output, "selection_summary.json"))["provenance"]
    else:
        _require(cfg, "scores", "negative_scores")
        scores = read_columns(cfg.scores, ["id", "logit", "model_score", "model_id", "status"])
        negatives = read_columns(cfg.negative_scores, NEGATIVE_COLUMNS)
        hosts = injections["host_id"].to_pylist() if "host_id" in injections.column_names else []
        provenance = verify_provenance(pc.unique(scores["model_id"]).to_pylist(), cfg.provenance,
                                       injections["task_id"].to_pylist(), hosts, negatives["id"].to_pylist())
        results = compute_completeness(injections, scores, negatives, cfg)
    overall = results["completeness"].filter(pc.equal(results["completeness"]["axis"], "overall"))
    if not pc.sum(overall["n"]).as_py():
        raise ValueError(f"{cfg.injections}: no injection is valid (status ok, cutout_ok, and a score with "
                         f"status ok); coverage: {table_records(results['coverage'])}")
    obs, slacs, z_s = observability_outputs(cfg, injections)
    results["observability"] = obs
    realism = realism_outputs(cfg)
    written = write_tables({k: v for k, v in results.items() if not (from_tables and k != "observability")},
                           cfg.output)
    slacs_summary = {k: v for k, v in slacs.items() if not isinstance(v, list)}
    summary = {
        "n_injections": injections.num_rows, "provenance": provenance,
        "headline": headline(results["completeness"], results["thresholds"]),
        "thresholds": table_records(results["thresholds"]), "coverage": table_records(results["coverage"]),
        "observability": {"z_s": z_s, **slacs_summary},
        "realism": realism, "tables": written, "engine": "precomputed" if from_tables else "local",
    }
    if cfg.figures:
        summary["figures"] = make_figures(cfg, results, obs, slacs, z_s, realism)
    write_json(join_uri(cfg.output, "selection_summary.json"), summary)
    save_resolved_config(cfg, cfg.output)
    mark_complete(cfg.output, {"n_injections": injections.num_rows})
    return summary


def make_figures(cfg: SelectionConfig, results: dict, obs: pa.Table, slacs: dict, z_s: float,
                 realism: dict | None = None) -> list[str]:
    """Write the four figures under ``<output>/figures`` for the first model (or each, ensembles)."""
    from dhs_gen.selection import figures
    from dhs_gen.selection.observability import sigma_from_theta_e, theta_e_from_sigma

    df = results["completeness"].to_pandas()
    ens = results["ensemble"].to_pandas() if results.get("ensemble") is not None else None
    fig_dir = join_uri(cfg.output, "figures")
    theta, zl, sigma = _observable_grid(obs, "sigma_v_kms_median")
    log_m = _observable_grid(obs, "log10_mass_msun_median")[2]
    contours = sigma.shape[0] >= 2 and sigma.shape[1] >= 2 and np.isfinite(sigma).sum() >= 4
    fprs = sorted(cfg.fprs, reverse=True)
    z_mid = float(np.median(df.loc[df.axis == "z_l"].bin_lo.map(lambda b: b[0]))) if (df.axis == "z_l").any() else 0.4
    cosmo = cfg.observability.cosmology
    sig_axis = (lambda t: sigma_from_theta_e(np.clip(t, 1e-3, None), z_mid, z_s, cosmo),
                lambda s: theta_e_from_sigma(np.clip(s, 1e-3, None), z_mid, z_s, cosmo),
                f"z_l={z_mid:.2f}, z_s={z_s:.2f}")
    note = figures.realism_note(realism)
    cuts = results["thresholds"].to_pandas()
    out = []
    for model_id in sorted(df.model_id.unique()):
        tag = model_id[:12]
        mine = cuts[(cuts.model_id == model_id) & (cuts.threshold_kind == "fpr")]
        unresolved = sorted(mine.loc[~mine.resolved.astype(bool), "threshold_value"].tolist())  # never drawn
        resolved = [f for f in fprs if not any(np.isclose(f, u) for u in unresolved)]
        grid = f"{cfg.grids[0][0]} x {cfg.grids[0][1]}" if cfg.grids else None
        if grid == "theta_e_arcsec x z_l":
            out.append(figures.heatmap(df, join_uri(fig_dir, f"selection_heatmap_{tag}.png"), model_id,
                                       (resolved or fprs)[0], (theta, zl, sigma) if contours else None, low_n=cfg.low_n, note=note,
                                       unresolved=not resolved))
        one_d = tuple(a for a in ("theta_e_arcsec", "theta_over_psf", "src_mag_r", "arc_snr_sum") if a in cfg.axes)
        out.append(figures.curves(df, join_uri(fig_dir, f"selection_curves_{tag}.png"), model_id, fprs, one_d,
                                  sig_axis, ens, note, unresolved=unresolved))
        out.append(figures.threshold_sensitivity(df, join_uri(fig_dir, f"selection_thresholds_{tag}.png"),
                                                 model_id, resolved, sorted(cfg.proxy_thresholds)))
    from dhs_gen.selection.observability import read_slacs

    table = read_slacs()
    keep = np.isin(table["name"], slacs["name"])
    slacs_pts = {"theta_e": table["theta_Ein"][keep], "z_l": table["zd"][keep],
                 "sigma_obs": np.asarray(slacs["sigma_obs_kms"]), "sigma_err": np.asarray(slacs["sigma_obs_err_kms"]),
                 "sigma_sie": np.asarray(slacs["sigma_sie_kms"]), "median_ratio": slacs["median_ratio"],
                 "rms_ratio": slacs["rms_ratio"]}
    out.append(figures.observability_map(join_uri(fig_dir, "selection_observability.png"), theta, zl, sigma,
                                         log_m, z_s, cosmo, slacs_pts))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="dhs selection-function", description=plain_text(__doc__))
    parser.add_argument("--config", help="YAML config (configs/selection_demo.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--from-tables", action="store_true",
                        help="reuse completeness/thresholds tables written by `dhs completeness` in output")
    parser.add_argument("--log-level", default=None)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    cfg = load_config(SelectionConfig, args.config, args.overrides)
    summary = run_selection(cfg, from_tables=args.from_tables)
    line = {"stage": "selection-function", "n_injections": summary["n_injections"],
            "models": [p["model_id"] for p in summary["provenance"]],
            "realism": summary["realism"].get("pixel_stats", {}).get("auc", summary["realism"].get("status")),
            "output": cfg.output}
    print(json.dumps(line, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
