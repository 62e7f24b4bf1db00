"""The Arrow schema of every dataset the pipeline writes, a validator, and the JSON contract.

Units are part of the contract: every physical column carries a ``unit`` in its field metadata
and, where the earlier pipeline was ambiguous, in its name (``psfdepth_r_mag5`` is a 5-sigma
AB magnitude; ``psfdepth_r_ivar`` an inverse variance in nmgy^-2; the legacy column
``psfdepth_r`` is never written). ``python -m dhs_gen.schemas --export PATH`` writes the JSON
contract (the successor of ``phase5_required_columns_contract.json``).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

STATUS_OK = "ok"


class SchemaError(ValueError):
    """A table does not match its dataset contract; the message lists every problem."""


def col(name: str, type_: pa.DataType, unit: str = "", desc: str = "", critical: bool = False) -> pa.Field:
    """A field with unit/description metadata; ``critical`` fields must never be null."""
    meta = {"unit": unit, "description": desc, "critical": "1" if critical else "0"}
    return pa.field(name, type_, nullable=not critical, metadata=meta)


@dataclass(frozen=True)
class Dataset:
    """One dataset's contract: its schema and the columns that identify a row."""

    name: str
    schema: pa.Schema
    id_columns: tuple[str, ...]
    description: str


def _conditions() -> list[pa.Field]:
    fields = []
    for b in "grz":
        fields.append(col(f"psfsize_{b}", pa.float32(), "arcsec", f"PSF FWHM in {b}"))
        fields.append(col(f"psfdepth_{b}_mag5", pa.float32(), "AB mag", f"5-sigma point-source depth in {b}"))
    fields.append(col("ebv", pa.float32(), "mag", "SFD E(B-V)"))
    return fields


def _status() -> list[pa.Field]:
    return [col("status", pa.string(), "", "'ok' or the failure reason", critical=True)]


_STAMP_DESC = "canonical stamp blob (dhs_gen.io.stamps.encode_stamp): float32 (C,H,W) nanomaggies"

DATASETS: dict[str, Dataset] = {}


UNITS_KEY = b"dhs.units"  # Parquet key-value metadata: JSON {column: unit} of the dataset's columns
DATASET_KEY = b"dhs.dataset"


def units_metadata(name: str, fields: list[pa.Field]) -> dict:
    """The schema-level metadata every written file carries: dataset name and column units."""
    units = {f.name: (f.metadata or {}).get(b"unit", b"").decode() for f in fields}
    return {DATASET_KEY: name.encode(), UNITS_KEY: json.dumps(units, sort_keys=True).encode()}


def _register(name: str, fields: list[pa.Field], id_columns: tuple[str, ...], description: str) -> None:
    DATASETS[name] = Dataset(name, pa.schema(fields, metadata=units_metadata(name, fields)), id_columns,
                             description)


_register("cutout_index", [
    col("galaxy_id", pa.string(), "", "{brickname}_{objid}", critical=True),
    col("ra", pa.float64(), "deg", critical=True),
    col("dec", pa.float64(), "deg", critical=True),
    col("size", pa.int32(), "pixel", "stamp side"),
    col("bands", pa.string(), "", "band string, e.g. 'grz'"),
    col("cutout", pa.binary(), "nanomaggies", _STAMP_DESC),
    col("cutout_ok", pa.bool_(), "", "all bands present and no NaN in the central region", critical=True),
    col("has_nan", pa.bool_()),
    col("nan_pixel_count", pa.int32(), "pixel"),
    col("bad_pixel_frac", pa.float32(), "", "fraction of non-finite or masked pixels"),
    *[col(f"{stat}_{b}", pa.float32(), "nanomaggies") for b in "grz"
      for stat in ("mean", "std", "median", "mad", "p01", "p99")],
    *_conditions(),
    col("provider", pa.string(), "", "mock | legacysurvey | coadd"),
    col("request_url", pa.string()),
    col("fetched_at", pa.timestamp("us", tz="UTC")),
    *_status(),
], ("galaxy_id",), "one row per requested cutout")

