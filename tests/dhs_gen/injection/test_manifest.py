import hashlib

import numpy as np
import pyarrow as pa
import pytest

from dhs_gen.catalog.splits import healpix_index, split_from_pixel
from dhs_gen.config import ConfigError
from dhs_gen.determinism import stable_hash64
from dhs_gen.injection.manifest import ManifestConfig, _row_uniforms, build_manifest, normalize_hosts
from dhs_gen.injection.priors import N_UNIFORMS, grid_spec
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
    assert whole.column("z_s").null_count == 0  # so the comparison covers z_s too
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


def _digest(table: pa.Table, drop=("z_s",)) -> str:
    """SHA-256 over every column but ``drop``, by name and Python values (stable across Arrow versions)."""
    h = hashlib.sha256()
    for name in table.column_names:
        if name not in drop:
            h.update(f"{name}={table.column(name).to_pylist()!r};".encode())
    return h.hexdigest()


_TINY_HOSTS = pa.table({"galaxy_id": ["h0", "h1", "h2", "h3"], "ra": [150.1, 150.2, 210.5, 35.0],
                        "dec": [2.2, -1.0, 10.0, -5.5]})

# Digests of manifests made by the code before z_s was drawn (17 uniforms per row, z_s null):
# appending z_s's uniform must leave every other column of every existing manifest unchanged.
_DIGESTS_BEFORE_Z_S = {
    "tiny_random": "2593e2f7f020aed94ea217eceb99b7e73d1fb58938288d51459ae9e67cc5a389",
    "tiny_grid": "c17405717c1a0435038a77d9c68fd048db4b1fc9b21766e6a07849a0856c7cfc",
    "lrg_random": "e147ee0d35e9ed4a2545ac983db83dcce99555fe6786c31421c09a744cf069cd",
    "lrg_grid": "781fc6509af01c02ec274c85c2db835221aff30bd373684edccbe55f54f27281",
}


def test_adding_z_s_keeps_every_other_column_of_existing_manifests(lrg_hosts):
    cases = {
        "tiny_random": (_TINY_HOSTS, ManifestConfig(experiment_id="zs", seed=11, injections_per_host=2)),
        "tiny_grid": (_TINY_HOSTS, ManifestConfig(experiment_id="zs", seed=11, design="grid",
                                                  grid_preset="grid_small", injections_per_host=2)),
        "lrg_random": (lrg_hosts, ManifestConfig(injections_per_host=3, experiment_id="e1", seed=7)),
        "lrg_grid": (lrg_hosts, ManifestConfig(design="grid", grid_preset="grid_medium", injections_per_host=4,
                                               prior_preset="legacy_final")),
    }
    for name, (hosts, cfg) in cases.items():
        m = build_manifest(hosts, cfg)
        assert m.column("z_s").null_count == 0, name
        assert _digest(m) == _DIGESTS_BEFORE_Z_S[name], name
    row = build_manifest(_TINY_HOSTS, cases["tiny_random"][1]).slice(0, 1).to_pylist()[0]
    assert (row["theta_e_arcsec"], row["z_l"], row["src_mag_r"]) == (
        pytest.approx(1.4448620080947876, abs=0), pytest.approx(0.3153803050518036, abs=0),
        pytest.approx(25.22439956665039, abs=0))
    # why it holds: a row's longer draw starts with the same 17 uniforms
    seeds = np.array([3, 2**62 + 5, 123456789], dtype=np.int64)
    old = np.stack([np.random.default_rng(int(s)).random(17) for s in seeds])
    assert N_UNIFORMS == 18 and np.array_equal(_row_uniforms(seeds)[:, :17], old)


@pytest.mark.parametrize("design, extra", [("random", {}), ("grid", {"grid_preset": "grid_full"}),
                                           ("grid", {"grid_preset": "grid_small", "all_cells_per_host": True})])
def test_z_s_is_filled_above_the_lens_and_deterministic(lrg_hosts, design, extra):
    cfg = ManifestConfig(design=design, injections_per_host=6, prior_preset="legacy_final", **extra)
    hosts = lrg_hosts.slice(0, 20) if extra.get("all_cells_per_host") else lrg_hosts
    m = build_manifest(hosts, cfg)
    assert m.schema.field("z_s").type == pa.float32() and m.column("z_s").null_count == 0
    z_s, z_l = m.column("z_s").to_numpy(), m.column("z_l").to_numpy()
    assert np.all(np.isfinite(z_s)) and np.all(z_s > z_l + 0.2 - 1e-6) and z_s.max() <= 3.0
    assert 1.7 < np.median(z_s) < 2.3
    assert m.column("z_s").equals(build_manifest(hosts, cfg).column("z_s"))
    other = build_manifest(hosts, cfg.model_copy(update={"seed": cfg.seed + 1})).column("z_s").to_numpy()
    assert not np.array_equal(z_s, other)


def test_grid_z_l_beyond_the_z_s_prior_is_refused():
    with pytest.raises(ValueError, match="must exceed z_l 2.9"):
        ManifestConfig(design="grid", grid={"theta_e_arcsec": [1.0], "z_l": [0.5, 2.9], "src_mag_r_edges": [23, 24]})
    with pytest.raises(ValueError, match="z_s: need 0 < lo < hi"):
        ManifestConfig(priors={"z_s": [2.0, 1.0]})
