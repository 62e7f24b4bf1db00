"""jobs/cutouts.py: spark-submit row accounting, resumable reruns, killed-run cleanup."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dhs_gen.storage import is_complete, read_parquet
from dhs_gen.survey import MockDR10

ROOT = Path(__file__).resolve().parents[2]


def _manifest(path: Path, n: int) -> int:
    cat = MockDR10(seed=0).catalog(n).to_pandas()
    ids = (cat.brickname + "_" + cat.objid.astype(str)).tolist()
    table = pa.table({"galaxy_id": ids + ["bad_dec", "bad_ra"], "ra": cat.ra.tolist() + [10.0, float("nan")],
                      "dec": cat.dec.tolist() + [95.0, 1.0], "psfsize_r": cat.psfsize_r.tolist() + [1.1, 1.2]})
    pq.write_table(table, path)
    return table.num_rows


def test_prepare_output_drops_killed_runs_and_superseded_failures(tmp_path):
    from jobs.cutouts import prepare_output

    out = tmp_path / "out"
    for run, committed in ((0, True), (1, True), (2, False)):
        for part in ("fetched=true", "fetched=false"):
            (out / f"run={run}" / part).mkdir(parents=True)
            (out / f"run={run}" / part / "part-0.parquet").write_bytes(b"x")
        if committed:
            (out / f"run={run}" / "_SUCCESS").write_text("")
    (out / "_SUCCESS").write_text("{}")
    assert prepare_output(str(out)) == [0, 1]
    assert not (out / "run=2").exists()                      # killed run never trusted
    assert not (out / "run=0" / "fetched=false").exists()    # superseded by run 1's retries
    assert (out / "run=0" / "fetched=true").exists() and (out / "run=1" / "fetched=false").exists()
    assert not (out / "_SUCCESS").exists()


@pytest.mark.spark
def test_cutouts_job_spark_submit_then_resume(tmp_path, spark):
    manifest = tmp_path / "manifest.parquet"
    n_in = _manifest(manifest, 200)
    out = tmp_path / "cutouts"
    cmd = ["spark-submit", "--master", "local[2]", str(ROOT / "jobs" / "cutouts.py"), "--manifest", str(manifest),
           "--output", str(out), "--set", "partitions=3"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    assert summary["rows_in"] == summary["rows_out"] == summary["distinct_ids_out"] == n_in
    assert summary["ok"] == n_in - 2 and summary["status_counts"]["bad_position"] == 2
    assert is_complete(str(out))
    table = read_parquet(str(out))
    assert table.num_rows == n_in
    ok = table.filter(pa.compute.equal(table["status"], "ok"))
    from dhs_gen.io.stamps import decode_stamp_npz

    stamp = decode_stamp_npz(ok["cutout"][0].as_py(), nan_policy="report")
    assert stamp.image.shape == (3, 101, 101) and stamp.bands == "grz"
    assert ok["psfsize_r"].null_count == 0 and ok["request_url"][0].as_py().startswith("mock://")
    first = pq.ParquetFile(sorted(out.glob("run=0/fetched=true/*.parquet"))[0]).metadata.row_group(0)
    blob = next(first.column(i) for i in range(first.num_columns) if first.column(i).path_in_schema == "cutout")
    assert blob.compression == "UNCOMPRESSED"  # phase 4c reads these blobs: a codec only costs it CPU

    # a killed run left a directory without _SUCCESS; the rerun removes it, skips fetched rows
    # and retries only the failures
    (out / "run=9" / "fetched=true").mkdir(parents=True)
    (out / "run=9" / "fetched=true" / "part-0.parquet").write_bytes(b"garbage")
    from jobs.cutouts import main

    code = main(["--manifest", str(manifest), "--output", str(out), "--set", "partitions=2"])
    assert code == 0
    summary2 = json.loads((out / "_summary.json").read_text())
    assert summary2["skipped_already_fetched"] == n_in - 2 and summary2["attempted_this_run"] == 2
    assert summary2["rows_out"] == summary2["distinct_ids_out"] == n_in
    assert not (out / "run=9").exists() and not (out / "run=0" / "fetched=false").exists()
    assert read_parquet(str(out)).num_rows == n_in


def test_duplicate_ids_are_refused(tmp_path, spark):
    manifest = tmp_path / "m.parquet"
    pq.write_table(pa.table({"galaxy_id": ["a", "a"], "ra": [1.0, 1.0], "dec": [0.0, 0.0]}), manifest)
    from jobs.cutouts import main

    with pytest.raises(SystemExit, match="duplicate galaxy_id"):
        main(["--manifest", str(manifest), "--output", str(tmp_path / "o")])
    assert sys.modules["jobs.cutouts"]
