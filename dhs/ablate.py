"""``dhs ablate --config configs/ablation.yaml``: which training variant helps, and is the difference real?

A matrix of variants (named ``--set`` overrides of one base training config: source generation,
hard-negative curriculum, 3 vs 6 channels, loss, backbone, ...) x seeds. Each cell is one normal
training run (``torchrun -m training.train``) into ``<out>/cells/<variant>/seed<k>/run``; a rerun
skips cells whose frozen model is complete, and a failed cell is recorded (``status: failed`` with
its error) and reported, never dropped. Then every model scores one shared held-out test split and,
when given, one selection grid (injections no variant trained on + held-out negatives), and
:mod:`dhs_gen.stats.paired` compares each variant with the baseline on the same rows:

* per variant: mean +- seed spread of AUC and TPR at each FPR (cut on the test negatives);
* difference to the baseline with a paired HEALPix-region bootstrap interval (cuts recomputed in
  every replicate) and p-value, Holm-corrected across variants;
* McNemar at each model's cut fixed on validation negatives, seed-matched pairs;
* completeness C(theta_E) on the selection grid per variant, and ΔC(theta_E) with intervals;
* last row: a calibrated ensemble of the best variants, chosen and calibrated on validation.

Writes ``<out>/ablation.json``, ``<out>/ablation_table.csv`` and figures (PNG + PDF).
"""
from __future__ import annotations

# ruff: noqa: UP045  (pydantic on Python 3.9 needs Optional[...], not X | None)
import argparse
import sys
from typing import Dict, List, Optional

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from dhs_gen.config import StrictModel
from dhs_gen.entrypoint import plain_text
from dhs_gen.log import get_logger

log = get_logger(__name__)

ENSEMBLE = "ensemble"


class Variant(StrictModel):
    """One row of the matrix: a name and the training-config overrides that define it."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$")
    set: List[str] = Field(default_factory=list, description="KEY=VALUE overrides of the base training config")
    description: str = ""


class SelectionGrid(StrictModel):
    """Injections no variant trained on, and held-out negatives that set each model's cut."""

    injections: str = Field(..., description="phase-4c stamps dataset (task_id, stamp, theta_e_arcsec, ra, dec)")
    negatives: str = Field(..., description="cutout dataset of held-out negatives (galaxy_id, cutout, ra, dec)")
    negative_split: Optional[str] = Field(None, description="keep only this split of the negatives")
    theta_e_edges: List[float] = Field(default_factory=lambda: [0.5, 1.0, 1.5, 2.0, 3.0])


class AblationStats(StrictModel):
    fprs: List[float] = Field(default_factory=lambda: [1e-2, 1e-3])
    primary_metric: str = "tpr@0.01"
    n_boot: int = Field(1000, ge=50)
    region_nside: int = Field(8, ge=1)
    min_regions: int = Field(10, ge=2, description="fewer HEALPix regions: resample galaxies instead (flagged)")
    alpha: float = Field(0.05, gt=0, lt=1)
    max_rows_per_split: int = Field(5000, ge=10)
    seed: int = 0


class AblationConfig(StrictModel):
    """configs/ablation.yaml: the variant x seed matrix and how it is compared."""

    name: str = "ablation"
    base_config: str = Field(..., description="training YAML every cell starts from")
    shards: str = Field(..., description="shard index.json: train/val for training, the test split for comparison")
    out_dir: str
    baseline: str
    variants: List[Variant]
    seeds: List[int] = Field(..., min_length=2)
    common_set: List[str] = Field(default_factory=list, description="overrides applied to every cell")
    nproc_per_node: int = Field(1, ge=1)
    ensemble_top_k: int = Field(2, ge=0, description="best variants (by mean validation AUC) in the ensemble; 0: none")
    selection: Optional[SelectionGrid] = None
    stats: AblationStats = Field(default_factory=AblationStats)

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"seeds must be distinct, got {v}")
        return v

    @model_validator(mode="after")
    def _baseline_is_a_variant(self):
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        if self.baseline not in names:
            raise ValueError(f"baseline {self.baseline!r} is not one of the variants {names}")
        if ENSEMBLE in names:
            raise ValueError(f"{ENSEMBLE!r} is reserved for the ensemble row")
        if self.stats.primary_metric not in ["auc", *[f"tpr@{f:g}" for f in self.stats.fprs]]:
            raise ValueError(f"stats.primary_metric {self.stats.primary_metric!r} is not auc or tpr@<one of fprs>")
        return self


