"""``dhs score-cutouts``: score your own g, r, z cutouts (FITS / npz files or folders) with a frozen model.

    dhs score-cutouts my_cutouts/ J0123+0456.fits --model RUN/frozen \\
        --calibration RUN/eval/calibration.json --output scores.csv

One row per file, failures included (never dropped): ``id`` (file name without suffix; relative
path under a folder), ``file``, ``logit`` (the model's, before calibration), ``p`` (calibrated
probability sigmoid(logit / T)), ``status`` and ``message``, ``crop`` (the centre-crop rule
applied, "" when the cutout already had the model's size), ``height``/``width`` [px] as read,
``pixel_scale_arcsec`` (as the file states it), ``ra``/``dec`` [deg] (when the file states them),
``model_id``; with ``--prevalence`` also ``p_at_prevalence``.

``p`` is calibrated to the class balance of the validation split the temperature was fitted on
(paired injections: one lens per non-lens, prevalence 0.5), not to the sky: at a survey prevalence
pi ~ 1e-3..1e-4 the same p means far lower odds; ``--prevalence pi`` adds p moved to pi by Bayes'
rule. Cutouts must match the model's recorded input (``model.json``: ``input_size_pix``,
``pixel_scale_arcsec``); larger ones are centre-cropped by the survey rule and the crop recorded
(``--on-size-mismatch refuse`` refuses them instead); see :mod:`training.eval.cutout_input`.

Python: ``from dhs.score_cutouts import score_cutouts; table = score_cutouts(["my_cutouts/"], "RUN/frozen")``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

import numpy as np
import pyarrow as pa

from dhs_gen.entrypoint import plain_text
from dhs_gen.log import get_logger

log = get_logger(__name__)

CALIBRATION_FILE = "calibration.json"
UNITS = {"logit": "natural-log odds before calibration", "p": "probability at the calibration prevalence",
         "p_at_prevalence": "probability at the given survey prevalence", "height": "pix", "width": "pix",
         "pixel_scale_arcsec": "arcsec/pix", "ra": "deg", "dec": "deg"}


def find_calibration(model: str) -> str | None:
    """``calibration.json`` of the run a frozen model came from (``<run>/eval/``), if present."""
    path = os.path.join(os.path.dirname(os.path.abspath(model.rstrip("/"))), "eval", CALIBRATION_FILE)
    return path if os.path.isfile(path) else None


def _meta_float(meta: dict, *keys: str) -> float | None:
    for key in keys:
        try:
            value = float(meta[key])
        except (KeyError, TypeError, ValueError):
            continue
        if np.isfinite(value):
            return value
    return None


def score_cutouts(inputs: Sequence[str], model: str, *, calibration: str | dict | None = None,
                  temperature: float | None = None, on_size_mismatch: str = "crop", input_size: int | None = None,
                  prevalence: float | None = None, batch_size: int = 256, device: str = "cpu") -> pa.Table:
    """Score cutout files/folders ``inputs`` with the frozen model at ``model``; returns the table above.

    ``calibration``: a ``calibration.json`` path or dict (default: ``<run>/eval/calibration.json``
    beside the model, when present); ``temperature``: an explicit T instead (1.0 = uncalibrated).
    ``input_size``: the model's input side [px] for bundles that do not record it. Raises
    ValueError for unusable arguments (no cutouts, no calibration, a model without an input size);
    every per-file problem becomes a row status instead.
    """
    from dhs_gen.storage import read_json
    from training.eval.calibration import p_at_prevalence
    from training.eval.cutout_input import list_cutouts, model_input, read_cutout
    from training.eval.scoring import load_scorer

    if prevalence is not None and not 0.0 < prevalence < 1.0:
        raise ValueError(f"prevalence must be in (0, 1), got {prevalence}")
    source = "temperature"
    if temperature is None:
        if calibration is None:
            calibration = find_calibration(model)
            if calibration is None:
                raise ValueError(f"no calibration for {model}: give --calibration RUN/eval/{CALIBRATION_FILE} "
                                 "(written by dhs evaluate) or --temperature 1 for uncalibrated scores")
        source = calibration if isinstance(calibration, str) else "dict"
        calibration = read_json(calibration) if isinstance(calibration, str) else calibration
    scorer = load_scorer([model], calibration=calibration, temperature=temperature, device=device,
                         batch_size=batch_size)
    record = scorer.members[0].record
    spec = model_input(record, input_size)
    files = list_cutouts(inputs)
    if not files:
        raise ValueError(f"no cutout files (.fits, .fits.gz, .fits.fz, .fit, .npz, .npz.gz) in {list(inputs)}")
    calibrated_prevalence = float((calibration or {}).get("prevalence", 0.5))
    rows, logits = [], np.full(len(files), np.nan)
    batch, where = [], []

    def flush():
        if batch:
            meta = None
            if scorer.meta_columns:
                meta = np.array([[rows[i]["meta"][c] for c in scorer.meta_columns] for i in where], np.float32)
            logits[where] = scorer.logits(np.stack(batch), meta)
            batch.clear()
            where.clear()

    for i, (cid, path) in enumerate(files):
        image, row = read_cutout(path, spec, on_size_mismatch)
        row.update(id=cid, file=path)
        lacking = [c for c in scorer.meta_columns if _meta_float(row["meta"], c) is None]
        if image is not None and lacking:
            row.update(status="missing_metadata", message=f"the model also takes {lacking}; the file lacks them")
            image = None
        rows.append(row)
        if image is not None:
            batch.append(image)
            where.append(i)
            if len(batch) >= batch_size:
                flush()
    flush()
    ok = np.isfinite(logits)
    p = np.where(ok, scorer.proba(np.nan_to_num(logits)), np.nan)
    columns = {
        "id": pa.array([r["id"] for r in rows], pa.string()),
        "file": pa.array([r["file"] for r in rows], pa.string()),
        "logit": pa.array(logits, pa.float64()),
        "p": pa.array(p, pa.float64()),
    }
    if prevalence is not None:
        columns["p_at_prevalence"] = pa.array(np.where(ok, p_at_prevalence(np.nan_to_num(p), prevalence,
                                                                          calibrated_prevalence), np.nan))
    columns.update({
        "status": pa.array([r["status"] for r in rows], pa.string()),
        "message": pa.array([r["message"] for r in rows], pa.string()),
        "crop": pa.array([r["crop"] for r in rows], pa.string()),
        "height": pa.array([r["height"] for r in rows], pa.int32()),
        "width": pa.array([r["width"] for r in rows], pa.int32()),
        "pixel_scale_arcsec": pa.array([r["pixel_scale_arcsec"] for r in rows], pa.float64()),
        "ra": pa.array([_meta_float(r["meta"], "ra", "meta_ra") for r in rows], pa.float64()),
        "dec": pa.array([_meta_float(r["meta"], "dec", "meta_dec") for r in rows], pa.float64()),
        "model_id": pa.array([scorer.model_id] * len(rows), pa.string()),
    })
    fields = [pa.field(name, col.type, metadata={"unit": UNITS[name]} if name in UNITS else None)
              for name, col in columns.items()]
    about = {"model_id": scorer.model_id, "model": model, "calibration": source, "temperature": scorer.temperature,
             "calibrated_prevalence": calibrated_prevalence, "survey_prevalence": prevalence,
             "input_size_pix": spec.size_pix, "input_size_from": spec.source,
             "pixel_scale_arcsec": spec.pixel_scale_arcsec, "on_size_mismatch": on_size_mismatch,
             "crop_rule": "input pixel (H//2, W//2) -> crop pixel (S//2, S//2)"}
    schema = pa.schema(fields, metadata={"dhs.score_cutouts": json.dumps(about, sort_keys=True)})
    return pa.table(list(columns.values()), schema=schema)


def write_table(table: pa.Table, output: str) -> None:
    """Write the table as Parquet (``.parquet``) or CSV (``.csv``), atomically."""
    from dhs_gen.storage import write_parquet, write_text

    if output.endswith(".parquet"):
        write_parquet(table, output)
    elif output.endswith(".csv"):
        write_text(output, table.to_pandas().to_csv(index=False))
    else:
        raise ValueError(f"--output must end in .parquet or .csv, got {output!r}")


def summary(table: pa.Table) -> str:
    """One line: how many were scored, cropped and refused (by status)."""
    status = table.column("status").to_pylist()
    crops = sorted({c.split("@")[0] for c in table.column("crop").to_pylist() if c})
    failed = {s: status.count(s) for s in sorted(set(status)) if s != "ok"}
    return (f"scored {status.count('ok')} of {len(status)} cutouts"
            + (f"; centre-cropped {', '.join(crops)}" if crops else "")
            + (f"; not scored: {failed}" if failed else ""))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="dhs score-cutouts", description=plain_text(__doc__))
    parser.add_argument("inputs", nargs="*", metavar="CUTOUT", help="cutout files (FITS / npz) or folders of them")
    parser.add_argument("--input", action="append", default=[], help="another cutout file or folder (repeatable)")
    parser.add_argument("--model", required=True, help="frozen model directory (RUN/frozen)")
    parser.add_argument("--calibration", help=f"calibration.json from dhs evaluate (default RUN/eval/{CALIBRATION_FILE})")
    parser.add_argument("--temperature", type=float, help="explicit temperature instead (1 = uncalibrated)")
    parser.add_argument("--output", help="table to write: .parquet or .csv (default: CSV on stdout)")
    parser.add_argument("--on-size-mismatch", choices=("crop", "refuse"), default="crop",
                        help="cutouts larger than the model input: centre-crop (recorded per row) or refuse")
    parser.add_argument("--input-size", type=int, help="model input side [px], for bundles that do not record it")
    parser.add_argument("--prevalence", type=float, help="survey lens prevalence: adds p_at_prevalence")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    inputs = [*args.inputs, *args.input]
    if not inputs:
        parser.error("give cutout files or folders")
    if args.calibration and args.temperature is not None:
        parser.error("give --calibration or --temperature, not both")
    table = score_cutouts(inputs, args.model, calibration=args.calibration, temperature=args.temperature,
                          on_size_mismatch=args.on_size_mismatch, input_size=args.input_size,
                          prevalence=args.prevalence, batch_size=args.batch_size, device=args.device)
    if args.output:
        write_table(table, args.output)
    else:
        sys.stdout.write(table.to_pandas().to_csv(index=False))
    print(f"dhs score-cutouts: {summary(table)}" + (f"; wrote {args.output}" if args.output else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main, prog="dhs score-cutouts"))
