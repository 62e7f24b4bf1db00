"""``make demo`` stage ``catalogue``: the survey stage's mock catalogue through every catalogue job.

positives (lenscat x catalogue: the mock sky holds every lenscat lens, and the demo catalogue
starts with the cells of 300 DESI lenses, see docs/survey.md) -> negative pool -> stratified
sample -> mock cutouts of the matched positives (``positive_cutouts``: the real-lens cutouts of
the selection stage's realism audit) and of the sampled negatives (``negative_cutouts``), each
with its split -> one cutout index of both (``cutouts_index``) -> training manifest -> data
gates. Each Spark job runs through ``spark-submit --master local[2]`` (dhs.demo_jobs);
configs in ``configs/catalog_demo.yaml``. A missing catalogue gives status "skipped" naming it.
"""
from __future__ import annotations

# ruff: noqa: UP045  (pydantic on Python 3.9 needs Optional[...], not X | None)
from pathlib import Path

from dhs_gen.catalog.config import CatalogConfig
from dhs_gen.config import StrictModel
from dhs_gen.resources import configs_dir

ROOT = configs_dir().parent  # holds configs/ (the checkout, or the installed package's shipped copy)
DEMO_CONFIG = ROOT / "configs" / "catalog_demo.yaml"


class DemoCatalogConfig(StrictModel):
    tractor: str = "survey/catalog"
    cutouts_config: str = "configs/cutouts_demo.yaml"
    master: str = "local[2]"
    catalog: CatalogConfig = CatalogConfig()


def _run(module: str, args: list, master: str) -> None:
    """Run ``jobs/<name>.py`` through spark-submit (raises DemoJobError on failure)."""
    from dhs.demo_jobs import spark_submit

    spark_submit(module.rsplit(".", 1)[-1], args, master=master)


def spark_readable(table):
    """``table`` with nanosecond timestamps cast to microseconds (Spark rejects TIMESTAMP(NANOS))."""
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.unit == "ns":
            table = table.set_column(i, field.name, table[field.name].cast(pa.timestamp("us", tz=field.type.tz)))
    return table


def add_split(cutouts_uri: str, sampled_uri: str, out_uri: str) -> int:
    """The cutout index of the sampled negatives with their ``split`` (one Parquet file)."""
    import pyarrow.compute as pc

    from dhs_gen.storage import read_parquet, write_parquet

    cut = read_parquet(cutouts_uri)
    cut = cut.drop([c for c in ("run", "fetched") if c in cut.column_names])
    splits = read_parquet(sampled_uri, columns=["galaxy_id", "split"])
    table = cut.join(splits.cast(splits.schema), "galaxy_id", join_type="inner")
    table = table.set_column(table.schema.get_field_index("split"), "split", pc.cast(table["split"], "string"))
    write_parquet(spark_readable(table), out_uri)
    return table.num_rows


def positives_manifest(positives_uri: str, out_uri: str) -> int:
    """The matched positives (status ok) as a cutout manifest: galaxy_id, ra, dec [deg] (the lens
    position, where the mock renders the lens galaxy and its arcs); one Parquet file."""
    import pyarrow.compute as pc

    from dhs_gen.storage import read_parquet, write_parquet

    pos = read_parquet(positives_uri, columns=["galaxy_id", "ra", "dec", "status"])
    pos = pos.filter(pc.and_(pc.equal(pos["status"], "ok"), pc.is_valid(pos["galaxy_id"])))
    write_parquet(pos.select(["galaxy_id", "ra", "dec"]), out_uri)
    return pos.num_rows


def merge_cutout_indexes(uris: list, out_uri: str) -> int:
    """Concatenate cutout-index Parquet files (same schema) into one Spark-readable file; returns its rows."""
    import pyarrow as pa

    from dhs_gen.storage import read_parquet, write_parquet

    tables = [read_parquet(u) for u in uris]
    table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
    write_parquet(spark_readable(table), out_uri)
    return table.num_rows