# ------------------------------------------------------------------------------------ cells
def cell_dir(cfg: AblationConfig, variant: str, seed: int) -> str:
    from dhs_gen.storage import join_uri

    return join_uri(cfg.out_dir, "cells", variant, f"seed{seed}")


def cell_overrides(cfg: AblationConfig, variant: Variant, seed: int) -> List[str]:
    """The overrides of one cell: shards, common, the variant's own, then seed and out_dir (last wins)."""
    from dhs_gen.storage import join_uri

    return [f"data.shards={cfg.shards}", *cfg.common_set, *variant.set, f"run.seed={seed}",
            f"run.out_dir={join_uri(cell_dir(cfg, variant.name, seed), 'run')}"]


def run_cell(cfg: AblationConfig, variant: Variant, seed: int) -> dict:
    """Train one cell unless its frozen model is complete; returns its status record (also written)."""
    from dhs.demo_jobs import DemoJobError, torchrun
    from dhs_gen.config import load_config
    from dhs_gen.storage import is_complete, join_uri, write_json
    from training.train import TrainConfig

    run_dir = join_uri(cell_dir(cfg, variant.name, seed), "run")
    frozen = join_uri(run_dir, "frozen")
    record = {"variant": variant.name, "seed": seed, "run_dir": run_dir, "frozen": frozen}
    if is_complete(frozen):
        log.info("ablation cell %s/seed%d: done, skipped", variant.name, seed)
        return {**record, "status": "ok", "skipped": True}
    sets = cell_overrides(cfg, variant, seed)
    try:
        load_config(TrainConfig, cfg.base_config, sets)  # a bad override fails here, not in torchrun
        print(f"[ablate] training {variant.name} seed {seed}", flush=True)
        result = torchrun("training.train", ["--config", cfg.base_config, *[a for s in sets for a in ("--set", s)]],
                          nproc=cfg.nproc_per_node)
        record.update(status="ok", best_auc=result.get("best_auc"), model_id=result.get("model_id"))
    except (DemoJobError, ValueError) as exc:
        record.update(status="failed", error=str(exc)[-3000:])
        log.error("ablation cell %s/seed%d failed: %s", variant.name, seed, str(exc).splitlines()[0])
    write_json(join_uri(cell_dir(cfg, variant.name, seed), "cell.json"), record)
    return record


# ------------------------------------------------------------------------------------ scoring
def _load_models(cells: List[dict]) -> Dict[str, object]:
    from training.export import load_frozen_model

    return {f"{c['variant']}/seed{c['seed']}": load_frozen_model(c["frozen"]) for c in cells}


def score_test_and_val(cfg: AblationConfig, models: Dict[str, object]) -> pd.DataFrame:
    """Every model's logits on the shared val and test splits (one row per scored stamp)."""
    from training.data.store import ShardStore
    from training.evaluate import score_splits

    store = ShardStore(cfg.shards)
    mode = "paired" if "ctrl_stamp" in store.views else "plain"
    meta = {tuple(m.record["preprocess"].get("meta_columns", [])) for m in models.values()}
    if len(meta) != 1:
        raise ValueError(f"variants use different metadata inputs {sorted(meta)}: score them separately")
    pred = score_splits(models, store, mode, ("val", "test"), cfg.stats.max_rows_per_split, cfg.stats.seed,
                        list(meta.pop()))
    names = list(models)
    pred = pred.rename(columns={"logit": f"logit__{names[0]}"})
    for m in models.values():  # no model may have trained on a row it is compared on
        m.assert_disjoint(pred["id"].astype(str).unique())
    return pred


