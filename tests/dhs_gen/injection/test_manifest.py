import hashlib

import numpy as np
import pyarrow as pa
import pytest

from dhs_gen.catalog.splits import healpix_index, split_from_pixel
from dhs_gen.config import ConfigError
from dhs_gen.determinism import stable_hash64
from dhs_gen.injection.manifest import (
    ManifestConfig,
    _row_uniforms,
    build_manifest,
    host_plan,
    normalize_hosts,
    source_colour_summary,
)
from dhs_gen.injection.priors import N_UNIFORMS, grid_spec
from dhs_gen.schemas import validate_table
from dhs_gen.survey import load_lrg_sample
from dhs_gen.survey.photoz import photo_z_from_fluxes

FLUXES = ["flux_g", "flux_r", "flux_z", "flux_w1"]


@pytest.fixture(scope="module")
def lrg_hosts():
    frame = load_lrg_sample().head(300)
    return pa.Table.from_pandas(frame[["ra", "dec", "brickname", *FLUXES]].assign(
        galaxy_id=[f"lrg{i}" for i in frame["lrg_index"]]), preserve_index=False)


def test_random_design_on_real_lrgs(lrg_hosts):
    m = build_manifest(lrg_hosts, ManifestConfig(injections_per_host=3, experiment_id="e1", seed=7))
    validate_table(m, "injection_manifest", allow_extra=False)
    assert m.num_rows == 3 * lrg_hosts.num_rows
    # z_l is the host's photo-z (not a prior draw), with its error and provenance
    z_host, z_err = photo_z_from_fluxes(*(lrg_hosts.column(c).to_numpy() for c in FLUXES))
    assert np.allclose(m.column("z_l").to_numpy(), np.float32(np.repeat(z_host, 3)))
    assert np.allclose(m.column("z_l_err").to_numpy(), np.float32(np.repeat(z_err, 3)))
    assert set(m.column("z_l_source").to_pylist()) == {"photoz:lrg_template_v1"}
    assert m.column("z_l_requested").null_count == m.num_rows == m.column("z_l_lo").null_count
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


def test_grid_hosts_sit_in_their_z_l_bin_and_cells_are_bounded_per_host(lrg_hosts):
    cfg = ManifestConfig(design="grid", grid_preset="grid_small", injections_per_host=5)
    m = build_manifest(lrg_hosts, cfg)
    grid = grid_spec("grid_small", None)
    plan = host_plan(lrg_hosts, cfg)
    n_in = int(np.sum(np.asarray(plan.column("host_status").to_pylist()) == "ok"))
    assert 0.85 * lrg_hosts.num_rows < n_in < lrg_hosts.num_rows  # a few LRGs lie outside z 0.25-0.75
    assert m.num_rows == 5 * n_in
    assert set(m.column("theta_e_arcsec").to_pylist()) <= set(np.float32(grid.theta_e_arcsec).tolist())
    frame = m.select(["host_id", "theta_e_arcsec", "z_l", "z_l_requested", "z_l_lo", "z_l_hi", "src_mag_r"]).to_pandas()
    # realised z_l (the host's) lies in the requested cell's bin; the requested point is a grid point
    assert ((frame.z_l >= frame.z_l_lo) & (frame.z_l < frame.z_l_hi)).all()
    assert set(frame.z_l_requested.round(4)) <= set(np.round(np.float32(grid.z_l), 4).tolist())
    assert frame.z_l.nunique() == n_in  # one redshift per host, not one per cell
    # the 5 cells of one host are distinct and, in the populated bins, every cell gets used
    frame["mag_bin"] = np.digitize(frame["src_mag_r"], grid.src_mag_r_edges[1:-1])
    per_host = frame.groupby("host_id")[["theta_e_arcsec", "z_l_requested", "mag_bin"]].apply(
        lambda g: len(set(zip(g.theta_e_arcsec, g.z_l_requested, g.mag_bin))))
    assert (per_host == 5).all()
    full = frame[np.isclose(frame.z_l_requested, 0.4) | np.isclose(frame.z_l_requested, 0.5)
                 | np.isclose(frame.z_l_requested, 0.6)]
    assert len(full.groupby(["theta_e_arcsec", "z_l_requested", "mag_bin"])) == 3 * grid.n_sub_cells


def test_all_cells_per_host_is_the_explicit_cross_design(lrg_hosts):
    cfg = ManifestConfig(design="grid", grid_preset="grid_small", all_cells_per_host=True)
    m = build_manifest(lrg_hosts.slice(0, 4), cfg)
    n_in = host_plan(lrg_hosts.slice(0, 4), cfg).column("host_status").to_pylist().count("ok")
    assert n_in >= 3 and m.num_rows == n_in * grid_spec("grid_small", None).n_sub_cells
    assert m.column("task_id").unique().__len__() == m.num_rows


