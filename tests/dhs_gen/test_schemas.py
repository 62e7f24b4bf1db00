"""Dataset contracts: validator messages, conform, and the exported JSON contract."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from dhs_gen import schemas


def _scores(ids=("a", "b"), model_score=(0.1, 0.9)):
    n = len(ids)
    return pa.table({
        "id": list(ids), "logit": pa.array([0.0] * n, pa.float32()),
        "model_score": pa.array(list(model_score), pa.float32()),
        "model_id": ["m1"] * n, "status": ["ok"] * n,
    })


def test_valid_table_passes():
    schemas.validate_table(_scores(), "scores")


def test_missing_column_and_wrong_type_are_named():
    table = _scores().drop(["model_id"]).set_column(1, "logit", pa.array(["x", "y"]))
    with pytest.raises(schemas.SchemaError) as err:
        schemas.validate_table(table, "scores")
    assert "missing column 'model_id'" in str(err.value)
    assert "column 'logit' has type string, expected float" in str(err.value)


def test_nulls_in_critical_columns_and_duplicate_ids():
    table = _scores(ids=("a", "a"), model_score=(0.1, None))
    with pytest.raises(schemas.SchemaError) as err:
        schemas.validate_table(table, "scores")
    assert "'model_score' has 1 nulls" in str(err.value)
    assert "1 duplicate ids" in str(err.value)


def test_extra_columns_only_when_strict():
    table = _scores().append_column("extra", pa.array([1, 2]))
    schemas.validate_table(table, "scores")
    with pytest.raises(schemas.SchemaError, match="unexpected columns"):
        schemas.validate_table(table, "scores", allow_extra=False)


def test_conform_casts_and_fills_nullable():
    table = pa.table({"id": ["a"], "logit": [1.0], "model_score": [0.5], "model_id": ["m"], "status": ["ok"]})
    out = schemas.conform(table, "scores")
    assert out.schema.field("logit").type == pa.float32()
    schemas.validate_table(out, "scores")


def test_every_physical_column_names_its_unit_and_no_ambiguous_depth():
    for name, spec in schemas.DATASETS.items():
        names = spec.schema.names
        assert "psfdepth_r" not in names, f"{name}: ambiguous legacy depth column"
        for field in spec.schema:
            if field.name.startswith(("psfsize", "psfdepth", "flux_", "theta_e", "ra", "dec")) and field.name != "ratio":
                assert (field.metadata or {}).get(b"unit"), f"{name}.{field.name} has no unit"


def test_unknown_dataset():
    with pytest.raises(schemas.SchemaError, match="unknown dataset"):
        schemas.get_dataset("nope")


def test_contract_export(tmp_path):
    out = tmp_path / "contract.json"
    assert schemas.main(["--export", str(out)]) == 0
    contract = json.loads(out.read_text())
    assert set(contract) == set(schemas.DATASETS)
    cols = {c["name"]: c for c in contract["stamps"]["columns"]}
    assert cols["theta_e_arcsec"]["unit"] == "arcsec"
    assert contract["scores"]["id_columns"] == ["id", "model_id"]


def test_committed_contract_is_up_to_date():
    """docs/contracts/dataset_contract.json must be regenerated when a schema changes."""
    from pathlib import Path

    committed = Path(__file__).resolve().parents[2] / "docs" / "contracts" / "dataset_contract.json"
    assert json.loads(committed.read_text()) == schemas.export_contract(), (
        "regenerate with: python -m dhs_gen.schemas --export docs/contracts/dataset_contract.json")


def test_every_dataset_schema_carries_its_units_as_parquet_metadata():
    for name, spec in schemas.DATASETS.items():
        units = json.loads(spec.schema.metadata[schemas.UNITS_KEY])
        assert set(units) == set(spec.schema.names), name
        assert spec.schema.metadata[schemas.DATASET_KEY] == name.encode()


def test_units_read_back_from_a_pyarrow_written_output(tmp_path):
    """conform() -> the storage writer: the footer holds {column: unit} (was: no units at all)."""
    import pyarrow.parquet as pq

    from dhs_gen.storage import write_parquet

    path = str(tmp_path / "scores.parquet")
    write_parquet(schemas.conform(_scores(), "scores"), path)
    units = schemas.parquet_units(path)
    expected = {f.name: (f.metadata or {}).get(b"unit", b"").decode() for f in schemas.get_dataset("scores").schema}
    assert units == expected
    field_meta = pq.read_schema(path).field("model_score").metadata
    assert field_meta[b"unit"] == expected["model_score"].encode()


def test_units_read_back_from_a_spark_written_output(tmp_path, spark):
    import glob

    from dhs_gen.spark import map_arrow_batches

    schema = pa.schema([schemas.col("galaxy_id", pa.string(), "", "id"),
                        schemas.col("psfsize_r", pa.float32(), "arcsec", "PSF FWHM in r")])

    def fn(batch):
        n = batch.num_rows
        return pa.RecordBatch.from_arrays([pa.array([str(i) for i in range(n)]),
                                           pa.array([1.2] * n, pa.float32())], schema=schema)

    out = str(tmp_path / "spark_out")
    map_arrow_batches(spark.range(4, numPartitions=1), fn, schema).write.parquet(out)
    (part,) = glob.glob(f"{out}/part-*.parquet")
    assert schemas.parquet_units(part) == {"psfsize_r": "arcsec", "galaxy_id": ""}
    assert spark.read.parquet(out).schema["psfsize_r"].metadata["unit"] == "arcsec"
