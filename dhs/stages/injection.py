"""``make demo`` stage "injection": phase 4a -> 4c for training, and a grid for the selection function.

* training set: the ``random`` design of ``configs/phase4a_demo.yaml`` on the real DR10 LRG hosts
  (all HEALPix splits, so the trainer has train/val/test), injected by phase 4c into mock-survey
  host cutouts -> ``stamps`` (positive, paired control, hard negative per row);
* selection set: the ``grid_small`` design (θ_E x z_l x source magnitude; each host in the z_l
  bin of its photo-z) on the hosts of role ``selection`` only -> ``grid_stamps``; the training
  manifest draws only ``train`` hosts (configs/phase4a_demo.yaml), so the two share no host;
* phase 4d proxy completeness of the grid, and the injection gallery.

Every job runs through ``spark-submit --master local[2]`` (dhs.demo_jobs).
"""
from __future__ import annotations

GRID_PRESET = "grid_small"
GRID_CELLS_PER_HOST = 1


def write_hosts(root: str) -> tuple[str, dict]:
    """The host table (all packaged LRGs with their g, r, z, W1 fluxes); returns (uri, counts)."""
    import pyarrow as pa

    from dhs_gen.catalog.splits import healpix_index, split_from_pixel
    from dhs_gen.storage import join_uri, write_parquet
    from dhs_gen.survey import load_lrg_sample
    from dhs_gen.survey.sky import lrg_galaxy_ids

    lrg = load_lrg_sample()
    split = split_from_pixel(healpix_index(lrg["ra"].to_numpy(), lrg["dec"].to_numpy()))
    hosts = pa.table({
        "galaxy_id": lrg_galaxy_ids(lrg["lrg_index"], lrg["ra"], lrg["dec"]).tolist(),
        "ra": lrg["ra"].to_numpy(), "dec": lrg["dec"].to_numpy(),
        "brickname": lrg["brickname"].astype(str).tolist(), "split": pa.array(list(split), pa.string()),
        **{f"flux_{b}": lrg[f"flux_{b}"].to_numpy() for b in ("g", "r", "z", "w1")},
    })
    all_uri = join_uri(root, "hosts_all.parquet")
    write_parquet(hosts, all_uri)
    return all_uri, {"hosts_all": hosts.num_rows}


def run_demo_stage(root: str, force: bool = False) -> dict:
    """Run the injection chain under ``root`` (build/demo/injection); returns its summary."""
    from dhs.demo_jobs import spark_submit
    from dhs_gen.injection.gallery import render_injection_gallery
    from dhs_gen.resources import config_path
    from dhs_gen.storage import join_uri, local_path

    cfg4a, cfg4c, cfg4d = (str(config_path(f"phase4{x}_demo.yaml")) for x in "acd")
    hosts_all, counts = write_hosts(root)
    out = {k: join_uri(root, k) for k in ("manifest", "stamps", "grid_manifest", "grid_stamps", "proxy")}

    p4a = spark_submit("phase4a_manifest", ["--config", cfg4a, "--set", f"hosts_uri={hosts_all}",
                                            "--output", out["manifest"]])
    p4c = spark_submit("phase4c_inject", ["--config", cfg4c, "--manifest", out["manifest"], "--output", out["stamps"]])
    grid_sets = ["--set", f"hosts_uri={hosts_all}", "--set", "manifest.design=grid",
                 "--set", "manifest.host_roles.draw=selection",
                 "--set", f"manifest.grid_preset={GRID_PRESET}", "--set", "manifest.experiment_id=demo_grid",
                 "--set", "manifest.host_fraction=1.0", "--set", f"manifest.injections_per_host={GRID_CELLS_PER_HOST}",
                 "--set", "manifest.variants=[{source_mode: sersic, gen_variant: gen5_sersic, "
                          "artifact_profile: none, weight: 1.0}]"]
    g4a = spark_submit("phase4a_manifest", ["--config", cfg4a, *grid_sets, "--output", out["grid_manifest"]])
    g4c = spark_submit("phase4c_inject", ["--config", cfg4c, "--manifest", out["grid_manifest"],
                                          "--output", out["grid_stamps"]])
    p4d = spark_submit("phase4d_completeness", ["--config", cfg4d, "--stamps", out["grid_stamps"],
                                                "--output", out["proxy"]])
    gallery = render_injection_gallery(local_path(join_uri(root, "injection_gallery.png")))
    ok = all(s.get("rows_out") == s.get("rows_in") for s in (p4c, g4c))
    return {"status": "ok" if ok else "failed", **out, **counts, "gallery": gallery,
            "phase4a_rows": p4a.get("rows_out"), "phase4c": {k: p4c.get(k) for k in ("rows_in", "rows_out", "ok", "by_status")},
            "hosts_grid": (g4a.get("hosts_by_status") or {}).get("ok"), "grid_z_l": g4a.get("hosts_per_z_l_bin"),
            "grid_source_colours": g4a.get("source_colours"), "grid_rows": g4a.get("rows_out"), "grid_phase4c": {k: g4c.get(k) for k in ("rows_in", "rows_out", "ok", "by_status")},
            "phase4d_rows": p4d.get("rows_out"), "grid_preset": GRID_PRESET}
