"""`dhs selection-function --config …`: scores to tables, summary and figures in one command."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml

from dhs.cli import main as dhs_main
from dhs_gen.data_files import data_path
from dhs_gen.io.stamps import decode_stamp_npz, encode_stamp
from dhs_gen.selection.synthetic import synthetic_selection_set
from dhs_gen.storage import read_parquet, write_parquet


def _real_cutouts() -> list[np.ndarray]:
    files = sorted(Path(data_path("dr10_cutouts")).glob("*.npz"))
    return [decode_stamp_npz(str(f), nan_policy="report").image for f in files]


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    base = tmp_path_factory.mktemp("selcli")
    injections, scores, negatives = synthetic_selection_set(n_per_cell=8, n_negatives=3000, seed=9)
    real = _real_cutouts()
    # injections for the realism audit: real hosts, flipped, plus a smooth ring of light
    y, x = np.mgrid[:101, :101] - 50
    ring = np.exp(-0.5 * ((np.hypot(x, y) - 6.0) / 1.2) ** 2).astype(np.float32)
    blobs = [encode_stamp(real[i % len(real)][:, ::-1, :] + (0.5 + i % 3) * ring * np.float32([[[0.6]], [[1]], [[1.2]]]))
             for i in range(24)]
    blobs += [None] * (injections.num_rows - len(blobs))
    injections = injections.append_column("stamp", pa.array(blobs, type=pa.binary()))
    injections = injections.append_column("host_id", pa.array([f"host{i}" for i in range(injections.num_rows)]))
    uris = {}
    for name, table in (("injections", injections), ("scores", scores), ("negative_scores", negatives)):
        uris[name] = str(base / f"{name}.parquet")
        write_parquet(table, uris[name])
    uris["real"] = str(base / "real.parquet")
    write_parquet(pa.table({"galaxy_id": [f"r{i}" for i in range(len(real))], "cutout_ok": [True] * len(real),
                            "cutout": [encode_stamp(im) for im in real]}), uris["real"])
    cfg = {"injections": uris["injections"], "scores": uris["scores"], "negative_scores": uris["negative_scores"],
           "output": str(base / "out"), "fprs": [0.01, 0.001], "bootstrap": {"n_boot": 50, "nside": 8},
           "provenance": {"allow_unverified": True},
           "realism": {"enabled": True, "real_cutouts": uris["real"], "n_boot": 100, "max_injections": 24}}
    path = base / "selection.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, cfg


def test_one_command_scores_to_figures(config, capsys):
    path, cfg = config
    assert dhs_main(["selection-function", "--config", str(path)]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    out = Path(cfg["output"])
    summary = json.loads((out / "selection_summary.json").read_text())
    assert summary["n_injections"] == line["n_injections"] == 8 * 5 * 8
    assert (out / "_SUCCESS").exists()
    for name in ("completeness", "thresholds", "observability"):
        assert (out / f"{name}.parquet").exists() and (out / f"{name}.json").exists()
    assert read_parquet(str(out / "completeness.parquet")).num_rows > 0
    figs = [Path(f) for f in summary["figures"]]
    assert len(figs) == 4 and all(f.exists() and f.stat().st_size > 20000 for f in figs)
    realism = summary["realism"]
    assert realism["status"] == "ok" and 0.0 <= realism["pixel_stats"]["auc"] <= 1.0
    assert realism["pixel_stats"]["n_real"] == 6 and realism["earlier_pipeline_auc"] == 0.997
    assert 0.95 < summary["observability"]["median_ratio"] < 1.10
    heads = {(h["subset"], h["threshold_kind"], h["threshold_value"]) for h in summary["headline"]}
    assert ("all", "fpr", 0.01) in heads and ("clean", "proxy", 0.8) in heads


def test_from_tables_reuses_written_tables(config):
    path, cfg = config
    assert dhs_main(["selection-function", "--config", str(path), "--from-tables",
                     "--set", "figures=false", "--set", "realism.enabled=false"]) == 0
    summary = json.loads((Path(cfg["output"]) / "selection_summary.json").read_text())
    assert summary["engine"] == "precomputed" and summary["realism"]["status"].startswith("not run")


def test_unverified_model_refused(config, capsys):
    path, _ = config
    assert dhs_main(["selection-function", "--config", str(path), "--set", "provenance.allow_unverified=false"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error: model 'model-a' has no provenance" in err[0]


def test_no_valid_injection_is_a_clear_error(config, tmp_path, capsys):
    path, cfg = config
    empty = str(tmp_path / "scores.parquet")
    scores = read_parquet(cfg["scores"])
    write_parquet(scores.set_column(scores.schema.get_field_index("status"), "status",
                                    pa.array(["nan_input"] * scores.num_rows)), empty)
    assert dhs_main(["selection-function", "--config", str(path), "--set", f"scores={empty}",
                     "--set", f"output={tmp_path / 'out'}", "--set", "realism.enabled=false"]) == 2
    assert "no injection is valid" in capsys.readouterr().err
