"""Legacy readers: phase-4c Parquet with npz blobs, failure rows, the psfdepth unit trap."""
from __future__ import annotations

import gzip

import numpy as np
import pyarrow as pa
import pytest

from dhs_gen import storage
from dhs_gen.io.legacy import (
    LegacyFormatError,
    cutout_quality_ok,
    decode_stamp_column,
    iter_cutout_dir,
    legacy_psfdepth_to_mag5,
    read_legacy_stamps,
)
from dhs_gen.io.stamps import Stamp, encode_stamp_npz


def _legacy_table(n=4, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(0, 0.01, (n, 3, 64, 64)).astype(np.float32)
    blobs = [encode_stamp_npz(img) for img in images]
    blobs[1] = gzip.compress(blobs[1])  # some readers met gzip-wrapped npz
    return images, pa.table({
        "task_id": [f"t{i}" for i in range(n)],
        "stamp_npz": pa.array(blobs, pa.binary()),
        "psfdepth_r": pa.array(rng.uniform(23.5, 25.0, n), pa.float64()),
        "cutout_ok": pa.array([1] * n, pa.int64()),
    })


def test_phase4c_partitioned_table_round_trip(tmp_path):
    images, table = _legacy_table()
    for split, rows in (("train", [0, 1]), ("test", [2, 3])):
        storage.write_parquet(table.take(rows), str(tmp_path / f"region_split={split}" / "part-0.parquet"))
    train = read_legacy_stamps(str(tmp_path), region_split="train")
    assert train.column("task_id").to_pylist() == ["t0", "t1"]
    decoded = decode_stamp_column(train.column("stamp_npz"))
    assert decoded.status == ["ok", "ok"] and decoded.bands == "grz"
    np.testing.assert_array_equal(decoded.images, images[:2])


def test_bad_rows_get_status_not_exceptions():
    images, table = _legacy_table(3)
    blobs = table.column("stamp_npz").to_pylist()
    blobs[0] = blobs[0][:100]
    nan_img = images[2].copy()
    nan_img[0, 0, 0] = np.nan
    blobs[2] = encode_stamp_npz(nan_img)
    decoded = decode_stamp_column(blobs + [None])
    assert decoded.status[0].startswith("decode_error: corrupt or truncated npz")
    assert decoded.status[1] == "ok"
    assert decoded.status[2] == "nonfinite_pixels: 1"
    assert decoded.status[3] == "missing_stamp"
    assert decoded.images.shape == (4, 3, 64, 64) and not decoded.images[0].any()


def test_failed_legacy_row_single_band_zeros():
    """Old failed rows hold image_r all zeros with cutout_ok = 0 (bandset r)."""
    blob = encode_stamp_npz(np.zeros((1, 64, 64), np.float32), bands="r")
    decoded = decode_stamp_column([blob], bands="r")
    assert decoded.bands == "r" and decoded.status == ["ok"] and not decoded.images.any()


def test_psfdepth_unit_trap():
    mag = legacy_psfdepth_to_mag5([24.5, 23.9], origin="phase4")
    np.testing.assert_allclose(mag, [24.5, 23.9])
    ivar = np.array([400.0, 2500.0])
    np.testing.assert_allclose(legacy_psfdepth_to_mag5(ivar, "sweep"), 22.5 - 2.5 * np.log10(5 / np.sqrt(ivar)))
    with pytest.raises(LegacyFormatError, match="inverse variance"):
        legacy_psfdepth_to_mag5(ivar, origin="phase4")
    with pytest.raises(LegacyFormatError, match="look like 5-sigma magnitudes"):
        legacy_psfdepth_to_mag5([24.5, 23.9], origin="sweep")


def test_real_cutout_folder(shared_data):
    rows = list(iter_cutout_dir(str(shared_data / "dr10_lens_candidates_npz")))
    assert len(rows) == 6
    for path, stamp, status in rows:
        raw = np.load(path, allow_pickle=False)
        assert status == ("ok" if bool(raw["meta_quality_ok"]) else "quality_not_ok")
        assert cutout_quality_ok(stamp) == bool(raw["meta_quality_ok"])
    assert not cutout_quality_ok(Stamp(image=np.zeros((3, 64, 64), np.float32), bands="grz"))  # wrong size
