"""``make demo`` stage ``selection_function``: score the demo's grid injection set and held-out
negatives with the frozen model(s), then run the selection function (configs/selection_demo.yaml).

Inputs come from the upstream stage summaries (``<demo>/injection/summary.json``: ``grid_stamps``
or ``stamps``; ``training``: ``frozen``; ``catalogue``: ``negative_cutouts``), else from the
config's paths relative to the demo root; a missing input gives status "skipped" naming it.
"""
from __future__ import annotations

# ruff: noqa: UP045  (pydantic on Python 3.9 needs Optional[...], not X | None)
from pathlib import Path
from typing import List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dhs_gen.config import StrictModel, load_config
from dhs_gen.resources import config_path
from dhs_gen.selection.config import SelectionConfig
from dhs_gen.selection.real_lenses import PACKAGED
from dhs_gen.storage import exists, join_uri, read_parquet, write_parquet

DEMO_CONFIG = config_path("selection_demo.yaml")


class DemoSelectionConfig(StrictModel):
    frozen_models: List[str] = ["training/frozen_model"]
    injections: str = "injection/grid_stamps"
    negative_cutouts: str = "catalogue/negative_cutouts"
    negative_split: Optional[str] = "test"
    # the REAL lens set of the realism probe: "packaged" (six real DR10 candidate cutouts) or a folder /
    # cutout table relative to the demo root (dhs_gen.selection.real_lenses); never the mock's painted lenses
    real_lens_cutouts: str = PACKAGED
    selection: SelectionConfig = SelectionConfig()


def score_with(model_paths: List[str], table: pa.Table, id_column: str, stamp_column: str) -> pa.Table:
    """Scores of every row by each frozen model separately (one model_id each: ensemble spread).

    Uncalibrated (T = 1): the FPR cut is set on the logit, which any temperature leaves in order.
    """
    from training.eval.scoring import load_scorer

    return pa.concat_tables([load_scorer([p], temperature=1.0).score_table(
        table, id_column=id_column, stamp_column=stamp_column) for p in model_paths])


def model_input_size(model_paths: List[str]) -> int | None:
    """The input side [px] the frozen models were trained on (``model.json`` input_size_pix);
    None for bundles that do not record it. Models with different sizes are refused."""
    from dhs_gen.model_bundle import read_record

    sizes = {read_record(p).get("input_size_pix") for p in model_paths}
    if len(sizes) > 1:
        raise ValueError(f"frozen models {model_paths} take different input sizes {sorted(map(str, sizes))}")
    return sizes.pop()


def crop_to_model_input(table: pa.Table, column: str, size: int | None) -> tuple[pa.Table, dict]:
    """Cutouts cut to the model's input side ``size`` [px] by the survey's centre-crop rule
    (:func:`dhs_gen.io.stamps.centre_crop_origin`, the rule phase-4c stamps and ``dhs
    score-cutouts`` use), re-encoded as canonical blobs, so negatives are scored exactly like the
    stamps they are compared with. A blob that cannot be decoded, or is smaller than the crop, is
    left as it is (the scorer gives it its status). Returns the table and the crops applied
    (e.g. ``{"101x101->64x64@(18,18)": 1200}``)."""
    from collections import Counter

    from dhs_gen.io.stamps import StampDecodeError, centre_crop_origin, decode_stamp_npz, encode_stamp

    if size is None:
        return table, {}
    crops, out = Counter(), []
    for blob in table.column(column).to_pylist():
        try:
            img = decode_stamp_npz(blob, nan_policy="report").image if blob else None
        except StampDecodeError:
            img = None
        if img is None or img.shape[1] < size or img.shape[2] < size or img.shape[1:] == (size, size):
            out.append(blob)
            continue
        r0, c0 = centre_crop_origin(img.shape[1], img.shape[2], size)
        out.append(encode_stamp(np.ascontiguousarray(img[:, r0:r0 + size, c0:c0 + size])))
        crops[f"{img.shape[1]}x{img.shape[2]}->{size}x{size}@({r0},{c0})"] += 1
    return table.set_column(table.schema.get_field_index(column), column, pa.array(out, pa.binary())), dict(crops)


def _stage_summary(base: str, stage: str) -> dict:
    from dhs_gen.storage import read_json

    uri = join_uri(base, stage, "summary.json")
    return read_json(uri) if exists(uri) else {}


def _seen_in_training(models: list) -> pa.Array:
    """Every galaxy id the frozen models trained on: trained row ids and trained host ids."""
    from dhs_gen.model_bundle import read_training_ids

    seen = set()
    for path in models:
        ids = read_training_ids(path)
        seen |= ids.trained_ids | ids.trained_host_ids
    return pa.array(sorted(seen), pa.string())


