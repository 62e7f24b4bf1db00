"""``dhs ablate``: the statistics on planted differences, config checks, and a tiny real matrix
(2 variants x 2 seeds of the small CNN through torchrun) that resumes and reports a failed cell."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from dhs.ablate import AblationConfig, compare, main, table

from .conftest import write_stamps_table

FPR = 0.05


def _cfg(tmp_path, **kw) -> AblationConfig:
    data = {"base_config": "configs/train_demo.yaml", "shards": "unused", "out_dir": str(tmp_path / "abl"),
            "baseline": "base", "variants": [{"name": "base"}, {"name": "better"}, {"name": "same"}],
            "seeds": [1, 2], "stats": {"fprs": [FPR], "primary_metric": f"tpr@{FPR:g}", "n_boot": 200}}
    data.update(kw)
    return AblationConfig.model_validate(data)


def _planted_predictions(rng, n_per_split=1500):
    """Scores of base / better (a real gain) / same (the baseline's distribution) on val and test."""
    frames = []
    for split in ("val", "test"):
        y = rng.random(n_per_split) < 0.4
        frame = pd.DataFrame({"split": split, "label": y.astype(int), "id": [f"{split}{i}" for i in range(y.size)],
                              "ra": rng.uniform(150, 160, y.size), "dec": rng.uniform(0, 10, y.size)})
        for seed in (1, 2):
            common = rng.normal(size=y.size)
            frame[f"logit__base/seed{seed}"] = np.where(y, 1.5, 0) + common
            frame[f"logit__better/seed{seed}"] = np.where(y, 2.5, 0) + common + 0.3 * rng.normal(size=y.size)
            frame[f"logit__same/seed{seed}"] = np.where(y, 1.5, 0) + rng.normal(size=y.size)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _cells(variants=("base", "better", "same"), seeds=(1, 2)):
    return [{"variant": v, "seed": s, "status": "ok"} for v in variants for s in seeds]


def test_compare_tells_a_planted_gain_from_a_copy(tmp_path):
    cfg = _cfg(tmp_path)
    result = compare(cfg, _cells(), _planted_predictions(np.random.default_rng(0)), None)
    diff = {(d["variant"], d["metric"]): d for d in result["differences"]}
    better, same = diff[("better", f"tpr@{FPR:g}")], diff[("same", f"tpr@{FPR:g}")]
    assert better["lo"] > 0 and better["significant_after_holm"]
    assert not same["significant_after_holm"] and same["lo"] <= 0 <= same["hi"]
    assert {r["variant"] for r in result["variants"]} == {"base", "better", "same", "ensemble"}
    assert result["ensemble"]["members"][0] == "better"  # chosen on validation
    assert {m["variant"] for m in result["mcnemar"]} == {"better", "same"} and len(result["mcnemar"]) == 4
    tab = table(result, cfg)
    assert set(tab["variant"]) == {"base", "better", "same", "ensemble"}
    row = tab.set_index("variant").loc["better"]
    assert row[f"tpr@{FPR:g}_seed_std"] >= 0 and row[f"tpr@{FPR:g}_delta"] > 0


def test_compare_needs_the_baseline(tmp_path):
    cfg = _cfg(tmp_path)
    cells = _cells() + [{"variant": "base", "seed": 3, "status": "failed"}]
    cells = [c for c in cells if c["variant"] != "base" or c["status"] == "failed"]
    with pytest.raises(ValueError, match="baseline"):
        compare(cfg, cells, _planted_predictions(np.random.default_rng(1)), None)


@pytest.mark.parametrize("change, message", [
    ({"baseline": "nope"}, "baseline"),
    ({"seeds": [1, 1]}, "distinct"),
    ({"seeds": [1]}, "at least 2"),
    ({"variants": [{"name": "base"}, {"name": "base"}]}, "unique"),
    ({"variants": [{"name": "base"}, {"name": "ensemble"}]}, "reserved"),
    ({"stats": {"fprs": [0.01], "primary_metric": "tpr@0.5"}}, "primary_metric"),
])
def test_config_errors_name_the_problem(tmp_path, change, message):
    with pytest.raises(ValidationError, match=message):
        _cfg(tmp_path, **change)


def _with_sky(path, rng, splits):
    table = pq.read_table(path)
    n = table.num_rows
    table = table.set_column(table.schema.get_field_index("region_split"), "region_split",
                             pa.array(np.array(splits)[np.arange(n) % len(splits)].tolist()))
    table = table.append_column("ra", pa.array(rng.uniform(150, 170, n))).append_column(
        "dec", pa.array(rng.uniform(-5, 15, n)))
    pq.write_table(table, path)
    return path


def test_tiny_matrix_trains_compares_resumes_and_reports_a_failed_cell(tmp_path, capsys):
    from training.data.shards import convert_to_shards

    rng = np.random.default_rng(2)
    stamps = _with_sky(write_stamps_table(tmp_path / "stamps.parquet", 240, size=24, seed=3, arc_amp=0.05),
                       rng, ("train", "val", "test"))
    shards = convert_to_shards(str(stamps), str(tmp_path / "shards"))
    grid = _with_sky(write_stamps_table(tmp_path / "grid.parquet", 60, size=24, seed=9), rng, ("test",))
    neg = pq.read_table(grid).select(["host_id", "ctrl_stamp", "ra", "dec"]).rename_columns(
        ["galaxy_id", "cutout", "ra", "dec"])
    pq.write_table(neg, tmp_path / "negatives.parquet")
    config = {"base_config": "configs/train_demo.yaml", "shards": shards, "out_dir": str(tmp_path / "abl"),
              "baseline": "baseline", "seeds": [1, 2],
              "variants": [{"name": "baseline"},
                           {"name": "focal", "set": ["optim.loss=focal"]},
                           {"name": "broken", "set": ["optim.no_such_field=1"]}],
              "common_set": ["optim.epochs=1", "data.num_workers=0", "data.batch_size=32", "run.tensorboard=false"],
              "selection": {"injections": str(grid), "negatives": str(tmp_path / "negatives.parquet"),
                            "theta_e_edges": [1.0, 1.6, 2.2]},
              "stats": {"fprs": [0.1], "primary_metric": "tpr@0.1", "n_boot": 100, "region_nside": 4}}
    path = tmp_path / "ablation.yaml"
    path.write_text(json.dumps(config))
    assert main(["--config", str(path)]) == 1  # the broken variant's cells failed: reported, exit 1
    out = json.loads((tmp_path / "abl" / "ablation.json").read_text())
    assert sorted(out["failed_cells"]) == ["broken/seed1", "broken/seed2"]
    assert {r["variant"] for r in out["variants"]} == {"baseline", "focal", "ensemble"}
    assert out["completeness"] and out["completeness"][0]["completeness"]["baseline"]["per_seed"]
    assert (tmp_path / "abl" / "ablation_completeness.pdf").exists()
    assert (tmp_path / "abl" / "ablation_table.csv").read_text().startswith("variant,")
    capsys.readouterr()
    config["variants"] = config["variants"][:2]
    path.write_text(json.dumps(config))
    assert main(["--config", str(path)]) == 0  # rerun: every finished cell is skipped
    again = json.loads((tmp_path / "abl" / "ablation.json").read_text())
    assert all(c.get("skipped") for c in again["cells"])
    assert again["differences"] == out["differences"]


def test_too_few_regions_fall_back_to_galaxy_blocks_and_say_so(tmp_path):
    from dhs.ablate import resampling_blocks

    stats = _cfg(tmp_path).stats
    rng = np.random.default_rng(5)
    wide = pd.DataFrame({"id": np.repeat(np.arange(500), 2), "ra": np.repeat(rng.uniform(0, 360, 500), 2),
                         "dec": np.repeat(rng.uniform(-60, 60, 500), 2)})
    blocks, how = resampling_blocks(wide, stats)
    assert how.startswith("HEALPix") and np.unique(blocks).size >= stats.min_regions
    narrow = wide.assign(ra=150.0 + wide["ra"] / 1e4, dec=2.0)
    blocks, how = resampling_blocks(narrow, stats)
    assert how.startswith("galaxies: only 1 HEALPix region")
    assert np.unique(blocks).size == 500 and blocks[0] == blocks[1]  # a galaxy's rows stay together
