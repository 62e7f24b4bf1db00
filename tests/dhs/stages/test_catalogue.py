"""The catalogue demo: lenscat positives match the demo-scale mock catalogue; its helpers."""
from __future__ import annotations

import pyarrow as pa
import pytest

from dhs.stages.catalogue import (
    DEMO_CONFIG,
    DemoCatalogConfig,
    merge_cutout_indexes,
    positives_manifest,
)
from dhs.stages.survey import DEMO_CATALOG_ROWS, DEMO_LENS_PATCHES, DEMO_SEED
from dhs_gen.catalog.config import PositivesConfig, SplitConfig
from dhs_gen.catalog.positives import build_positives_local
from dhs_gen.config import load_config
from dhs_gen.storage import read_parquet, write_parquet
from dhs_gen.survey.catalog import mock_catalog


@pytest.fixture(scope="module")
def demo_positives():
    cat = mock_catalog(DEMO_CATALOG_ROWS, seed=DEMO_SEED, lens_patches=DEMO_LENS_PATCHES)
    cfg = load_config(DemoCatalogConfig, str(DEMO_CONFIG)).catalog
    return build_positives_local(cat, cfg.positives, cfg.splits).to_pandas()


def test_demo_catalogue_matches_hundreds_of_positives_both_tiers(demo_positives):
    ok = demo_positives[demo_positives["status"] == "ok"]
    assert len(ok) >= 0.95 * DEMO_LENS_PATCHES
    tiers = ok["tier"].value_counts()
    assert tiers["A"] >= 100 and tiers["B"] >= 100
    assert ok["match_sep_arcsec"].max() < 0.01  # the lens galaxy sits at the lenscat position
    assert set(ok["type"]) <= {"DEV", "SER"}
    assert ok["galaxy_id"].is_unique


def test_without_lenses_nothing_matches_in_patches():
    cat = mock_catalog(2000, seed=DEMO_SEED, include_lenses=False)
    out = build_positives_local(cat, PositivesConfig(match_radius_arcsec=1.0), SplitConfig()).to_pandas()
    assert (out["status"] == "ok").sum() <= 5


def test_positives_manifest_and_merge(tmp_path, demo_positives):
    pos_uri = str(tmp_path / "positives.parquet")
    table = pa.Table.from_pandas(demo_positives[["name", "ra", "dec", "galaxy_id", "status"]], preserve_index=False)
    write_parquet(table, pos_uri)
    n = positives_manifest(pos_uri, str(tmp_path / "m.parquet"))
    manifest = read_parquet(str(tmp_path / "m.parquet"))
    assert n == manifest.num_rows == int((demo_positives["status"] == "ok").sum())
    assert manifest.column_names == ["galaxy_id", "ra", "dec"] and manifest["galaxy_id"].null_count == 0
    a, b = str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")
    write_parquet(pa.table({"galaxy_id": ["x"], "cutout_ok": [True]}), a)
    write_parquet(pa.table({"galaxy_id": ["y", "z"], "cutout_ok": [True, False]}), b)
    assert merge_cutout_indexes([a, b], str(tmp_path / "c" / "part-00000.parquet")) == 3
    assert read_parquet(str(tmp_path / "c"))["galaxy_id"].to_pylist() == ["x", "y", "z"]


def test_merged_index_has_no_nanosecond_timestamps(tmp_path):
    import datetime

    a = str(tmp_path / "a.parquet")
    ts = pa.array([datetime.datetime(2026, 1, 1)], pa.timestamp("ns", tz="UTC"))
    write_parquet(pa.table({"galaxy_id": ["x"], "fetched_at": ts}), a)
    merge_cutout_indexes([a], str(tmp_path / "c.parquet"))
    field = read_parquet(str(tmp_path / "c.parquet")).schema.field("fetched_at")
    assert field.type == pa.timestamp("us", tz="UTC")