def score_grid(grid: SelectionGrid, models: Dict[str, object]) -> pd.DataFrame:
    """Every model's logits on the selection grid's injections (label 1) and negatives (label 0)."""
    import pyarrow.compute as pc

    from dhs_gen.storage import read_parquet
    from training.eval.scoring import scorer_from_calibration

    inj = read_parquet(grid.injections, columns=["task_id", "stamp", "status", "cutout_ok", "theta_e_arcsec",
                                                 "ra", "dec", "host_id"])
    neg = read_parquet(grid.negatives)
    if grid.negative_split and "split" in neg.column_names:
        neg = neg.filter(pc.equal(neg["split"], grid.negative_split))
    from dhs.stages.selection_function import crop_to_model_input, model_input_size

    neg, _ = crop_to_model_input(neg, "cutout", model_input_size([m.path for m in models.values()]))
    hosts = {str(h) for h in inj["host_id"].to_pylist()}
    for m in models.values():  # no model trained on a grid injection or on a negative that sets its cut
        m.assert_disjoint(inj["task_id"].to_pylist())
        m.assert_disjoint(neg["galaxy_id"].to_pylist())
    parts = []
    for name, model in models.items():  # the models already loaded, uncalibrated (cuts are on logits)
        meta = model.record["preprocess"].get("meta_columns", [])
        scorer = scorer_from_calibration([model], None, 1.0, meta)
        s_inj = scorer.score_table(inj.select(["task_id", "stamp", "status", "cutout_ok"]), id_column="task_id",
                                   stamp_column="stamp")
        s_neg = scorer.score_table(neg.select([c for c in ("galaxy_id", "cutout", "status", "cutout_ok")
                                               if c in neg.column_names]), id_column="galaxy_id",
                                   stamp_column="cutout")
        parts.append((name, s_inj.to_pandas(), s_neg.to_pandas()))
    n_inj, n_neg = inj.num_rows, neg.num_rows
    frame = pd.DataFrame({
        "id": inj["task_id"].to_pylist() + neg["galaxy_id"].to_pylist(),
        "label": np.r_[np.ones(n_inj, int), np.zeros(n_neg, int)],
        "theta_e_arcsec": np.r_[inj["theta_e_arcsec"].to_numpy(zero_copy_only=False), np.full(n_neg, np.nan)],
        "ra": np.r_[inj["ra"].to_numpy(zero_copy_only=False), neg["ra"].to_numpy(zero_copy_only=False)],
        "dec": np.r_[inj["dec"].to_numpy(zero_copy_only=False), neg["dec"].to_numpy(zero_copy_only=False)]})
    ok = np.ones(len(frame), bool)
    for name, s_inj, s_neg in parts:
        scores = pd.concat([s_inj, s_neg], ignore_index=True).drop_duplicates("id").set_index("id")
        frame[f"logit__{name}"] = frame["id"].map(scores["logit"])
        ok &= frame["id"].map(scores["status"]).eq("ok").to_numpy()
    dropped = int((~ok).sum())
    if dropped:
        log.warning("selection grid: %d rows without an ok score from every model are left out", dropped)
    frame = frame[ok].reset_index(drop=True)
    frame.attrs["grid"] = {"n_rows_left_out": dropped, "n_hosts": len(hosts),
                           "host_overlap_with_training": {n: len(hosts & m.trained_host_ids())
                                                          for n, m in models.items()}}
    return frame


# ------------------------------------------------------------------------------------ statistics
def _runs(frame: pd.DataFrame, variant: str, seeds: List[int]) -> np.ndarray:
    return np.stack([frame[f"logit__{variant}/seed{s}"].to_numpy(np.float64) for s in seeds])


def resampling_blocks(frame: pd.DataFrame, stats: AblationStats) -> tuple[np.ndarray, str]:
    """Bootstrap blocks of the compared rows and how they were chosen: HEALPix regions (NESTED,
    ``region_nside``) when there are at least ``min_regions`` of them, else galaxies (the rows of
    one ``id``, e.g. a positive and its paired control, stay together) — a fallback that ignores
    the sky correlation, so it is named in the output."""
    from training.eval.report import coarse_healpix

    regions = coarse_healpix(frame, stats.region_nside)
    n = 0 if regions is None else int(np.unique(regions).size)
    if n >= stats.min_regions:
        return regions, f"HEALPix regions (NESTED nside {stats.region_nside}, {n} regions)"
    galaxies = pd.factorize(frame["id"])[0] if "id" in frame else np.arange(len(frame))
    return (galaxies,
            f"galaxies: only {n} HEALPix regions at nside {stats.region_nside} (< {stats.min_regions}), "
            "so the sky correlation is not in the intervals")


