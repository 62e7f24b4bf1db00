"""``dhs evaluate --run-dir RUN``: metrics, shortcut gates, calibration, ensembles and figures.

Reads a training run directory (``_resolved_config.yaml`` for the shards and mode, ``frozen/``
for the model, ``metrics.csv`` for the curves), scores the validation and test splits of the
shards (positives, controls and hard negatives in paired mode; labelled stamps in plain mode),
fits the temperature on validation, and writes to ``<run>/eval`` (or ``--out-dir``):

* ``evaluation.json`` - every number (metrics with CIs, tiers, confusers, strata, gates, anchors);
* ``calibration.json`` - the temperature for ``dhs score`` (``ensemble_calibration.json`` too
  when ``--member`` models are given);
* ``predictions.parquet`` - one row per scored stamp (id, split, kind, label, logit, p, metadata);
* ``figures/eval_*.png`` (and ``.pdf``); ``evaluation.json`` lists each with a caption.
"""
from __future__ import annotations

import argparse
import sys
from typing import Dict, List, Literal, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from dhs_gen.config import StrictModel
from dhs_gen.entrypoint import add_flag, plain_text
from dhs_gen.log import get_logger
from training.eval.anchors import AnchorConfig
from training.eval.gates import GateConfig
from training.eval.report import ReportConfig

log = get_logger(__name__)

META_COLUMNS = ("tier", "confuser_category", "psfsize_r", "psfdepth_r_mag5", "nobs_z_bin", "healpix_128", "ra",
                "dec", "theta_e_arcsec", "x_ratio", "psf_fwhm_used_r", "type")
PAIRED_VIEWS = (("stamp", "pos", 1), ("ctrl_stamp", "ctrl", 0), ("hardneg_stamp", "hardneg", 0))
VIEW_OF_KIND = {"pos": "stamp", "ctrl": "ctrl_stamp", "hardneg": "hardneg_stamp", "plain": "stamp"}


class EvaluateConfig(StrictModel):
    """configs/eval.yaml: what ``dhs evaluate`` scores and reports."""

    run_dir: str = ""
    out_dir: Optional[str] = None  # noqa: UP045 (pydantic on py3.9)
    model: Optional[str] = Field(None, description="frozen model dir; default <run_dir>/frozen")  # noqa: UP045
    members: List[str] = Field(default_factory=list, description="more frozen models: ensemble with the model")
    shards: Optional[str] = Field(None, description="shard index; default the run's data.shards")  # noqa: UP045
    mode: Optional[Literal["paired", "plain"]] = Field(None, description="default the run's data.mode")  # noqa: UP045
    max_rows_per_split: int = Field(5000, ge=10, description="rows scored per split (fixed hash order)")
    batch_size: int = Field(256, ge=1)
    device: Literal["cpu", "cuda"] = "cpu"
    seed: int = 0
    report: ReportConfig = Field(default_factory=ReportConfig)
    gates: GateConfig = Field(default_factory=GateConfig)
    gate_max_pairs: int = Field(1000, ge=10)
    n_gallery: int = Field(24, ge=0)
    n_six_channel: int = Field(4, ge=0)
    anchors: AnchorConfig = Field(default_factory=AnchorConfig)


# ------------------------------------------------------------------------------------ inputs
def _run_config(run_dir: str) -> dict:
    from dhs_gen.config import read_yaml
    from dhs_gen.storage import exists, join_uri

    path = join_uri(run_dir, "_resolved_config.yaml")
    return read_yaml(path) if exists(path) else {}


def _sample_rows(store, split: str, n_max: int, seed: int) -> np.ndarray:
    """Up to ``n_max`` rows of a split in a fixed hash order of their ids (sorted row numbers)."""
    from dhs_gen.determinism import stable_hash64_many
    from training.data.loader import split_rows

    rows = split_rows(store, split)
    if len(rows) > n_max:
        ids = store.column("id")[rows]
        rows = rows[np.argsort(stable_hash64_many(seed, ids.tolist()), kind="stable")[:n_max]]
    return np.sort(rows)