_register("positives", [
    col("name", pa.string(), "", "lenscat name", critical=True),
    col("ra", pa.float64(), "deg", critical=True),
    col("dec", pa.float64(), "deg", critical=True),
    col("zlens", pa.float64(), "", "lens redshift; null when not measured"),
    col("lens_type", pa.string()),
    col("grading", pa.string(), "", "confident | probable"),
    col("tier", pa.string(), "", "A (confident) | B (probable)", critical=True),
    col("sample_weight", pa.float32(), "", "loss weight of the tier", critical=True),
    col("galaxy_id", pa.string(), "", "matched Tractor source; null when unmatched"),
    col("match_sep_arcsec", pa.float32(), "arcsec"),
    col("type", pa.string(), "", "Tractor morphological type of the match"),
    col("nobs_z", pa.int32()),
    col("nobs_z_bin", pa.string()),
    col("healpix_128", pa.int64(), "", "NESTED nside=128 pixel"),
    col("split", pa.string()),
    *_conditions(),
    *_status(),
], ("name",), "known lenses and candidates crossmatched to Tractor")

_NEG_FIELDS = [
    col("galaxy_id", pa.string(), "", "{brickname}_{objid}", critical=True),
    col("brickname", pa.string()),
    col("objid", pa.int64()),
    col("ra", pa.float64(), "deg", critical=True),
    col("dec", pa.float64(), "deg", critical=True),
    col("type", pa.string(), "", "Tractor type"),
    col("type_bin", pa.string(), "", "SER | DEV | REX | OTHER", critical=True),
    col("nobs_g", pa.int32()),
    col("nobs_r", pa.int32()),
    col("nobs_z", pa.int32()),
    col("nobs_z_bin", pa.string(), "", "1-2 | 3-5 | 6-10 | 11+", critical=True),
    *[col(f"flux_{b}", pa.float32(), "nanomaggies") for b in "grz"],
    *[col(f"mag_{b}", pa.float32(), "AB mag") for b in "grz"],
    col("g_minus_r", pa.float32(), "mag"),
    col("r_minus_z", pa.float32(), "mag"),
    col("shape_r", pa.float32(), "arcsec", "half-light radius"),
    col("shape_e1", pa.float32()),
    col("shape_e2", pa.float32()),
    col("sersic", pa.float32()),
    col("maskbits", pa.int32()),
    *_conditions(),
    col("healpix_64", pa.int64(), "", "NESTED nside=64 pixel"),
    col("healpix_128", pa.int64(), "", "NESTED nside=128 pixel", critical=True),
    col("split", pa.string(), "", "train | val | test", critical=True),
    col("pool", pa.string(), "", "N1 | N2", critical=True),
    col("confuser_category", pa.string(), "", "ring_proxy | edge_on_proxy | blue_clumpy | large_galaxy | null"),
]
_register("negatives_pool", _NEG_FIELDS, ("galaxy_id",), "galaxies passing the pool cuts, N1/N2 labelled")
_register("sampled_negatives", [
    *_NEG_FIELDS,
    col("sample_hash", pa.int64(), "", "stable_hash64(seed, galaxy_id): the sampling order", critical=True),
], ("galaxy_id",), "the stratified negative sample")

_register("training_manifest", [
    col("galaxy_id", pa.string(), "", "row identity (host id for injections)", critical=True),
    col("stamp_ref", pa.string(), "", "URI#row or file reference of the stamp/cutout", critical=True),
    col("label", pa.int8(), "", "1 lens, 0 non-lens", critical=True),
    col("sample_weight", pa.float32(), critical=True),
    col("split", pa.string(), "", "train | val | test", critical=True),
    col("tier", pa.string(), "", "A | B | N1 | N2", critical=True),
    col("type", pa.string()),
    col("nobs_z_bin", pa.string()),
    col("healpix_128", pa.int64(), "", "NESTED nside=128 pixel", critical=True),
    col("confuser_category", pa.string()),
    col("psfsize_r", pa.float32(), "arcsec"),
    col("psfdepth_r_mag5", pa.float32(), "AB mag"),
], ("galaxy_id",), "what the trainer reads")