def _ensemble_logits(cfg: AblationConfig, ok_seeds: Dict[str, List[int]], val: pd.DataFrame,
                     frames: Dict[str, pd.DataFrame]) -> tuple[dict, Dict[str, np.ndarray]]:
    """Fit the ensemble of the validation-best variants on val; its logits on each frame."""
    from dhs_gen.stats.metrics import roc_auc
    from training.eval.ensembles import combine_logits, fit_ensemble

    y_val = val["label"].to_numpy()
    val_means = {v: _runs(val, v, s).mean(axis=0) for v, s in ok_seeds.items()}
    aucs = {v: float(roc_auc(y_val, x)) for v, x in val_means.items()}
    members = sorted(aucs, key=lambda v: (-aucs[v], v))[:cfg.ensemble_top_k]
    calib = fit_ensemble({v: val_means[v] for v in members}, y_val)
    out = {k: combine_logits({v: _runs(f, v, ok_seeds[v]).mean(axis=0) for v in members},
                             calib.member_temperatures) / calib.ensemble_temperature
           for k, f in frames.items()}
    return {"members": members, "val_auc": aucs, "calibration": calib.as_dict()}, out


def compare(cfg: AblationConfig, cells: List[dict], pred: pd.DataFrame, grid: Optional[pd.DataFrame]) -> dict:
    """All the statistics of the ablation from the scored rows (pure: no training, no scoring)."""
    from dhs_gen.stats.paired import (
        cut_at_fpr,
        holm_adjust,
        mcnemar_exact,
        paired_region_bootstrap,
        seed_spread,
    )

    st = cfg.stats
    ok_seeds: Dict[str, List[int]] = {}
    for c in cells:
        if c["status"] == "ok":
            ok_seeds.setdefault(c["variant"], []).append(c["seed"])
    if cfg.baseline not in ok_seeds:
        raise ValueError(f"the baseline {cfg.baseline!r} has no finished cell: nothing to compare with")
    test, val = pred[pred["split"] == "test"].reset_index(drop=True), pred[pred["split"] == "val"].reset_index(drop=True)
    y = test["label"].to_numpy()
    regions, resampling = resampling_blocks(test, st)
    scores = {v: _runs(test, v, s) for v, s in ok_seeds.items()}
    ensemble = None
    frames = {"test": test, **({"grid": grid} if grid is not None else {})}
    if cfg.ensemble_top_k and len(ok_seeds) >= 2:
        ensemble, ens_logits = _ensemble_logits(cfg, ok_seeds, val, frames)
        scores[ENSEMBLE] = ens_logits["test"][None, :]
    rows = {v: {"variant": v, "n_seeds": int(s.shape[0]), **seed_spread(y, s, st.fprs)} for v, s in scores.items()}
    diffs = paired_region_bootstrap(y, scores, regions, cfg.baseline, fprs=st.fprs, n_boot=st.n_boot, seed=st.seed)
    primary = [d for d in diffs if d.metric == st.primary_metric and d.variant != ENSEMBLE]
    holm = holm_adjust([d.p_value for d in primary], st.alpha) if primary else {"adjusted": [], "reject": []}
    holm_of = {d.variant: (a, r) for d, a, r in zip(primary, holm["adjusted"], holm["reject"])}
    differences = []
    for d in diffs:
        rec = d.as_dict()
        if d.metric == st.primary_metric and d.variant in holm_of:
            rec["p_holm"], rec["significant_after_holm"] = holm_of[d.variant]
        differences.append(rec)
    y_val = val["label"].to_numpy().astype(bool)
    fpr0 = st.fprs[0]
    mcnemar = []
    for v, seeds in ok_seeds.items():
        if v == cfg.baseline:
            continue
        for s in sorted(set(seeds) & set(ok_seeds[cfg.baseline])):
            det = {}
            for name in (f"{v}/seed{s}", f"{cfg.baseline}/seed{s}"):
                cut = cut_at_fpr(val.loc[~y_val, f"logit__{name}"].to_numpy(), fpr0)
                det[name] = test.loc[y.astype(bool), f"logit__{name}"].to_numpy() > cut
            mcnemar.append({"variant": v, "seed": s, "fpr": fpr0, "cut_fitted_on": "val",
                            **mcnemar_exact(det[f"{v}/seed{s}"], det[f"{cfg.baseline}/seed{s}"])})
    out = {"n_test": int(y.size), "n_test_positives": int(y.sum()), "resampling": resampling,
           "variants": list(rows.values()), "differences": differences, "mcnemar": mcnemar,
           "ensemble": ensemble, "cells": cells,
           "tpr_definition": "fraction of test positives above the cut that leaves <= FPR of the test negatives above it"}
    if grid is not None:
        grid_scores = {v: _runs(grid, v, s) for v, s in ok_seeds.items()}
        if ensemble is not None:
            grid_scores[ENSEMBLE] = ens_logits["grid"][None, :]
        out["completeness"] = completeness_curves(cfg, grid, grid_scores)
        out["selection_grid"] = grid.attrs.get("grid", {})
    return out