def images_for(store, frame: pd.DataFrame) -> np.ndarray:
    """The stamps of prediction rows (by ``kind`` and shard ``row``), in the frame's order."""
    out = np.empty((len(frame), *store.shape), np.float32)
    kinds, rows = frame["kind"].to_numpy(), frame["row"].to_numpy()
    for kind in np.unique(kinds):
        sel = kinds == kind
        out[sel] = store.gather(VIEW_OF_KIND[kind], rows[sel])
    return out


def _meta_array(store, rows: np.ndarray, columns) -> np.ndarray | None:
    if not columns:
        return None
    return np.stack([store.column(c)[rows].astype(np.float32) for c in columns], axis=1)


def _logits(model, store, view: str, rows: np.ndarray, meta_columns, chunk: int = 2048) -> np.ndarray:
    out = []
    for start in range(0, len(rows), chunk):
        sel = rows[start:start + chunk]
        out.append(np.asarray(model.predict_logits(store.gather(view, sel), _meta_array(store, sel, meta_columns)),
                              dtype=np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def score_splits(models: Dict[str, object], store, mode: str, splits, n_max: int, seed: int,
                 meta_columns) -> pd.DataFrame:
    """Predictions of every model (column ``logit`` = first model, ``logit__<name>`` = others)."""
    plan = [v for v in PAIRED_VIEWS if v[0] in store.views] if mode == "paired" else [("stamp", "plain", None)]
    if mode == "paired" and not {"stamp", "ctrl_stamp"} <= set(store.views):
        raise ValueError(f"paired evaluation needs stamp and ctrl_stamp views; shards have {store.views}")
    frames = []
    names = list(models)
    for split in splits:
        rows = _sample_rows(store, split, n_max, seed)
        base = {"row": rows, "id": store.column("id")[rows], "split": split}
        for c in META_COLUMNS:
            if c in store.meta.column_names:
                base[c] = store.column(c)[rows]
        for view, kind, label in plan:
            frame = pd.DataFrame(base)
            frame["kind"] = kind
            frame["label"] = store.column("label")[rows].astype(int) if label is None else label
            for i, name in enumerate(names):
                col = "logit" if i == 0 else f"logit__{name}"
                frame[col] = _logits(models[name], store, view, rows, meta_columns)
            frames.append(frame)
            log.info("scored %d %s %s stamps", len(rows), split, kind)
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------------ stages
def _gates(cfg: EvaluateConfig, store, mode: str, model, temperature: float, meta_columns) -> dict:
    from training.eval.calibration import calibrated_proba
    from training.eval.gates import run_paired_pixel_probes, run_pixel_probes, run_shortcut_gates

    rows = _sample_rows(store, cfg.report.test_split, cfg.gate_max_pairs, cfg.seed + 1)
    out = {}
    if mode == "paired":
        pos, ctrl = store.gather("stamp", rows), store.gather("ctrl_stamp", rows)
        hn = store.gather("hardneg_stamp", rows) if "hardneg_stamp" in store.views else None
        fwhm_col = next((c for c in ("psf_fwhm_used_r", "psfsize_r") if c in store.meta.column_names), None)
        if "theta_e_arcsec" not in store.meta.column_names or fwhm_col is None:
            raise ValueError("shortcut gates need theta_e_arcsec and psf_fwhm_used_r/psfsize_r in the shard metadata")
        meta = _meta_array(store, rows, meta_columns)

        def score_fn(images, idx):
            return calibrated_proba(model.predict_logits(images, None if meta is None else meta[idx]), temperature)

        out["shortcut_gates"] = run_shortcut_gates(pos, ctrl, store.column("theta_e_arcsec")[rows],
                                                store.column(fwhm_col)[rows], hardneg_images=hn,
                                                score_fn=score_fn, config=cfg.gates)
        out["pixel_probes"] = run_paired_pixel_probes(pos, ctrl, store.column("theta_e_arcsec")[rows],
                                                  store.column(fwhm_col)[rows], config=cfg.gates)
    else:
        out["pixel_probes"] = run_pixel_probes(store.gather("stamp", rows), store.column("label")[rows],
                                           config=cfg.gates)
    return out


def _ensemble(pred: pd.DataFrame, names: List[str], ids: Dict[str, str], cfg: EvaluateConfig, regions) -> dict:
    from training.eval.ensembles import compare_ensemble, fit_ensemble
    from training.eval.report import split_frame

    val = split_frame(pred, cfg.report.val_split)
    test = split_frame(pred, cfg.report.test_split)

    def logits(frame):
        return {ids[n]: frame["logit" if i == 0 else f"logit__{n}"].to_numpy() for i, n in enumerate(names)}

    calib = fit_ensemble(logits(val), val["label"].to_numpy())
    result = compare_ensemble(logits(test), test["label"].to_numpy(), calib, n_boot=max(cfg.report.n_boot, 1),
                              seed=cfg.seed, regions=regions(test))
    file = {"kind": "ensemble", "member_temperatures": calib.member_temperatures,
            "ensemble_temperature": calib.ensemble_temperature, "fitted_on": cfg.report.val_split}
    return {"comparison": result, "calibration_file": file}


def _figures(cfg, out_dir, pred, report, gates, store, run_dir, anchors) -> Dict[str, dict]:
    """Every figure as {key: {"path": PNG (a PDF beside it), "caption": what it shows}}."""
    from dhs_gen.storage import exists, join_uri
    from training.eval import figures as F
    from training.eval.calibration import sigmoid
    from training.eval.report import split_frame

    fig_dir = join_uri(out_dir, "figures")
    out: Dict[str, dict] = {}

    def add(key, path, caption):
        out[key] = {"path": path, "caption": caption}

    vs, ts = cfg.report.val_split, cfg.report.test_split
    val, test = split_frame(pred, vs), split_frame(pred, ts)
    negatives = report["negatives"][ts]
    curves = {vs: (val["label"].to_numpy(), val["p"].to_numpy()),
              ts: (test["label"].to_numpy(), test["p"].to_numpy())}
    if anchors and "_frame" in anchors:
        ok = anchors["_frame"]["p_lens"].notna()
        neg = test[test["label"] == 0]["p"].to_numpy()
        if ok.any():
            ap = anchors["_frame"].loc[ok, "p_lens"].to_numpy()
            curves["anchors vs test negatives"] = (np.r_[np.ones(len(ap)), np.zeros(len(neg))], np.r_[ap, neg])
    ops = report["operating_points"]
    points = [{"fpr": o["test_fpr"]["rate"], "fpr_hi": o["test_fpr"]["hi"], "tpr": o["test_tpr"]["rate"],
               "tpr_lo": o["test_tpr"]["lo"], "tpr_hi": o["test_tpr"]["hi"],
               "label": f"val cut, target FPR {o['target_fpr']:g}" + ("" if o["resolved"] else " (unresolved)")}
              for o in ops]
    add("roc", F.plot_roc(curves, join_uri(fig_dir, "eval_roc.png"), title="ROC (calibrated p)", points=points),
        f"ROC curves of the calibrated score on the {vs} and {ts} splits (negatives: {negatives}); log FPR axis, "
        "FPRs below 1/n of the negatives shaded (no curve resolves them). Black points: the test TPR and FPR "
        f"at the cuts fixed on {vs} (Wilson 95% bars).")
    t = report["temperature"]
    logits = test["logit"].to_numpy()
    add("reliability", F.plot_reliability(test["label"].to_numpy(), {"before (T=1)": sigmoid(logits),
                                          f"after (T={t:.3f})": test["p"].to_numpy()},
                                          join_uri(fig_dir, "eval_reliability.png"), cfg.report.n_bins,
                                          title=f"Reliability, {ts} split"),
        f"Reliability on the {ts} split ({len(test)} stamps, lens fraction {report['prevalence'][ts]:.2f}): observed "
        f"lens fraction against mean p per bin, before and after the temperature fitted on {vs}; bottom: counts. "
        "Calibrated to this class balance, not to the sky's lens prevalence.")
    if "shortcut_gates" in gates:
        sg = gates["shortcut_gates"]
        add("gates", F.plot_gate_strata(sg["gates"], join_uri(fig_dir, "eval_gates.png")),
            f"Shortcut gates on {sg['n_pairs']} {ts} pairs. Left, G1-G3: out-of-fold logistic-regression probes on "
            "pixels (core, radial profile, arc annulus) of positives vs their own controls, per x = θ_E/FWHM "
            "stratum; they test the data and never call the model. Right, G4-G5: the model's mean p on shuffled-"
            f"arc hard negatives and its drop when the arc is occluded. Overall: {sg['overall']}.")
    if report.get("confusers"):
        add("confusers", F.plot_confuser_fpr(report["confusers"], join_uri(fig_dir, "eval_confuser_fpr.png"),
                                             cfg.report.threshold),
            f"{ts} false-positive rate at p >= {cfg.report.threshold:g} per N2 confuser category, Wilson 95% bars.")
    for axis, rows in report.get("strata", {}).items():
        add(f"strata_{axis}", F.plot_strata(rows, "roc_auc", join_uri(fig_dir, f"eval_strata_{axis}.png"),
                                            f"test ROC AUC by {axis}"),
            f"{ts} ROC AUC per {axis} bin (n per bin under each bar; empty where a bin lacks a class).")
    if cfg.n_gallery:
        _galleries(cfg, fig_dir, test, ops, store, negatives, add)
    if cfg.n_six_channel:
        pos = test[test["label"] == 1].head(cfg.n_six_channel)
        add("six_channel", F.plot_six_channel(images_for(store, pos), pos["id"].astype(str).tolist(),
                                              join_uri(fig_dir, "eval_six_channel.png")),
            f"{len(pos)} {ts} positives as the network's 6-channel input: g, r, z in outer-MAD sigma units and their "
            "high-pass residuals.")
    if run_dir and exists(join_uri(run_dir, "metrics.csv")):
        add("training_curves", F.plot_training_curves(join_uri(run_dir, "metrics.csv"),
                                                      join_uri(fig_dir, "eval_training_curves.png")),
            "Training and validation loss (left) and validation metrics (right) per epoch, from metrics.csv.")
    if anchors and len(anchors.get("_images", [])):
        frame = anchors["_frame"][anchors["_frame"]["status"] == "ok"].head(cfg.n_gallery or 24)
        imgs = anchors["_images"][:len(frame)]
        add("anchor_gallery", F.plot_gallery_images(
            list(imgs), [f"{n.split('|')[0][:18]}\np_lens={p:.3f}" for n, p in zip(frame["name"], frame["p_lens"])],
            join_uri(fig_dir, "eval_anchor_gallery.png"), suptitle="known lenses (lenscat) with p_lens"),
            f"{len(frame)} known lenses (lenscat anchors) as the survey shows them, with the model's calibrated p.")
    return out


def _galleries(cfg, fig_dir, test, ops, store, negatives, add) -> None:
    """Top-scored stamps, false positives and missed lenses at the loosest validation cut."""
    from dhs_gen.storage import join_uri
    from training.eval import figures as F

    ts, k = cfg.report.test_split, cfg.n_gallery
    op = ops[0]
    cut = op["cut_p"]
    at = f"at the {op['fitted_on']} cut p >= {cut:.3f} (target FPR {op['target_fpr']:g} on {negatives})"

    def gallery(key, frame, suptitle, caption):
        if frame.empty:
            return
        titles = [f"{i[:14]} y={y}\np_lens={p:.3f}" for i, y, p in zip(frame["id"], frame["label"], frame["p"])]
        add(key, F.plot_gallery_images(list(images_for(store, frame)), titles, join_uri(fig_dir, f"eval_{key}.png"),
                                       suptitle=suptitle), caption)

    top = test.sort_values(["p", "id"], ascending=[False, True]).head(k)
    gallery("gallery_top", top, f"top-scoring {ts} stamps",
            f"The {len(top)} highest-scoring {ts} stamps (y = 1 lens, 0 negative) with calibrated p (Lupton RGB).")
    neg = test[(test["label"] == 0) & (test["p"] >= cut)].sort_values(["p", "id"], ascending=[False, True])
    gallery("gallery_false_positives", neg.head(k), f"false positives {at}",
            f"{ts} negatives scored above the cut, highest p first: {len(neg)} of "
            f"{int((test['label'] == 0).sum())} {at}; {min(len(neg), k)} shown.")
    pos = test[(test["label"] == 1) & (test["p"] < cut)].sort_values(["p", "id"], ascending=[True, True])
    gallery("gallery_missed", pos.head(k), f"missed lenses {at}",
            f"{ts} lenses scored below the cut, lowest p first: {len(pos)} of {int((test['label'] == 1).sum())} "
            f"{at}; {min(len(pos), k)} shown.")


# ------------------------------------------------------------------------------------ driver
def evaluate_run(cfg: EvaluateConfig) -> Dict[str, object]:
    """Run the whole evaluation; returns the evaluation dict (also written as evaluation.json)."""
    from dhs_gen.storage import join_uri, write_json, write_parquet
    from training.data.store import ShardStore
    from training.eval.calibration import calibrated_proba
    from training.eval.report import analyze_predictions, coarse_healpix, split_frame
    from training.export import load_frozen_model

    if not cfg.run_dir and not (cfg.model and cfg.shards):
        raise ValueError("give --run-dir (or both model and shards)")
    run_cfg = _run_config(cfg.run_dir) if cfg.run_dir else {}
    data = run_cfg.get("data", {})
    shards = cfg.shards or data.get("shards")
    mode = cfg.mode or data.get("mode", "paired")
    if not shards:
        raise ValueError(f"no shards: {cfg.run_dir}/_resolved_config.yaml has no data.shards and none was given")
    if mode not in ("paired", "plain"):
        raise ValueError(f"mode must be paired or plain, got {mode!r}")
    out_dir = cfg.out_dir or join_uri(cfg.run_dir, "eval")
    model = load_frozen_model(cfg.model or join_uri(cfg.run_dir, "frozen"), device=cfg.device,
                              batch_size=cfg.batch_size)
    members = {"model": model}
    for i, path in enumerate(cfg.members):
        members[f"member{i + 1}"] = load_frozen_model(path, device=cfg.device, batch_size=cfg.batch_size)
    meta_columns = list(model.record["preprocess"].get("meta_columns", []))
    store = ShardStore(shards)
    splits = (cfg.report.val_split, cfg.report.test_split)

    pred = score_splits(members, store, mode, splits, cfg.max_rows_per_split, cfg.seed, meta_columns)
    for m in members.values():  # evaluation rows must never have been trained on
        m.assert_disjoint(pred["id"].astype(str).unique())
    report = analyze_predictions(pred, cfg.report)
    temperature = report["temperature"]
    result: Dict[str, object] = {"model_id": model.model_id, "run_dir": cfg.run_dir, "shards": shards, "mode": mode,
                                 "data_hash": store.data_hash, "config": cfg.model_dump(mode="json"),
                                 "config_sha256": _config_hash(cfg), "report": report}
    write_json(join_uri(out_dir, "calibration.json"),
               {"kind": "single", "model_id": model.model_id, "temperature": temperature,
                "fitted_on": cfg.report.val_split, "n": int(report["metrics"][cfg.report.val_split]["n"]),
                "prevalence": report["prevalence"][cfg.report.val_split]})
    if len(members) > 1:
        ens = _ensemble(pred, list(members), {n: m.model_id for n, m in members.items()}, cfg,
                        lambda f: coarse_healpix(f, cfg.report.region_nside))
        write_json(join_uri(out_dir, "ensemble_calibration.json"), ens["calibration_file"])
        result["ensemble"] = ens["comparison"]
    result["gates"] = _gates(cfg, store, mode, model, temperature, meta_columns)

    anchors = None
    if cfg.anchors.enabled:
        from training.eval.anchors import masked_fraction, run_anchor_eval

        neg = split_frame(pred, cfg.report.test_split)
        neg = neg[neg["label"] == 0].head(2000)
        neg_meta = pd.DataFrame({c: neg[c].to_numpy(np.float64) if c in neg else np.nan
                                 for c in ("psfsize_r", "psfdepth_r_mag5")})
        neg_meta["mask_frac"] = masked_fraction(images_for(store, neg))

        def proba(images, frame):
            missing = [c for c in meta_columns if c not in frame]
            if missing:
                raise ValueError(f"anchor cutouts lack the model's metadata inputs {missing}")
            meta = frame[meta_columns].to_numpy(np.float32) if meta_columns else None
            return calibrated_proba(model.predict_logits(images, meta), temperature)

        anchors = run_anchor_eval(proba, cfg.anchors, int(store.shape[-1]), neg["p"].to_numpy(), neg_meta)
        result["anchors"] = {k: v for k, v in anchors.items() if not k.startswith("_")}
        write_parquet(_arrow(anchors["_frame"]), join_uri(out_dir, "anchors.parquet"))
    result["figures"] = _figures(cfg, out_dir, pred, report, result["gates"], store, cfg.run_dir, anchors)
    write_parquet(_arrow(pred), join_uri(out_dir, "predictions.parquet"))
    write_json(join_uri(out_dir, "evaluation.json"), result)
    return result


def _config_hash(cfg: EvaluateConfig) -> str:
    """SHA-256 of the canonical JSON of the evaluation config (what the report footer names)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def _arrow(frame: pd.DataFrame):
    import pyarrow as pa

    return pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)


def summary_line(result: dict, cfg: EvaluateConfig) -> dict:
    """The one-line JSON printed at the end."""
    test = result["report"]["metrics"][cfg.report.test_split]
    out = {"model_id": result["model_id"][:16], "test_auc": round(test["roc_auc"], 4),
           "temperature": round(result["report"]["temperature"], 4),
           "ece_after": round(result["report"]["calibration"]["test"]["after"]["ece"], 5)}
    gates = result["gates"].get("shortcut_gates")
    if gates:
        out["gates"] = gates["overall"]
    out["pixel_probes"] = result["gates"]["pixel_probes"]["overall"]
    if "anchors" in result:
        out["anchor_recall"] = {k: round(v["recall"], 3) for k, v in result["anchors"]["recall"].items()}
    return out


def main(argv=None) -> int:
    import json

    from dhs_gen.config import ConfigError, load_config
    from dhs_gen.log import setup_logging

    parser = argparse.ArgumentParser(prog="dhs evaluate", description=plain_text(__doc__))
    parser.add_argument("--run-dir", help="training run directory (holds _resolved_config.yaml, frozen/)")
    parser.add_argument("--config", help="evaluation YAML (configs/eval.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    add_flag(parser, "--output", "--out-dir", dest="out_dir", help="output folder (default <run-dir>/eval)")
    parser.add_argument("--model", help="frozen model dir (default <run-dir>/frozen)")
    parser.add_argument("--member", action="append", default=[], help="another frozen model: ensemble (repeat)")
    parser.add_argument("--log-level", default=None)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        cfg = load_config(EvaluateConfig, args.config, args.overrides)
    except ConfigError as exc:
        print(f"dhs evaluate: {exc}", file=sys.stderr)
        return 2
    update = {k: v for k, v in (("run_dir", args.run_dir), ("out_dir", args.out_dir), ("model", args.model)) if v}
    if args.member:
        update["members"] = list(args.member)
    cfg = cfg.model_copy(update=update)
    try:
        result = evaluate_run(cfg)
    except (ValueError, FileNotFoundError) as exc:
        print(f"dhs evaluate: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary_line(result, cfg), sort_keys=True))
    return 0


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