_INJECTION_DESIGN = [
    col("task_id", pa.string(), "", "SHA-256 hex of the row's design", critical=True),
    col("experiment_id", pa.string(), critical=True),
    col("design", pa.string(), "", "grid | random"),
    col("host_id", pa.string(), "", "galaxy_id of the host", critical=True),
    col("ra", pa.float64(), "deg", critical=True),
    col("dec", pa.float64(), "deg", critical=True),
    col("brickname", pa.string()),
    col("healpix_128", pa.int64(), "", "NESTED nside=128 pixel"),
    col("region_split", pa.string()),
    col("task_seed64", pa.int64(), "", "per-row seed from stable_hash64", critical=True),
    col("lens_model", pa.string(), "", "SIE | SIS | EPL | CONTROL"),
    col("theta_e_arcsec", pa.float32(), "arcsec"),
    col("z_l", pa.float32(), "", "lens redshift: the host's redshift (photo-z or survey column, see z_l_source)"),
    col("z_l_err", pa.float32(), "", "1-sigma uncertainty of the host's redshift"),
    col("z_l_source", pa.string(), "", "photoz:<estimator> | column:<host column>"),
    col("z_l_requested", pa.float32(), "", "grid: the cell's z_l point (null: random design)"),
    col("z_l_lo", pa.float32(), "", "grid: lower edge of the cell's z_l bin (z_l >= z_l_lo)"),
    col("z_l_hi", pa.float32(), "", "grid: upper edge of the cell's z_l bin (z_l < z_l_hi)"),
    col("host_role", pa.string(), "", "train | selection: the host's role (stable hash of host_id)"),
    col("z_s", pa.float32()),
    col("lens_e1", pa.float32()),
    col("lens_e2", pa.float32()),
    col("lens_center_x", pa.float32(), "arcsec"),
    col("lens_center_y", pa.float32(), "arcsec"),
    col("shear_gamma1", pa.float32()),
    col("shear_gamma2", pa.float32()),
    col("source_mode", pa.string(), "", "sersic | cosmos | sersic_clumps"),
    col("gen_variant", pa.string()),
    col("artifact_profile", pa.string()),
    col("src_mag_r", pa.float32(), "AB mag", "unlensed source r magnitude"),
    *[col(f"src_flux_{b}", pa.float32(), "nanomaggies", "unlensed source flux") for b in "grz"],
    col("src_reff_arcsec", pa.float32(), "arcsec"),
    col("src_n_sersic", pa.float32()),
    col("src_e1", pa.float32()),
    col("src_e2", pa.float32()),
    col("src_x_arcsec", pa.float32(), "arcsec", "source-plane offset"),
    col("src_y_arcsec", pa.float32(), "arcsec", "source-plane offset"),
    col("cosmos_index", pa.int32(), "", "COSMOS catalogue IDENT of the source template (cosmos rows)"),
    col("stamp_size", pa.int32(), "pixel"),
    col("bandset", pa.string()),
    *_conditions(),
]
_register("injection_manifest", [*_INJECTION_DESIGN, *_status()], ("task_id",), "phase 4a: one row per injection")

