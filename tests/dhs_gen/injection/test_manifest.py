import hashlib

import numpy as np
import pyarrow as pa
import pytest

from dhs_gen.catalog.splits import healpix_index, split_from_pixel
from dhs_gen.config import ConfigError
from dhs_gen.determinism import stable_hash64
from dhs_gen.injection.manifest import ManifestConfig, build_manifest, normalize_hosts
from dhs_gen.injection.priors import grid_spec
from dhs_gen.schemas import validate_table
from dhs_gen.survey import load_lrg_sample


@pytest.fixture(scope="module")
def lrg_hosts():
    frame = load_lrg_sample().head(300)
    return pa.Table.from_pandas(frame[["ra", "dec", "brickname"]].assign(
        galaxy_id=[f"lrg{i}" for i in frame["lrg_index"]]), preserve_index=False)


def test_random_design_on_real_lrgs(lrg_hosts):
    m = build_manifest(lrg_hosts, ManifestConfig(injections_per_host=3, experiment_id="e1", seed=7))
    validate_table(m, "injection_manifest", allow_extra=False)
    assert m.num_rows == 3 * lrg_hosts.num_rows
    row = m.slice(4, 1).to_pylist()[0]
    key = f"e1|7|random|{row['host_id']}|-1|1"
    assert row["task_id"] == hashlib.sha256(key.encode()).hexdigest()
    assert row["task_seed64"] == stable_hash64(7, row["task_id"])
    theta = m.column("theta_e_arcsec").to_numpy()
    assert theta.min() >= 0.5 and theta.max() <= 3.0
    pix = healpix_index(m.column("ra").to_numpy(), m.column("dec").to_numpy())
    assert np.array_equal(m.column("healpix_128").to_numpy(), pix)
    assert m.column("region_split").to_pylist() == split_from_pixel(pix).tolist()


def test_rows_do_not_depend_on_the_batch(lrg_hosts):
    cfg = ManifestConfig(design="grid", grid_preset="grid_medium", injections_per_host=4)
    whole = build_manifest(lrg_hosts, cfg)
    parts = pa.concat_tables([build_manifest(lrg_hosts.slice(0, 117), cfg), build_manifest(lrg_hosts.slice(117), cfg)])
    assert whole.equals(parts)


def test_grid_design_is_bounded_per_host_and_uses_grid_values(lrg_hosts):
    cfg = ManifestConfig(design="grid", grid_preset="grid_small", injections_per_host=5)
    m = build_manifest(lrg_hosts, cfg)
    grid = grid_spec("grid_small", None)
    assert m.num_rows == 5 * lrg_hosts.num_rows
    assert set(m.column("theta_e_arcsec").to_pylist()) <= set(np.float32(grid.theta_e_arcsec).tolist())
    assert set(m.column("z_l").to_pylist()) <= set(np.float32(grid.z_l).tolist())
    # the 5 cells of one host are distinct and every cell gets used
    frame = m.select(["host_id", "theta_e_arcsec", "z_l", "src_mag_r"]).to_pandas()
    frame["mag_bin"] = np.digitize(frame["src_mag_r"], grid.src_mag_r_edges[1:-1])
    per_host = frame.groupby("host_id").apply(lambda g: len(set(zip(g.theta_e_arcsec, g.z_l, g.mag_bin))))
    assert (per_host == 5).all()
    assert len(frame.groupby(["theta_e_arcsec", "z_l", "mag_bin"])) == grid.n_cells


def test_all_cells_per_host_is_the_explicit_cross_design(lrg_hosts):
    cfg = ManifestConfig(design="grid", grid_preset="grid_small", all_cells_per_host=True)
    m = build_manifest(lrg_hosts.slice(0, 4), cfg)
    assert m.num_rows == 4 * grid_spec("grid_small", None).n_cells
    assert m.column("task_id").unique().__len__() == m.num_rows


def test_host_fraction_is_a_stable_subset(lrg_hosts):
    m = build_manifest(lrg_hosts, ManifestConfig(host_fraction=0.3))
    sub = build_manifest(lrg_hosts.slice(0, 100), ManifestConfig(host_fraction=0.3))
    assert 0.2 * 300 < m.num_rows < 0.4 * 300
    assert set(sub.column("host_id").to_pylist()) <= set(m.column("host_id").to_pylist())


def test_depth_units_are_enforced():
    base = {"galaxy_id": ["a"], "ra": [10.0], "dec": [1.0]}
    with pytest.raises(ConfigError, match="psfdepth_r is ambiguous"):
        normalize_hosts(pa.table({**base, "psfdepth_r": [24.0]}))
    ivar = 1.0 / (10 ** ((22.5 - 24.0) / 2.5) / 5) ** 2  # 5σ depth 24.0 mag as inverse variance [nmgy^-2]
    hosts = normalize_hosts(pa.table({**base, **{f"psfdepth_{b}_ivar": [ivar] for b in "grz"}}))
    assert hosts.column("psfdepth_r_mag5").to_numpy()[0] == pytest.approx(24.0, abs=1e-4)
    with pytest.raises(ConfigError, match="lacks"):
        normalize_hosts(pa.table({"galaxy_id": ["a"], "ra": [1.0]}))


def test_uppercase_catalogue_columns_and_sis(lrg_hosts):
    upper = lrg_hosts.rename_columns([c.upper() for c in lrg_hosts.column_names])
    m = build_manifest(upper.slice(0, 10), ManifestConfig(lens_model="SIS"))
    assert m.num_rows == 10
    assert np.all(m.column("lens_e1").to_numpy() == 0) and np.all(m.column("lens_e2").to_numpy() == 0)