def completeness_curves(cfg: AblationConfig, grid: pd.DataFrame, scores: Dict[str, np.ndarray]) -> List[dict]:
    """C(theta_E) per variant (seed mean) at the first FPR, and ΔC to the baseline with intervals."""
    from dhs_gen.stats.paired import paired_region_bootstrap, seed_spread

    st = cfg.stats
    fpr = st.fprs[0]
    metric = f"tpr@{fpr:g}"
    regions_all, resampling = resampling_blocks(grid, st)
    neg = grid["label"].to_numpy() == 0
    theta = grid["theta_e_arcsec"].to_numpy()
    edges = cfg.selection.theta_e_edges
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        rows = neg | ((theta >= lo) & (theta < hi))
        n_pos = int((rows & ~neg).sum())
        record = {"theta_e_lo": lo, "theta_e_hi": hi, "n_injections": n_pos, "n_negatives": int(neg.sum()),
                  "fpr": fpr, "resampling": resampling, "completeness": {}, "delta": {}}
        if n_pos == 0:
            out.append(record)
            continue
        y = (~neg[rows]).astype(int)
        sub = {v: s[:, rows] for v, s in scores.items()}
        for v, s in sub.items():
            record["completeness"][v] = seed_spread(y, s, (fpr,))[metric]
        try:
            diffs = paired_region_bootstrap(y, sub, regions_all[rows], cfg.baseline, fprs=(fpr,),
                                            n_boot=st.n_boot, seed=st.seed)
        except ValueError as exc:  # e.g. a bin whose rows fall in one region
            record["delta_error"] = str(exc)
            diffs = []
        record["delta"] = {d.variant: d.as_dict() for d in diffs if d.metric == metric}
        out.append(record)
    return out


# ------------------------------------------------------------------------------------ outputs
def table(result: dict, cfg: AblationConfig) -> pd.DataFrame:
    """One row per variant: mean +- seed spread of each metric, and Δ to the baseline with its interval."""
    metrics = ["auc", *[f"tpr@{f:g}" for f in cfg.stats.fprs]]
    diff = {(d["variant"], d["metric"]): d for d in result["differences"]}
    rows = []
    for v in result["variants"]:
        row = {"variant": v["variant"], "n_seeds": v["n_seeds"]}
        for m in metrics:
            row[f"{m}_mean"], row[f"{m}_seed_std"] = v[m]["mean"], v[m]["std"]
            d = diff.get((v["variant"], m))
            if d:
                row[f"{m}_delta"], row[f"{m}_delta_lo"], row[f"{m}_delta_hi"] = d["estimate"], d["lo"], d["hi"]
                row[f"{m}_p"] = d["p_value"]
                if "p_holm" in d:
                    row[f"{m}_p_holm"], row[f"{m}_significant"] = d["p_holm"], d["significant_after_holm"]
        rows.append(row)
    return pd.DataFrame(rows)