_register("stamps", [
    *_INJECTION_DESIGN,
    col("stamp", pa.binary(), "nanomaggies", "positive: host + lensed source; " + _STAMP_DESC),
    col("ctrl_stamp", pa.binary(), "nanomaggies", "paired control: the same host, untouched"),
    col("hardneg_stamp", pa.binary(), "nanomaggies", "theta_E-aware azimuthal shuffle of the arc light"),
    col("cutout_ok", pa.bool_(), critical=True),
    col("magnification", pa.float32(), "", "lensed/unlensed total flux, same PSF"),
    col("n_images", pa.int8()),
    col("arc_snr_sum", pa.float32(), "", "sum(signal)/sqrt(sum(variance)) over arc pixels, host noise"),
    col("arc_snr_max", pa.float32(), "", "max per-pixel r-band SNR of the injected light"),
    col("lensed_hlr_arcsec", pa.float32(), "arcsec", "half-light radius of the lensed arc"),
    col("x_ratio", pa.float32(), "", "theta_E / PSF FWHM (r)"),
    *[col(f"lensed_mag_{b}", pa.float32(), "AB mag") for b in "grz"],
    *[col(f"psf_fwhm_used_{b}", pa.float32(), "arcsec") for b in "grz"],
    col("bad_pixel_frac", pa.float32()),
    *_status(),
], ("task_id",), "phase 4c: positive, control and hard-negative stamps with metrics")

_register("scores", [
    col("id", pa.string(), "", "row id of the scored stamp (task_id or galaxy_id)", critical=True),
    col("logit", pa.float32(), critical=True),
    col("model_score", pa.float32(), "", "calibrated probability", critical=True),
    col("model_id", pa.string(), "", "frozen-model hash", critical=True),
    col("status", pa.string(), critical=True),
], ("id", "model_id"), "model scores (one name: model_score)")

_register("completeness", [
    col("model_id", pa.string(), "", "frozen-model hash of the scores", critical=True),
    col("subset", pa.string(), "", "all | clean", critical=True),
    col("threshold_kind", pa.string(), "", "fpr | proxy", critical=True),
    col("threshold_value", pa.float64(), critical=True),
    col("axis", pa.string(), "", "binning, e.g. theta_e_arcsec x z_l", critical=True),
    col("bin_lo", pa.list_(pa.float64())),
    col("bin_hi", pa.list_(pa.float64())),
    col("n", pa.int64(), critical=True),
    col("k", pa.int64(), "", "recovered", critical=True),
    col("completeness", pa.float64()),
    col("ci_lo", pa.float64(), "", "Wilson 95%"),
    col("ci_hi", pa.float64(), "", "Wilson 95%"),
    col("low_n", pa.bool_(), "", "n < 50"),
    col("bin_index", pa.int32(), "", "flat bin index (C order over the axis columns)", critical=True),
    col("boot_std", pa.float64(), "", "HEALPix-region bootstrap standard deviation"),
    col("boot_lo", pa.float64(), "", "HEALPix-region bootstrap 2.5 percentile"),
    col("boot_hi", pa.float64(), "", "HEALPix-region bootstrap 97.5 percentile"),
    col("n_regions", pa.int32(), "", "HEALPix regions contributing to the bin"),
], ("model_id", "subset", "threshold_kind", "threshold_value", "axis", "bin_index"), "selection-function tables")


def get_dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise SchemaError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}") from None


def validate_table(table: pa.Table, dataset: str, *, allow_extra: bool = True) -> None:
    """Check ``table`` against a dataset contract; raise SchemaError listing every problem.

    Checks: missing columns, wrong types, nulls in critical columns, duplicate row ids, and
    (unless ``allow_extra``) unexpected columns.
    """
    spec = get_dataset(dataset)
    problems = []
    for field in spec.schema:
        if field.name not in table.column_names:
            problems.append(f"missing column {field.name!r} ({field.type})")
            continue
        actual = table.schema.field(field.name).type
        if actual != field.type and not (pa.types.is_null(actual) and field.nullable):
            problems.append(f"column {field.name!r} has type {actual}, expected {field.type}")
        if not field.nullable and table.column(field.name).null_count:
            problems.append(f"column {field.name!r} has {table.column(field.name).null_count} nulls (critical)")
    if not allow_extra:
        extra = sorted(set(table.column_names) - set(spec.schema.names))
        if extra:
            problems.append(f"unexpected columns {extra}")
    ids = [c for c in spec.id_columns if c in table.column_names]
    if ids and len(ids) == len(spec.id_columns) and table.num_rows:
        key = table.select(ids)
        if key.group_by(ids).aggregate([]).num_rows != table.num_rows:
            counts = key.group_by(ids).aggregate([([], "count_all")])
            dup = counts.filter(pc.greater(counts["count_all"], 1))
            problems.append(f"{dup.num_rows} duplicate ids in {ids}, e.g. {dup.slice(0, 3).to_pylist()}")
    if problems:
        raise SchemaError(f"{dataset}: " + "; ".join(problems))


