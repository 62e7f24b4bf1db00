"""Phase 4c host stage (inject._Hosts): hosts measured a chunk at a time give what the whole
batch measured at once gives."""
import numpy as np

from dhs_gen.data_files import DATA_DIR
from dhs_gen.injection import inject
from dhs_gen.injection.metrics import noise_autocovariance, outer_sigma
from dhs_gen.io.stamps import decode_stamp_npz, encode_stamp
from dhs_gen.schemas import STATUS_OK


def test_hosts_in_chunks_equal_the_batch_measures_with_duplicates_and_bad_rows():
    real = [decode_stamp_npz(f).image for f in sorted((DATA_DIR / "dr10_cutouts").glob("*.npz"))]
    rng = np.random.default_rng(8)
    n_hosts = 2 * inject.HOST_CHUNK + 3  # whole chunks and a partial one
    images = [real[i % len(real)] + rng.normal(0.0, 0.002, (3, 101, 101)).astype(np.float32) for i in range(n_hosts)]
    images[3][:, 40:60, 40:60] = np.nan  # central non-finite: bad_cutout, still measured
    images[5][1, :4, :] = np.nan  # outer NaNs: the NaN-aware σ path
    blobs = [encode_stamp(im) for im in images]
    ids = [f"h{i}" for i in range(n_hosts)]
    order = list(range(n_hosts)) + [3, 2, 9]  # repeats: the bad host 3 first (its status is copied)
    rows_ids, rows_blobs = [ids[i] for i in order] + ["gone", "junk"], [blobs[i] for i in order] + [None, b"DHSSTMP1xx"]
    status = np.array([STATUS_OK] * len(rows_ids), dtype=object)
    hosts = inject._Hosts(rows_ids, rows_blobs, 64, 0.05, status)

    stack = np.stack([images[i] for i in order])
    np.testing.assert_array_equal(hosts.sigma[:len(order)], outer_sigma(stack))
    np.testing.assert_array_equal(hosts.acov_r[:len(order)], noise_autocovariance(stack[:, 1]))
    crops = np.nan_to_num(stack[:, :, 18:82, 18:82], nan=0.0)
    np.testing.assert_array_equal(hosts.images[:len(order)], crops)
    bad = np.isnan(stack[:, :, 18:82, 18:82]).mean(axis=(1, 2, 3))
    np.testing.assert_array_equal(hosts.bad_frac[:len(order)], bad)
    assert status[3].startswith("bad_cutout: central") and status[n_hosts] == status[3]
    assert list(status[[0, 1, 2, 5, n_hosts + 1, n_hosts + 2]]) == [STATUS_OK] * 6
    assert status[-2] == "missing_cutout" and status[-1].startswith("bad_cutout")
    assert not hosts.ok[3] and not hosts.ok[n_hosts] and hosts.ok[[0, 1, 2, 5, n_hosts + 1, n_hosts + 2]].all()
    assert np.isnan(hosts.sigma[-2:]).all() and np.isnan(hosts.acov_r[-2:]).all()
    assert not hosts.images[-2:].any()  # rows without a host: zeros (the array is not zeroed as a whole)