def _save(fig, stem: str) -> List[str]:
    """Write ``fig`` as ``stem``.png and ``stem``.pdf (for papers), close it, return both paths."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    paths = [f"{stem}.{ext}" for ext in ("png", "pdf")]
    for path in paths:
        fig.savefig(path, dpi=120)
    plt.close(fig)
    return paths


def figures(result: dict, cfg: AblationConfig, out_dir: str) -> List[str]:
    """Δ-metric forest plot and overlaid C(theta_E) curves; PNG and PDF each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dhs_gen.storage import join_uri

    written = []
    diffs = result["differences"]
    metrics = sorted({d["metric"] for d in diffs})
    if diffs:
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 0.6 + 0.45 * len(diffs) / len(metrics)),
                                 squeeze=False)
        for ax, m in zip(axes[0], metrics):
            ds = [d for d in diffs if d["metric"] == m]
            ys = np.arange(len(ds))
            ax.errorbar([d["estimate"] for d in ds], ys,
                        xerr=[[d["estimate"] - d["lo"] for d in ds], [d["hi"] - d["estimate"] for d in ds]],
                        fmt="o", color="k", capsize=3)
            ax.axvline(0, color="0.6", lw=1)
            ax.set_yticks(ys, [d["variant"] + (" *" if d.get("significant_after_holm") else "") for d in ds])
            ax.set_xlabel(f"Δ {m} vs {cfg.baseline}")
        fig.suptitle(f"Variant minus baseline, 95% paired bootstrap intervals (* = survives Holm at "
                     f"α={cfg.stats.alpha:g})", fontsize=9)
        written += _save(fig, join_uri(out_dir, "ablation_differences"))
    curves = result.get("completeness")
    if curves:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        centres = [(c["theta_e_lo"] + c["theta_e_hi"]) / 2 for c in curves]
        for v in result["variants"]:
            name = v["variant"]
            ys = [c["completeness"].get(name, {}).get("mean", np.nan) for c in curves]
            sd = [c["completeness"].get(name, {}).get("std", np.nan) for c in curves]
            ax.errorbar(centres, ys, yerr=sd, marker="o", capsize=2, label=f"{name} (±seed sd)")
        ax.set_xlabel("θ_E [arcsec]")
        ax.set_ylabel(f"completeness at FPR {curves[0]['fpr']:g}")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
        ax.set_title("Selection grid: C(θ_E) per variant (mean over seeds)", fontsize=9)
        written += _save(fig, join_uri(out_dir, "ablation_completeness"))
    return written


def run_ablation(cfg: AblationConfig) -> dict:
    """Train the missing cells, score, compare, write outputs; returns the summary."""
    from dhs_gen.storage import join_uri, write_json, write_text

    variants = {v.name: v for v in cfg.variants}
    cells = [run_cell(cfg, variants[v], s) for v in variants for s in cfg.seeds]
    failed = [c for c in cells if c["status"] != "ok"]
    ok = [c for c in cells if c["status"] == "ok"]
    if not ok:
        raise RuntimeError(f"every ablation cell failed; first error: {failed[0].get('error', '')[:500]}")
    models = _load_models(ok)
    pred = score_test_and_val(cfg, models)
    grid = score_grid(cfg.selection, models) if cfg.selection else None
    result = compare(cfg, cells, pred, grid)
    result.update(name=cfg.name, baseline=cfg.baseline, failed_cells=[f"{c['variant']}/seed{c['seed']}" for c in failed],
                  config=cfg.model_dump())
    tab = table(result, cfg)
    write_text(join_uri(cfg.out_dir, "ablation_table.csv"), tab.to_csv(index=False))
    result["figures"] = figures(result, cfg, cfg.out_dir)
    result["table"] = tab.to_dict(orient="records")
    write_json(join_uri(cfg.out_dir, "ablation.json"), result)
    result["status"] = "ok" if not failed else "partial"
    return result


def main(argv=None) -> int:
    from dhs_gen.config import load_config

    parser = argparse.ArgumentParser(prog="dhs ablate", description=plain_text(__doc__))
    parser.add_argument("--config", required=True, help="ablation YAML (configs/ablation.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    cfg = load_config(AblationConfig, args.config, args.overrides)
    result = run_ablation(cfg)
    print(f"[ablate] {len(result['cells'])} cells, failed: {result['failed_cells'] or 'none'}; "
          f"results in {cfg.out_dir}/ablation.json")
    return 0 if not result["failed_cells"] else 1


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main, prog="dhs ablate"))
