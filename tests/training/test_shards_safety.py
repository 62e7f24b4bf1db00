"""training/data/shards.py: the source is checked before the shard set is touched; unfinished
sources refused; the expected stamp shape is declared, never the first row's (issue 20, 1-3, 8)."""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dhs_gen import storage
from dhs_gen.io.stamps import encode_stamp
from training.data.shards import ShardError, convert_to_shards, main
from training.data.store import ShardStore

from .conftest import synth_pairs, write_stamps_table


def _stamps_dataset(folder, n=40, size=16, declared=True, odd_first=False, complete=True):
    """A stamps dataset folder (one file) with ``n`` rows; ``odd_first``: row 0 is an 8x8 stamp."""
    os.makedirs(folder, exist_ok=True)
    path = write_stamps_table(os.path.join(folder, "part-0.parquet"), n, size=size)
    table = pq.read_table(path)
    if odd_first:
        small = encode_stamp(np.ones((3, 8, 8), np.float32))
        for view in ("stamp", "ctrl_stamp", "hardneg_stamp"):
            blobs = table.column(view).to_pylist()
            blobs[0] = small
            table = table.set_column(table.schema.get_field_index(view), view, pa.array(blobs, pa.binary()))
    if declared:
        table = table.append_column("stamp_size", pa.array(np.full(n, size, np.int32)))
    pq.write_table(table, path)
    if complete:
        storage.mark_complete(str(folder), {"rows_out": n})
    return str(folder)


def test_a_mistyped_source_leaves_the_shard_set_intact(tmp_path):
    src = _stamps_dataset(tmp_path / "stamps")
    index = convert_to_shards(src, str(tmp_path / "shards"), rows_per_shard=16)
    before = sorted(os.listdir(tmp_path / "shards"))
    with pytest.raises(ShardError, match="source not found"):
        convert_to_shards(str(tmp_path / "stamsp"), str(tmp_path / "shards"), force=True)
    assert sorted(os.listdir(tmp_path / "shards")) == before and ShardStore(index).n_rows == 40


def test_unfinished_source_is_refused_and_allow_partial_reads_it(tmp_path, capsys):
    src = _stamps_dataset(tmp_path / "killed", complete=False)
    assert main([src, str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no _SUCCESS marker" in err and not (tmp_path / "out").exists()
    assert ShardStore(convert_to_shards(src, str(tmp_path / "out"), allow_partial=True)).n_rows == 40


def test_zero_byte_file_in_the_source_is_skipped(tmp_path):
    src = _stamps_dataset(tmp_path / "stamps")
    (tmp_path / "stamps" / "part-1.parquet").write_bytes(b"")
    assert ShardStore(convert_to_shards(src, str(tmp_path / "out"))).n_rows == 40


@pytest.mark.parametrize("declared", [True, False])
def test_one_odd_stamp_first_does_not_drop_the_good_ones(tmp_path, declared):
    src = _stamps_dataset(tmp_path / "stamps", n=40, declared=declared, odd_first=True)
    store = ShardStore(convert_to_shards(src, str(tmp_path / "out"), rows_per_shard=64))
    assert store.n_rows == 39 and store.index["image_shape"] == [3, 16, 16]
    assert store.index["skipped"] == {"stamp:shape_mismatch": 1}


def test_explicit_stamp_size_wins(tmp_path):
    src = _stamps_dataset(tmp_path / "stamps", declared=False)
    with pytest.raises(ShardError, match="no usable rows"):
        convert_to_shards(src, str(tmp_path / "out"), stamp_size=20)


def test_foreign_files_and_overlap_are_refused(tmp_path):
    src = _stamps_dataset(tmp_path / "stamps")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ShardError, match="not training shards"):
        convert_to_shards(src, str(tmp_path / "mine"))
    with pytest.raises(ShardError, match="is inside the source"):
        convert_to_shards(src, str(tmp_path / "stamps" / "shards"))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_truncated_and_tiny_blobs_become_row_statuses(tmp_path):
    pos, _, _, _ = synth_pairs(5, 16)
    blobs = [encode_stamp(x) for x in pos]
    blobs[1] = blobs[1][:-100]  # truncated
    blobs[2] = blobs[2][:10]  # 10 bytes
    pq.write_table(pa.table({"task_id": [f"t{i}" for i in range(5)], "split": ["train"] * 5,
                             "stamp": pa.array(blobs, pa.binary())}), tmp_path / "s.parquet")
    store = ShardStore(convert_to_shards(str(tmp_path / "s.parquet"), str(tmp_path / "out")))
    assert store.n_rows == 3 and store.index["skipped"] == {"stamp:decode_error": 2}
