"""``make demo`` stage "survey": mock catalogue, a cutout manifest, the cutout job, the gallery.

Writes under ``root``: ``catalog/`` (MockDR10 Tractor-like catalogue, Parquet), ``manifest.parquet``
(galaxy_id, ra, dec of bright extended galaxies), ``cutouts/`` (the cutout job's output, run
through the same Spark job as on EMR with ``local[2]``) and ``mock_vs_real.png``.
"""
from __future__ import annotations

import json

DEMO_CATALOG_ROWS = 20_000
DEMO_CUTOUTS = 300
DEMO_SEED = 0
DEMO_LENS_PATCHES = 300  # the catalogue starts with the cells of 300 lenscat DESI lenses (positives)


def run_demo_stage(root: str, force: bool = False) -> dict:
    import pyarrow as pa
    import pyarrow.compute as pc

    from dhs.demo_jobs import spark_submit
    from dhs_gen.storage import join_uri, local_path, read_parquet, remove, write_parquet
    from dhs_gen.survey import MockDR10
    from dhs_gen.survey.gallery import render_gallery

    mock = MockDR10(seed=DEMO_SEED)
    cat_uri = join_uri(root, "catalog")
    spark_submit("mock_catalog", ["--output", cat_uri, "--set", f"n_rows={DEMO_CATALOG_ROWS}",
                                  "--set", f"seed={DEMO_SEED}", "--set", "partitions=4",
                                  "--set", f"lens_patches={DEMO_LENS_PATCHES}"])
    catalog = read_parquet(cat_uri)

    extended = pc.is_in(catalog["type"], pa.array(["DEV", "SER", "REX", "EXP"]))
    hosts = catalog.filter(pc.and_(extended, pc.greater(catalog["flux_z"], 5.0))).slice(0, DEMO_CUTOUTS)
    ids = pc.binary_join_element_wise(hosts["brickname"], pc.cast(hosts["objid"], pa.string()), "_")
    manifest = pa.table({"galaxy_id": ids, "ra": hosts["ra"], "dec": hosts["dec"]})
    manifest_uri = join_uri(root, "manifest.parquet")
    write_parquet(manifest, manifest_uri)

    out = join_uri(root, "cutouts")
    if force:
        remove(out)  # otherwise a rerun resumes: fetched rows are kept
    summary = spark_submit("cutouts", ["--manifest", manifest_uri, "--output", out,
                                       "--set", f"provider.mock.seed={DEMO_SEED}", "--set", "partitions=4"])
    gallery = render_gallery(local_path(join_uri(root, "mock_vs_real.png")), mock=mock)
    return {"status": "ok", "catalog_rows": catalog.num_rows,
            "manifest_rows": manifest.num_rows, "cutouts": json.loads(json.dumps(summary, default=str)),
            "gallery": gallery}