def conform(table: pa.Table, dataset: str) -> pa.Table:
    """Select and cast ``table``'s columns to the dataset schema (missing nullable columns as nulls)."""
    spec = get_dataset(dataset)
    arrays, present = [], set(table.column_names)  # column_names builds a new list on every access
    for field in spec.schema:
        if field.name in present:
            arrays.append(table.column(field.name).cast(field.type))
        elif field.nullable:
            arrays.append(pa.nulls(table.num_rows, field.type))
        else:
            raise SchemaError(f"{dataset}: missing critical column {field.name!r}")
    return pa.Table.from_arrays(arrays, schema=spec.schema)


def with_units(schema: pa.Schema, name: str) -> pa.Schema:
    """``schema`` (e.g. a dataset schema plus a job's extra columns) with the units metadata of
    all its fields, so a writer that uses it records them in the Parquet footer."""
    return schema.with_metadata({**(schema.metadata or {}), **units_metadata(name, list(schema))})


def spark_schema(schema: pa.Schema):
    """The Spark ``StructType`` of an Arrow schema keeping each field's unit and description as
    Spark column metadata (Spark writes it into the Parquet footer's row metadata, where
    :func:`parquet_units` and Spark readers find it)."""
    from pyspark.sql.pandas.types import from_arrow_schema
    from pyspark.sql.types import StructField, StructType

    struct = from_arrow_schema(schema)
    fields = []
    for arrow_field, field in zip(schema, struct.fields):
        meta = {k.decode(): v.decode() for k, v in (arrow_field.metadata or {}).items()
                if k in (b"unit", b"description")}
        fields.append(StructField(field.name, field.dataType, field.nullable, meta or None))
    return StructType(fields)


def parquet_units(path: str) -> dict:
    """``{column: unit}`` from a Parquet file's footer, written by pyarrow (``dhs.units``) or by
    Spark (column metadata in ``org.apache.spark.sql.parquet.row.metadata``); {} if neither."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path).metadata or {}
    if UNITS_KEY in meta:
        return json.loads(meta[UNITS_KEY])
    spark = meta.get(b"org.apache.spark.sql.parquet.row.metadata")
    if spark:
        return {f["name"]: f["metadata"]["unit"] for f in json.loads(spark)["fields"]
                if "unit" in (f.get("metadata") or {})}
    return {}


def export_contract() -> dict:
    """The JSON data contract: every dataset, its columns with type, unit and criticality."""
    out = {}
    for name, spec in DATASETS.items():
        out[name] = {
            "description": spec.description,
            "id_columns": list(spec.id_columns),
            "columns": [{
                "name": f.name, "type": str(f.type), "nullable": f.nullable,
                "unit": (f.metadata or {}).get(b"unit", b"").decode(),
                "description": (f.metadata or {}).get(b"description", b"").decode(),
            } for f in spec.schema],
        }
    return out


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Export the dataset contract as JSON")
    parser.add_argument("--export", default="-", help="output path ('-' for stdout)")
    args = parser.parse_args(argv)
    text = json.dumps(export_contract(), indent=2) + "\n"
    if args.export == "-":
        sys.stdout.write(text)
    else:
        from dhs_gen.storage import write_text

        write_text(args.export, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
