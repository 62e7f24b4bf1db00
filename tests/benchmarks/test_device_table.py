"""The device table (``make bench-gpu``) runs end to end on CPU at small sizes."""
from __future__ import annotations

import json

from benchmarks.gpu import COLUMNS, main


def test_device_table_runs_on_cpu_at_small_sizes(tmp_path, capsys):
    assert main(["--device", "cpu", "--models", "small_cnn", "--batch", "8", "--workers", "0",
                 "--score-images", "24", "--score-batch", "16", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "device_table.json").read_text())
    (row,) = report["rows"]
    assert row["model"] == "small_cnn" and row["batch"] == 8 and row["steps_per_epoch"] == 2
    for key in ("train_alone", "trainer", "infer_alone", "scorer_logits", "score_table"):
        assert row[key] > 0, key
    assert row["trainer_efficiency"] == row["trainer"] / row["train_alone"]
    assert row["scorer_efficiency"] == row["score_table"] / row["infer_alone"]
    table = (tmp_path / "device_table.md").read_text().splitlines()
    assert table[2].count("|") == len(COLUMNS) + 1 and "| small_cnn |" in table[4]