def run_demo_stage(root: str, force: bool = False) -> dict:
    """Run the stage under ``root`` (build/demo/selection_function); returns its JSON summary."""
    from dhs.selection_function import run_selection
    from dhs_gen.selection.completeness import reported_interval
    from training.export import load_frozen_model

    demo = load_config(DemoSelectionConfig, str(DEMO_CONFIG))
    base = str(Path(root).parent)
    upstream = {name: _stage_summary(base, name) for name in ("injection", "training", "catalogue")}
    rel = {"injections": upstream["injection"].get("grid_stamps") or upstream["injection"].get("stamps")
           or join_uri(base, demo.injections),
           "negative_cutouts": upstream["catalogue"].get("negative_cutouts") or join_uri(base, demo.negative_cutouts)}
    frozen = upstream["training"].get("frozen")
    models = [frozen] if frozen else [join_uri(base, p) for p in demo.frozen_models]
    real = PACKAGED if demo.real_lens_cutouts == PACKAGED else join_uri(base, demo.real_lens_cutouts)
    missing = [u for u in [*rel.values(), *models, *([] if real == PACKAGED else [real])] if not exists(u)]
    if missing:
        return {"status": "skipped", "reason": f"missing inputs {missing}"}
    scores_uri, neg_uri = join_uri(root, "scores_grid.parquet"), join_uri(root, "scores_negatives.parquet")
    if force or not exists(scores_uri):
        inj = read_parquet(rel["injections"], columns=["task_id", "stamp", "status", "cutout_ok"])
        write_parquet(score_with(models, inj, "task_id", "stamp"), scores_uri)
    negative_crops = None  # recorded when the negatives are scored in this run
    if force or not exists(neg_uri):
        neg = read_parquet(rel["negative_cutouts"])
        if demo.negative_split and "split" in neg.column_names:
            neg = neg.filter(pc.equal(neg["split"], demo.negative_split))
        # a negative the model saw in training (a training row or an injection host: the mock's LRG
        # hosts are catalogue galaxies too) may not set its cut; n_negatives in the summary: those that do
        neg = neg.filter(pc.invert(pc.is_in(neg["galaxy_id"], value_set=_seen_in_training(models))))
        neg, negative_crops = crop_to_model_input(neg, "cutout", model_input_size(models))
        scored = score_with(models, neg.select([c for c in ("galaxy_id", "cutout", "status", "cutout_ok")
                                                if c in neg.column_names]), "galaxy_id", "cutout")
        if {"ra", "dec"} <= set(neg.column_names):  # positions: the bootstrap resamples negatives by region
            where = neg.select(["galaxy_id", "ra", "dec"]).rename_columns(["id", "ra", "dec"])
            scored = scored.join(where, "id", join_type="left outer")
        write_parquet(scored, neg_uri)
    data = demo.selection.model_dump()
    data.update(injections=rel["injections"], scores=scores_uri, negative_scores=neg_uri,
                output=join_uri(root, "selection"))
    data["provenance"]["models"] = [{"model_id": load_frozen_model(p).model_id, "frozen_model": p} for p in models]
    data["realism"].update(real_cutouts=real, frozen_model=models[0])
    cfg = SelectionConfig.model_validate(data)
    summary = run_selection(cfg)
    at = {}
    comp = read_parquet(join_uri(cfg.output, "completeness.parquet")).to_pandas()
    one_d = comp[(comp.axis == "theta_e_arcsec") & (comp.subset == "all") & (comp.threshold_kind == "fpr")
                 & (comp.threshold_value == max(cfg.fprs))]
    for theta in (1.0, 1.5, 2.0):
        row = one_d[[lo[0] <= theta < hi[0] for lo, hi in zip(one_d.bin_lo, one_d.bin_hi)]]
        if len(row):
            r = row.iloc[0]
            (lo,), (hi,) = reported_interval([r.ci_lo], [r.ci_hi], [r.boot_lo], [r.boot_hi], [r.n_regions])
            # ci_*: Wilson (given the cut); interval_*: with the cut's uncertainty (what to quote)
            at[f"{theta:g}"] = {"model_id": r.model_id, "completeness": r.completeness, "ci_lo": r.ci_lo,
                                "ci_hi": r.ci_hi, "interval_lo": float(lo), "interval_hi": float(hi),
                                "n": int(r.n)}
    n_negatives = read_parquet(neg_uri, columns=["id"]).num_rows
    return {"status": "ok", "output": cfg.output, "figures": summary.get("figures", []),
            "negative_crops": negative_crops,
            "n_negatives": n_negatives,
            "completeness_at_theta_e": at, "fpr": max(cfg.fprs), "realism": summary["realism"],
            "real_lens_set": summary["realism"].get("real_set"),
            "slacs": summary["observability"], "n_injections": summary["n_injections"]}
