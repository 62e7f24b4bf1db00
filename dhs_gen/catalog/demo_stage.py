"""``make demo`` stage ``catalogue``: the survey stage's mock catalogue through every catalogue job.

positives (lenscat x catalogue) -> negative pool -> stratified sample -> mock cutouts of the
sample (jobs/cutouts.py) with their split -> training manifest -> data gates. Each Spark job runs
through ``spark-submit --master local[2]`` (dhs_gen.demo_jobs); configs in
``configs/catalog_demo.yaml``. A missing catalogue gives status "skipped" naming it.
"""
from __future__ import annotations

# ruff: noqa: UP045  (pydantic on Python 3.9 needs Optional[...], not X | None)
from pathlib import Path

from dhs_gen.catalog.config import CatalogConfig
from dhs_gen.config import StrictModel

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "configs" / "catalog_demo.yaml"


class DemoCatalogConfig(StrictModel):
    tractor: str = "survey/catalog"
    cutouts_config: str = "configs/cutouts_demo.yaml"
    master: str = "local[2]"
    catalog: CatalogConfig = CatalogConfig()


def _run(module: str, args: list, master: str) -> None:
    """Run ``jobs/<name>.py`` through spark-submit (raises DemoJobError on failure)."""
    from dhs_gen.demo_jobs import spark_submit

    spark_submit(module.rsplit(".", 1)[-1], args, master=master)


def add_split(cutouts_uri: str, sampled_uri: str, out_uri: str) -> int:
    """The cutout index of the sampled negatives with their ``split`` (one Parquet file)."""
    import pyarrow.compute as pc

    from dhs_gen.storage import read_parquet, write_parquet

    cut = read_parquet(cutouts_uri)
    cut = cut.drop([c for c in ("run", "fetched") if c in cut.column_names])
    splits = read_parquet(sampled_uri, columns=["galaxy_id", "split"])
    table = cut.join(splits.cast(splits.schema), "galaxy_id", join_type="inner")
    table = table.set_column(table.schema.get_field_index("split"), "split", pc.cast(table["split"], "string"))
    write_parquet(table, out_uri)
    return table.num_rows


def run_demo_stage(root: str, force: bool = False) -> dict:
    """Run the catalogue chain under ``root`` (build/demo/catalogue); returns its summary."""
    import yaml

    from dhs_gen.config import config_to_dict, load_config
    from dhs_gen.storage import exists, join_uri, read_json, write_text

    demo = load_config(DemoCatalogConfig, str(DEMO_CONFIG))
    base = str(Path(root).parent)
    tractor = join_uri(base, demo.tractor)
    if not exists(tractor):
        return {"status": "skipped", "reason": f"missing input {tractor}"}
    cfg_uri = join_uri(root, "catalog_config.yaml")
    write_text(cfg_uri, yaml.safe_dump(config_to_dict(demo.catalog), sort_keys=False))
    out = {k: join_uri(root, k) for k in ("positives", "negatives_pool", "sampled_negatives",
                                          "negative_cutouts_index", "training_manifest")}
    common = ["--config", cfg_uri]
    _run("jobs.positives", [*common, "--tractor", tractor, "--output", out["positives"]], demo.master)
    _run("jobs.negative_pool", [*common, "--tractor", tractor, "--output", out["negatives_pool"]], demo.master)
    _run("jobs.sample_negatives", [*common, "--pool", out["negatives_pool"], "--output", out["sampled_negatives"]],
         demo.master)
    _run("jobs.cutouts", ["--config", str(ROOT / demo.cutouts_config),
                          "--manifest", out["sampled_negatives"], "--output", out["negative_cutouts_index"]],
         demo.master)
    negative_cutouts = join_uri(root, "negative_cutouts", "part-00000.parquet")
    n_cutouts = add_split(out["negative_cutouts_index"], out["sampled_negatives"], negative_cutouts)
    _run("jobs.training_manifest", [*common, "--positives", out["positives"], "--negatives",
                                    out["sampled_negatives"], "--cutouts", out["negative_cutouts_index"],
                                    "--output", out["training_manifest"]], demo.master)
    from jobs.data_gates import run_gates

    gates = run_gates(out["training_manifest"], demo.catalog, out["negative_cutouts_index"])
    summaries = {k: read_json(join_uri(v, "_summary.json")) for k, v in out.items() if k != "negative_cutouts_index"}
    return {
        "status": "ok", **out, "negative_cutouts": join_uri(root, "negative_cutouts"),
        "positives_matched": summaries["positives"]["status"].get("ok", 0),
        "pool_rows": summaries["negatives_pool"]["rows_out"], "pool_status": summaries["negatives_pool"]["status"],
        "sampled": summaries["sampled_negatives"]["taken"],
        "sampling_gates_passed": summaries["sampled_negatives"]["gates_passed"],
        "negative_cutouts_rows": n_cutouts, "manifest_rows": summaries["training_manifest"]["rows_out"],
        "data_gates": {g["name"]: g["passed"] for g in gates["gates"]}, "data_gates_passed": gates["passed"],
    }
