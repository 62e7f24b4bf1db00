"""Shards and loaders: layouts agree, exactly-once per epoch across workers and ranks, pairing."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dhs_gen.io.stamps import encode_stamp, encode_stamp_npz
from training.data.loader import HardNegSchedule, build_training_loader
from training.data.shards import ShardError, convert_to_shards
from training.data.store import ShardStore

from .conftest import synth_pairs, write_stamps_table


def test_layouts_round_trip_identically(tmp_path):
    src = write_stamps_table(tmp_path / "s.parquet", 40, size=16)
    pos, ctrl, _, _ = synth_pairs(40, 16)
    rows = np.array([39, 0, 17, 17, 5])
    got = {}
    for layout in ("npy", "arrow", "parquet"):
        store = ShardStore(convert_to_shards(str(src), str(tmp_path / layout), layout=layout, rows_per_shard=16,
                                             row_group_size=5))
        assert store.n_rows == 40 and store.views == ["stamp", "ctrl_stamp", "hardneg_stamp"]
        ids = store.column("id")
        order = np.array([int(i.split("_")[1]) for i in ids])
        got[layout] = store.gather("stamp", rows)
        np.testing.assert_array_equal(got[layout], pos[order[rows]])
        np.testing.assert_array_equal(store.gather("ctrl_stamp", rows), ctrl[order[rows]])
    assert ShardStore(str(tmp_path / "npy")).data_hash != ShardStore(str(tmp_path / "arrow")).data_hash


def test_legacy_npz_table_and_bad_rows_are_skipped_and_counted(tmp_path):
    pos, ctrl, _, _ = synth_pairs(6, 16)
    blobs = [encode_stamp_npz(x) for x in pos]
    blobs[2] = b"garbage"
    bad = pos[3].copy()
    bad[0, 0, 0] = np.nan
    blobs[3] = encode_stamp_npz(bad)
    table = pa.table({"task_id": [f"t{i}" for i in range(6)], "stamp_npz": pa.array(blobs, pa.binary()),
                      "ctrl_stamp_npz": pa.array([encode_stamp_npz(x) for x in ctrl], pa.binary()),
                      "psfdepth_r": np.full(6, 23.9), "cutout_ok": [1, 1, 1, 1, 0, 1],
                      "is_control": [0, 1, 0, 0, 0, 0]})
    (tmp_path / "src" / "region_split=train").mkdir(parents=True)
    pq.write_table(table, tmp_path / "src" / "region_split=train" / "part-0.parquet")
    # a legacy table carries no _SUCCESS marker: read it as it is
    store = ShardStore(convert_to_shards(str(tmp_path / "src"), str(tmp_path / "out"), allow_partial=True))
    assert sorted(store.column("id")) == ["t0", "t1", "t5"]
    assert store.index["skipped"] == {"stamp:decode_error": 1, "stamp:nonfinite_pixels": 1, "cutout_not_ok": 1}
    np.testing.assert_allclose(store.column("psfdepth_r_mag5"), 23.9)
    assert set(store.column("split")) == {"train"}
    assert dict(zip(store.column("id"), store.column("label"))) == {"t0": 1, "t1": 0, "t5": 1}
    loader = build_training_loader(str(tmp_path / "out"), "train", batch_pairs=1, train=False, num_workers=0,
                                   rank=0, world_size=1, store=store)
    ids = store.column("id")
    assert sorted({ids[r] for b in loader for r in b["row"].numpy()}) == ["t0", "t5"]  # control row t1 is no pair


def test_manifest_with_refs(tmp_path):
    pos, ctrl, _, _ = synth_pairs(4, 16)
    pq.write_table(pa.table({"cutout": pa.array([encode_stamp(x) for x in ctrl], pa.binary())}),
                   tmp_path / "cutouts.parquet")
    (tmp_path / "one.npz").write_bytes(encode_stamp_npz(pos[0]))
    manifest = pa.table({"galaxy_id": ["g0", "g1", "g2", "g3"],
                         "stamp_ref": ["cutouts.parquet#1", "cutouts.parquet#3", "one.npz", "missing.npz"],
                         "label": pa.array([0, 0, 1, 1], pa.int8()), "sample_weight": pa.array([1, 1, 2, 2], pa.float32()),
                         "split": ["train", "val", "train", "train"], "tier": ["N1", "N2", "A", "B"]})
    pq.write_table(manifest, tmp_path / "manifest.parquet")
    store = ShardStore(convert_to_shards(str(tmp_path / "manifest.parquet"), str(tmp_path / "out")))
    assert list(store.column("id")) == ["g0", "g1", "g2"]
    assert store.index["skipped"] == {"stamp:missing_stamp": 1}
    np.testing.assert_array_equal(store.gather("stamp", np.array([0, 1, 2])), np.stack([ctrl[1], ctrl[3], pos[0]]))
    assert list(store.column("label")) == [0, 0, 1]


def test_bad_sources_raise_clearly(tmp_path):
    pq.write_table(pa.table({"x": [1]}), tmp_path / "x.parquet")
    with pytest.raises(ShardError, match="no stamp column"):
        convert_to_shards(str(tmp_path / "x.parquet"), str(tmp_path / "o"))
    with pytest.raises(ShardError, match="layout"):
        convert_to_shards(str(tmp_path / "x.parquet"), str(tmp_path / "o"), layout="zarr")
    with pytest.raises(ShardError, match="no shard index"):
        ShardStore(str(tmp_path / "nothing"))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_every_sample_once_per_epoch_across_workers_and_ranks(paired_shards, num_workers):
    store = ShardStore(paired_shards)
    train_rows = set(np.flatnonzero(store.column("split") == "train"))
    assert len(train_rows) == 48
    orders = []
    for epoch in (0, 1):
        seen = []
        for rank in (0, 1):
            loader = build_training_loader(paired_shards, "train", batch_size=5, rank=rank, world_size=2,
                                           num_workers=num_workers, drop_last=False, store=store)
            loader.sampler.set_epoch(epoch)
            rows = [b["row"].numpy() for b in loader]
            assert all(b.shape[0] <= 5 for b in rows)
            seen.append(np.concatenate(rows))
        allrows = np.concatenate(seen)
        assert len(allrows) == len(train_rows) and set(allrows) == train_rows  # exactly once
        assert not set(seen[0]) & set(seen[1])
        orders.append(allrows)
    assert not np.array_equal(orders[0], orders[1])  # set_epoch reshuffles


def test_eval_keeps_every_row_once_without_padding(paired_shards):
    store = ShardStore(paired_shards)
    val = np.flatnonzero(store.column("split") == "val")
    seen = []
    for rank in range(3):  # 48 rows over 3 ranks, odd batch size
        loader = build_training_loader(paired_shards, "val", batch_size=7, train=False, rank=rank, world_size=3,
                                       num_workers=0, store=store)
        seen += [b["row"].numpy() for b in loader]
    assert sorted(np.concatenate(seen)) == sorted(val)


def test_paired_batches_hold_positives_with_their_own_negatives(paired_shards):
    store = ShardStore(paired_shards)
    sched = HardNegSchedule(0.5, 0.2, anneal_epochs=3)
    assert sched(0) == 0.5 and sched(3) == pytest.approx(0.2) and sched(10) == pytest.approx(0.2)
    loader = build_training_loader(paired_shards, "train", batch_pairs=8, num_workers=0, hard_neg=sched,
                                   rank=0, world_size=1, store=store)
    n_hard = n_neg = 0
    for batch in loader:
        rows, label, view = batch["row"].numpy(), batch["label"].numpy(), batch["view"].numpy()
        assert len(rows) == 16
        np.testing.assert_array_equal(rows[:8], rows[8:])  # each positive's negative is its own host
        assert label[:8].tolist() == [1] * 8 and label[8:].tolist() == [0] * 8
        n_hard += int((view[8:] == 2).sum())
        n_neg += 8
        np.testing.assert_array_equal(batch["image"][:8].numpy(), store.gather("stamp", rows[:8]))
        assert np.all(batch["theta_e"][:8].numpy() > 0) and np.all(batch["theta_e"][8:].numpy() == 0)
    assert 0.2 < n_hard / n_neg < 0.8  # p_hard = 0.5 at epoch 0
    ev = build_training_loader(paired_shards, "val", batch_pairs=8, train=False, num_workers=0, store=store,
                               rank=0, world_size=1)
    views = np.concatenate([b["view"].numpy() for b in ev])
    assert np.bincount(views).tolist() == [48, 48, 48]


def test_cli_converts_a_cutout_folder(tmp_path, capsys):
    from dhs.cli import main as dhs

    pos, _, _, _ = synth_pairs(3, 16)
    (tmp_path / "cut").mkdir()
    for i, x in enumerate(pos):
        (tmp_path / "cut" / f"g{i}.npz").write_bytes(encode_stamp_npz(x))
    assert dhs(["shards", str(tmp_path / "cut"), str(tmp_path / "out")]) == 2  # no label/split: refused
    assert "label" in capsys.readouterr().err
    assert dhs(["shards", str(tmp_path / "cut"), str(tmp_path / "out"), "--label", "1", "--split", "train",
                "--layout", "arrow"]) == 0
    store = ShardStore(str(tmp_path / "out"))
    assert sorted(store.column("id")) == ["g0", "g1", "g2"] and set(store.column("label")) == {1}
    assert store.layout == "arrow"


def test_real_dr10_cutouts_to_shards_and_frozen_model_scores(tmp_path):
    """The packaged real DR10 cutouts (101x101 g,r,z npz) convert, crop to 64 and score."""
    from dhs_gen.data_files import data_path
    from dhs_gen.io.stamps import decode_stamp_npz
    from training.export import export_frozen_model, load_frozen_model
    from training.models import build_model

    folder = data_path("dr10_cutouts")
    store = ShardStore(convert_to_shards(str(folder), str(tmp_path / "real"), label=1, split="test"))
    assert store.shape == (3, 101, 101) and store.n_rows + sum(store.index["skipped"].values()) == 6
    first = store.column("id")[0]
    np.testing.assert_array_equal(store.gather("stamp", np.array([0]))[0],
                                  decode_stamp_npz(folder / f"{first}.npz", nan_policy="report").image)
    out = tmp_path / "frozen"
    export_frozen_model(build_model("small_cnn").eval(), {}, str(out), data_manifest_hash=store.data_hash,
                        preprocess={"crop": 64, "norm": "outer_mad"})
    logits = load_frozen_model(str(out)).predict_logits(store.gather("stamp", np.arange(store.n_rows)))
    assert logits.shape == (store.n_rows,) and np.all(np.isfinite(logits))


def test_parallel_conversion_is_identical(tmp_path):
    src = write_stamps_table(tmp_path / "s.parquet", 48, size=16)
    one = ShardStore(convert_to_shards(str(src), str(tmp_path / "a"), rows_per_shard=8))
    two = ShardStore(convert_to_shards(str(src), str(tmp_path / "b"), rows_per_shard=8, workers=2))
    assert one.data_hash == two.data_hash and len(one.index["shards"]) == 6


def test_convert_from_s3_source(s3_bucket, tmp_path):
    from dhs_gen.storage import mark_complete, write_bytes

    src = write_stamps_table(tmp_path / "s.parquet", 8, size=16)
    uri = f"{s3_bucket}/phase4c/stamps/part-0.parquet"
    write_bytes(uri, src.read_bytes())
    mark_complete(f"{s3_bucket}/phase4c/stamps", {"rows_out": 8})
    store = ShardStore(convert_to_shards(f"{s3_bucket}/phase4c/stamps", str(tmp_path / "out")))
    assert store.n_rows == 8 and store.index["source"].startswith("s3://")
    with pytest.raises(ShardError, match="local"):
        convert_to_shards(f"{s3_bucket}/phase4c/stamps", f"{s3_bucket}/shards")