def test_hosts_outside_the_bins_or_without_redshift_get_no_rows_and_say_why():
    hosts = pa.table({"galaxy_id": ["near", "mid", "far", "dark"], "ra": [10.0, 11.0, 12.0, 13.0],
                      "dec": [0.0] * 4, "z_phot_median": [0.12, 0.52, 1.1, -99.0],
                      "z_phot_std": [0.01, 0.02, 0.05, 0.0]})
    cfg = ManifestConfig(design="grid", grid_preset="grid_small", injections_per_host=2,
                         host_redshift={"column": "z_phot_median", "err_column": "z_phot_std"})
    plan = host_plan(hosts, cfg)
    assert plan.column("host_status").to_pylist() == ["outside_z_l_bins", "ok", "outside_z_l_bins", "no_redshift"]
    # 0.52 ± 0.02 in the bin [0.45, 0.55): P = Φ(1.5) − Φ(−3.5)
    assert plan.column("z_bin_prob").to_pylist()[1] == pytest.approx(0.93296, abs=1e-4)
    m = build_manifest(hosts, cfg)
    assert set(m.column("host_id").to_pylist()) == {"mid"} and m.num_rows == 2
    assert m.column("z_l").to_pylist() == [pytest.approx(0.52)] * 2
    assert m.column("z_l_err").to_pylist() == [pytest.approx(0.02)] * 2
    assert set(m.column("z_l_source").to_pylist()) == {"column:z_phot_median"}
    assert m.column("z_l_requested").to_pylist() == [pytest.approx(0.5)] * 2


def test_host_redshift_sources_are_checked():
    hosts = pa.table({"galaxy_id": ["a"], "ra": [10.0], "dec": [0.0]})
    with pytest.raises(ConfigError, match="lacks .*flux_g.* photo-z of z_l"):
        build_manifest(hosts, ManifestConfig(design="grid", grid_preset="grid_small"))
    with pytest.raises(ConfigError, match="lacks .*flux_w1"):  # partial photometry is an error too
        build_manifest(hosts.append_column("flux_g", pa.array([1.0])), ManifestConfig())
    # a random design on hosts without photometry: z_l from the prior, and every row says so
    m = build_manifest(hosts, ManifestConfig(injections_per_host=3))
    assert set(m.column("z_l_source").to_pylist()) == {"prior"} and m.column("z_l_err").null_count == 3
    assert all(0.2 <= z <= 0.8 for z in m.column("z_l").to_pylist())
    with pytest.raises(ConfigError, match="lacks .*z_phot_median"):
        build_manifest(hosts, ManifestConfig(host_redshift={"column": "z_phot_median"}))


def test_host_roles_split_hosts_stably_and_disjointly(lrg_hosts):
    roles = {"selection_fraction": 0.3}
    train = build_manifest(lrg_hosts, ManifestConfig(host_roles={**roles, "draw": "train"}))
    sel = build_manifest(lrg_hosts, ManifestConfig(design="grid", grid_preset="grid_small", seed=5,
                                                   host_roles={**roles, "draw": "selection"}))
    t_hosts, s_hosts = set(train.column("host_id").to_pylist()), set(sel.column("host_id").to_pylist())
    assert not t_hosts & s_hosts
    assert set(train.column("host_role").to_pylist()) == {"train"}
    assert set(sel.column("host_role").to_pylist()) == {"selection"}
    every = build_manifest(lrg_hosts, ManifestConfig(seed=99))  # draw "all": roles recorded, not filtered
    role = dict(zip(every.column("host_id").to_pylist(), every.column("host_role").to_pylist()))
    assert 0.2 < list(role.values()).count("selection") / len(role) < 0.4
    assert all(role[h] == "train" for h in t_hosts) and all(role[h] == "selection" for h in s_hosts)


def test_source_colours_other_than_the_project_prior_need_an_explicit_choice():
    assert source_colour_summary(ManifestConfig())["warning"] is None
    with pytest.raises(ValueError, match="nonstandard_source_colours"):
        ManifestConfig(prior_preset="legacy_final")
    cfg = ManifestConfig(prior_preset="legacy_final", nonstandard_source_colours=True)
    summary = source_colour_summary(cfg)
    assert not summary["standard"] and "differ from the project prior" in summary["warning"]
    assert summary["g_minus_r"] == [1.15, 0.30]


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


def _digest(table: pa.Table, drop=()) -> str:
    """SHA-256 over every column but ``drop``, by name and Python values (stable across Arrow versions)."""
    h = hashlib.sha256()
    for name in table.column_names:
        if name not in drop:
            h.update(f"{name}={table.column(name).to_pylist()!r};".encode())
    return h.hexdigest()


