"""Writing the selection-function tables (Parquet + JSON) and the headline summary."""
from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.compute as pc

from dhs_gen.selection.binning import OVERALL
from dhs_gen.storage import join_uri, write_json, write_parquet

TABLES = ("completeness", "thresholds", "coverage", "ensemble", "observability", "counts")


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def table_records(table: pa.Table) -> list[dict]:
    """Rows as JSON-able dicts (NaN/inf -> null)."""
    return [_json_safe(r) for r in table.to_pylist()]


def headline(completeness: pa.Table, thresholds: pa.Table) -> list[dict]:
    """Overall completeness per model, subset and threshold with its intervals (the report lines); an
    FPR line also carries its cut, the negatives above it, the achieved and the expected FPR
    (k+1)/(n+1) beside the target, and ``resolved`` (>= 10 negatives above the cut)."""
    overall = completeness.filter(pc.equal(completeness["axis"], OVERALL))
    cols = ["model_id", "subset", "threshold_kind", "threshold_value", "n", "k", "completeness",
            "ci_lo", "ci_hi", "boot_lo", "boot_hi"]
    rows = table_records(overall.select(cols))
    cuts = {(r["model_id"], r["threshold_value"]): r for r in thresholds.to_pylist()}
    for r in rows:
        cut = cuts.get((r["model_id"], r["threshold_value"])) if r["threshold_kind"] == "fpr" else None
        if cut:
            r.update({k: cut.get(k) for k in ("score_cut", "n_negatives", "n_above", "achieved_fpr", "expected_fpr",
                                              "resolved")})
    return rows


def write_tables(results: dict, output: str) -> dict:
    """Write each result table as ``<output>/<name>.parquet`` and ``<name>.json``; return the URIs."""
    written = {}
    for name in TABLES:
        table = results.get(name)
        if table is None:
            continue
        write_parquet(table, join_uri(output, f"{name}.parquet"))
        if name != "counts":  # the per-region counts are large and only useful as Parquet
            write_json(join_uri(output, f"{name}.json"), table_records(table))
        written[name] = join_uri(output, f"{name}.parquet")
    return written
