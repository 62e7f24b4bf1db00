"""jobs/common.py: inputs and config checked on the driver first; outputs never overlap inputs,
only a job's own earlier output is replaced, and it is replaced by a swap (issue 20, items 1-2)."""
from __future__ import annotations

import json
import os

import pyarrow as pa
import pytest

from dhs_gen import storage
from dhs_gen.config import ConfigError, StrictModel


def _dataset(path, rows=10, complete=True, rows_out=None):
    storage.write_parquet(pa.table({"task_id": [f"t{i}" for i in range(rows)]}), str(path / "part-0.parquet"))
    if complete:
        storage.mark_complete(str(path), {"rows_out": rows if rows_out is None else rows_out})
    return str(path)


def _tree(path) -> dict:
    return {os.path.relpath(os.path.join(d, f), path): os.path.getsize(os.path.join(d, f))
            for d, _, files in os.walk(path) for f in files}


def test_phase4c_refuses_output_equal_to_manifest_and_keeps_it(tmp_path):
    from jobs.phase4c_inject import main

    manifest = _dataset(tmp_path / "manifest")
    before = _tree(manifest)
    with pytest.raises(storage.DatasetError, match="is the input manifest"):
        main(["--manifest", manifest, "--output", manifest])
    with pytest.raises(storage.DatasetError, match="is inside the input manifest"):
        main(["--manifest", manifest, "--output", os.path.join(manifest, "stamps")])
    with pytest.raises(storage.DatasetError, match="contains the input manifest"):
        main(["--manifest", manifest, "--output", str(tmp_path)])
    assert _tree(manifest) == before


def test_phase4c_never_deletes_a_folder_it_did_not_write(tmp_path):
    from jobs.phase4c_inject import main

    manifest = _dataset(tmp_path / "manifest")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(storage.DatasetError, match="not an earlier output of phase4c"):
        main(["--manifest", manifest, "--output", str(out)])
    assert (out / "notes.txt").read_text() == "mine"


def test_provider_typo_fails_on_the_driver_and_keeps_a_complete_output(tmp_path):
    from jobs.phase4c_inject import main

    manifest = _dataset(tmp_path / "manifest")
    out = _dataset(tmp_path / "stamps", rows=7)
    storage.write_json(storage.join_uri(out, "_summary.json"), {"job": "phase4c", "rows_out": 7})
    before = _tree(out)
    with pytest.raises(ConfigError, match="kind"):
        main(["--manifest", manifest, "--output", out, "--set", "provider.kind=mok"])
    assert _tree(out) == before and storage.count_parquet_rows(out) == 7


def test_unfinished_inputs_are_refused_with_one_line(tmp_path):
    from jobs.phase4c_inject import main
    from jobs.phase4d_completeness import main as phase4d

    killed = _dataset(tmp_path / "killed", complete=False)  # a killed phase 4c: no _SUCCESS
    with pytest.raises(storage.DatasetError, match="no _SUCCESS marker") as err:
        phase4d(["--stamps", killed, "--output", str(tmp_path / "p4d")])
    assert "\n" not in str(err.value) and "--allow-partial" in str(err.value)
    half = _dataset(tmp_path / "half", rows=364, rows_out=728)  # marker but half the rows
    with pytest.raises(storage.DatasetError, match="holds 364 rows but its _SUCCESS summary says rows_out=728"):
        main(["--manifest", half, "--output", str(tmp_path / "s")])
    assert not (tmp_path / "p4d").exists() and not (tmp_path / "s").exists()


class _Cfg(StrictModel):
    rows: int = 3


def _run(argv, body, name="demo-job"):
    from jobs.common import JobInput, job_parser, run_spark_job

    parser = job_parser("test")
    parser.add_argument("--input")
    parser.add_argument("--output")
    return run_spark_job(name, argv, parser, _Cfg, body, inputs=lambda a, c: [JobInput("input", a.input)])


def _write_body(rows, fail=False):
    def body(spark, cfg, args):
        part = storage.join_uri(args.output, "part-0.parquet")
        storage.write_parquet(pa.table({"x": list(range(rows))}), part)
        if fail:
            raise RuntimeError("boom after writing")
        storage.mark_complete(args.output, {"rows_out": rows})
        return {"rows_out": rows, "file": part}
    return body


@pytest.mark.spark
def test_output_is_swapped_in_and_a_failed_rerun_keeps_the_previous_one(spark, tmp_path):
    src = _dataset(tmp_path / "in")
    out = str(tmp_path / "out")
    _run(["--input", src, "--output", out], _write_body(5))
    assert storage.count_parquet_rows(out) == 5 and storage.dataset_job(out) == "demo-job"
    with pytest.raises(RuntimeError, match="boom"):
        _run(["--input", src, "--output", out], _write_body(9, fail=True))
    assert storage.count_parquet_rows(out) == 5 and storage.is_complete(out)
    summary = _run(["--input", src, "--output", out], _write_body(8))  # own earlier output: replaced
    assert storage.count_parquet_rows(out) == 8
    assert summary["file"] == os.path.join(out, "part-0.parquet")  # paths reported name the final output
    assert sorted(os.listdir(tmp_path)) == ["in", "out"]  # no staging or replaced folders left
    resolved = (tmp_path / "out" / "_resolved_config.yaml").read_text()
    assert "staging" not in resolved
    # another job's output is not replaced
    with pytest.raises(storage.DatasetError, match="not an earlier output of other-job"):
        _run(["--input", src, "--output", out], _write_body(1), name="other-job")
    assert json.loads((tmp_path / "out" / "_summary.json").read_text())["job"] == "demo-job"


@pytest.mark.spark
def test_killed_staging_is_cleaned_and_an_unvouched_spark_marker_dropped(spark, tmp_path):
    src = _dataset(tmp_path / "in")
    out = str(tmp_path / "out")
    leftover = tmp_path / ".out.dhs-staging-deadbeef0000"
    leftover.mkdir()
    (leftover / "part-0.parquet").write_bytes(b"half")

    def spark_marker_only(spark, cfg, args):  # like a job whose gates failed after Spark wrote
        storage.write_parquet(pa.table({"x": [1]}), storage.join_uri(args.output, "part-0.parquet"))
        open(os.path.join(args.output, "_SUCCESS"), "wb").close()
        return {"rows_out": 1}

    _run(["--input", src, "--output", out], spark_marker_only)
    assert not leftover.exists() and not storage.is_complete(out)