_TINY_HOSTS = pa.table({"galaxy_id": ["h0", "h1", "h2", "h3"], "ra": [150.1, 150.2, 210.5, 35.0],
                        "dec": [2.2, -1.0, 10.0, -5.5], "flux_g": [1.2, 0.8, 2.0, 0.6],
                        "flux_r": [4.0, 3.5, 5.0, 3.1], "flux_z": [10.5, 11.0, 11.5, 12.0],
                        "flux_w1": [16.0, 25.0, 19.0, 40.0]})

# Issue 14 changed, deliberately: z_l (the host's redshift, was a prior or grid draw), z_s (drawn
# given that z_l), src_flux_g/z (the one source-colour prior: truncated N(0.35, 0.25), N(0.45,
# 0.30) by inverse CDF, was Box-Muller N(0.35, 0.15), N(0.30, 0.15)) and, for grids, the cell of
# every row (cells are drawn within the host's z_l bin), hence every grid column. Random designs
# keep every other column: digests of the code before issue 14 over the unchanged columns.
_ISSUE14_CHANGED = ("z_l", "z_s", "src_flux_g", "src_flux_z", "z_l_err", "z_l_source", "z_l_requested",
                    "z_l_lo", "z_l_hi", "host_role")
_DIGESTS_BEFORE_ISSUE14 = {
    "tiny_random": "256acfcaf6945b60145935054db2a358ac3149756fa34bfb6b01a416a926803b",
    "lrg_random": "36993be348079d9d5f70a6756cfeb969165feb7dd42dde89a5fc51cb15e0cbe2",
}
# Whole-manifest digests since issue 14 (same seed => same output).
_DIGESTS = {
    "tiny_random": "03c281bc9eafa60f10e19e5fea724000f71ebb0526dbc0b419d8b448cd0ce4da",
    "tiny_grid": "048de0d2031eba6534059a270b922b0fbc18ae21466d7a8cf8256d2975e882c2",
    "lrg_random": "e8f38e4f01f1a24c9f2c2d1c8087a6fbaa91adf80352bc06d2a4102fdd18b5ba",
    "lrg_grid": "32216c91da809601b38ecf689404a3db2edcf24cd5ff43db8a8b26bc6c6eff44",
}


def _digest_cases(lrg_hosts):
    return {
        "tiny_random": (_TINY_HOSTS, ManifestConfig(experiment_id="zs", seed=11, injections_per_host=2)),
        "tiny_grid": (_TINY_HOSTS, ManifestConfig(experiment_id="zs", seed=11, design="grid",
                                                  grid_preset="grid_small", injections_per_host=2)),
        "lrg_random": (lrg_hosts, ManifestConfig(injections_per_host=3, experiment_id="e1", seed=7)),
        "lrg_grid": (lrg_hosts, ManifestConfig(design="grid", grid_preset="grid_medium", injections_per_host=4)),
    }


def test_manifests_are_reproducible_and_random_designs_keep_their_unchanged_columns(lrg_hosts):
    for name, (hosts, cfg) in _digest_cases(lrg_hosts).items():
        m = build_manifest(hosts, cfg)
        assert m.column("z_s").null_count == 0 and m.column("z_l").null_count == 0, name
        assert _digest(m) == _DIGESTS[name], name
        if name in _DIGESTS_BEFORE_ISSUE14:
            assert _digest(m, _ISSUE14_CHANGED) == _DIGESTS_BEFORE_ISSUE14[name], name
    row = build_manifest(_TINY_HOSTS, _digest_cases(lrg_hosts)["tiny_random"][1]).slice(0, 1).to_pylist()[0]
    assert (row["theta_e_arcsec"], row["src_mag_r"]) == (
        pytest.approx(1.4448620080947876, abs=0), pytest.approx(25.22439956665039, abs=0))
    # why it holds: a row's longer draw starts with the same 17 uniforms
    seeds = np.array([3, 2**62 + 5, 123456789], dtype=np.int64)
    old = np.stack([np.random.default_rng(int(s)).random(17) for s in seeds])
    assert N_UNIFORMS == 18 and np.array_equal(_row_uniforms(seeds)[:, :17], old)


@pytest.mark.parametrize("design, extra", [("random", {}), ("grid", {"grid_preset": "grid_full"}),
                                           ("grid", {"grid_preset": "grid_small", "all_cells_per_host": True})])
def test_z_s_is_filled_above_the_lens_and_deterministic(lrg_hosts, design, extra):
    cfg = ManifestConfig(design=design, injections_per_host=6, **extra)
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
    with pytest.raises(ValueError, match="must exceed z_l 3.0"):  # the top edge of the z_l bins
        ManifestConfig(design="grid", grid={"theta_e_arcsec": [1.0], "z_l": [2.7, 2.9], "src_mag_r_edges": [23, 24]})
    with pytest.raises(ValueError, match="z_s: need 0 < lo < hi"):
        ManifestConfig(priors={"z_s": [2.0, 1.0]})