def run_demo_stage(root: str, force: bool = False) -> dict:
    """Run the catalogue chain under ``root`` (build/demo/catalogue); returns its summary."""
    import pyarrow.compute as pc
    import yaml

    from dhs_gen.config import config_to_dict, load_config
    from dhs_gen.storage import exists, join_uri, mark_complete, read_json, read_parquet, remove, write_text

    demo = load_config(DemoCatalogConfig, str(DEMO_CONFIG))
    base = str(Path(root).parent)
    tractor = join_uri(base, demo.tractor)
    if not exists(tractor):
        return {"status": "skipped", "reason": f"missing input {tractor}"}
    cfg_uri = join_uri(root, "catalog_config.yaml")
    write_text(cfg_uri, yaml.safe_dump(config_to_dict(demo.catalog), sort_keys=False))
    out = {k: join_uri(root, k) for k in ("positives", "negatives_pool", "sampled_negatives",
                                          "negative_cutouts_index", "positive_cutouts_index", "training_manifest")}
    common = ["--config", cfg_uri]
    cutouts_cfg = str(ROOT / demo.cutouts_config)
    for key in ("negative_cutouts_index", "positive_cutouts_index"):
        remove(out[key])  # the cutout job resumes by galaxy_id: rows of an earlier sample would stay
    _run("jobs.positives", [*common, "--tractor", tractor, "--output", out["positives"]], demo.master)
    _run("jobs.negative_pool", [*common, "--tractor", tractor, "--output", out["negatives_pool"]], demo.master)
    _run("jobs.sample_negatives", [*common, "--pool", out["negatives_pool"], "--output", out["sampled_negatives"]],
         demo.master)
    _run("jobs.cutouts", ["--config", cutouts_cfg, "--manifest", out["sampled_negatives"],
                          "--output", out["negative_cutouts_index"]], demo.master)
    negative_cutouts = join_uri(root, "negative_cutouts", "part-00000.parquet")
    n_cutouts = add_split(out["negative_cutouts_index"], out["sampled_negatives"], negative_cutouts)
    pos_manifest = join_uri(root, "positives_manifest.parquet")
    n_pos = positives_manifest(out["positives"], pos_manifest)
    positive_cutouts = join_uri(root, "positive_cutouts", "part-00000.parquet")
    n_pos_cutouts = 0
    cutout_files = [negative_cutouts]
    if n_pos:
        _run("jobs.cutouts", ["--config", cutouts_cfg, "--manifest", pos_manifest,
                              "--output", out["positive_cutouts_index"]], demo.master)
        n_pos_cutouts = add_split(out["positive_cutouts_index"], out["positives"], positive_cutouts)
        cutout_files.append(positive_cutouts)
    cutouts_index = join_uri(root, "cutouts_index")
    n_index = merge_cutout_indexes(cutout_files, join_uri(cutouts_index, "part-00000.parquet"))
    mark_complete(cutouts_index, {"rows_out": n_index})  # the manifest job refuses an unmarked input
    _run("jobs.training_manifest", [*common, "--positives", out["positives"], "--negatives",
                                    out["sampled_negatives"], "--cutouts", cutouts_index,
                                    "--output", out["training_manifest"]], demo.master)
    from dhs_gen.catalog.gates import run_manifest_gates

    gates = run_manifest_gates(out["training_manifest"], demo.catalog.gates, cutouts_index)
    summaries = {k: read_json(join_uri(v, "_summary.json")) for k, v in out.items()
                 if k not in ("negative_cutouts_index", "positive_cutouts_index")}
    manifest = read_parquet(out["training_manifest"], columns=["label", "tier"])
    return {
        "status": "ok", **out, "negative_cutouts": join_uri(root, "negative_cutouts"),
        "positive_cutouts": join_uri(root, "positive_cutouts") if n_pos_cutouts else None,
        "cutouts_index": cutouts_index,
        "positives_matched": summaries["positives"]["status"].get("ok", 0),
        "positives_by_tier": _counts(manifest.filter(pc.equal(manifest["label"], 1))["tier"]),
        "positive_cutouts_rows": n_pos_cutouts,
        "pool_rows": summaries["negatives_pool"]["rows_out"], "pool_status": summaries["negatives_pool"]["status"],
        "sampled": summaries["sampled_negatives"]["taken"],
        "sampling_gates_passed": summaries["sampled_negatives"]["gates_passed"],
        "negative_cutouts_rows": n_cutouts, "manifest_rows": summaries["training_manifest"]["rows_out"],
        "manifest_by_label": _counts(manifest["label"]),
        "data_gates": {g["name"]: g["passed"] for g in gates["gates"]}, "data_gates_passed": gates["passed"],
    }


def _counts(column) -> dict:
    import pyarrow.compute as pc

    return {str(v["values"]): int(v["counts"]) for v in pc.value_counts(column).to_pylist()}
