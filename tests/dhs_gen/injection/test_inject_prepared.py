"""Hosts cropped before the join (prepare_host_cutouts) give the same stamps as full cutouts."""
import numpy as np
import pyarrow as pa

from dhs_gen.injection.inject import PREPARED_HOSTS_SCHEMA, InjectConfig, inject_batch, prepare_host_cutouts
from dhs_gen.injection.manifest import ManifestConfig, build_manifest
from dhs_gen.injection.metrics import outer_sigma
from dhs_gen.io.stamps import decode_canonical_image, encode_stamp


def _cutout_index(hosts: pa.Table, blobs: dict) -> pa.Table:
    ids = hosts.column("galaxy_id").to_pylist()
    return pa.table({"galaxy_id": ids, "cutout": pa.array([blobs[h] for h in ids], pa.binary()),
                     "status": ["ok"] * len(ids),
                     **{f"psfsize_{b}": hosts.column(f"psfsize_{b}") for b in "grz"}})


def _joined(manifest: pa.Table, prepared: pa.Table) -> pa.Table:
    rows = {h: i for i, h in enumerate(prepared.column("host_id").to_pylist())}
    take = prepared.take(pa.array([rows.get(h) for h in manifest.column("host_id").to_pylist()], pa.int64()))
    for name in prepared.column_names[1:]:
        manifest = manifest.append_column(name, take.column(name))
    return manifest


def test_prepared_hosts_give_identical_stamps(real_hosts, with_cutouts):
    hosts, blobs = real_hosts
    blobs = dict(blobs)
    ids = hosts.column("galaxy_id").to_pylist()
    img = decode_canonical_image(blobs[ids[0]]).copy()
    img[:, :12, :] = np.nan  # outer-ring NaNs: the noise must still come from the full cutout
    blobs[ids[0]] = encode_stamp(img, "grz")
    blobs[ids[1]] = encode_stamp(img[:, :40, :40].copy(), "grz")  # smaller than the stamp
    variants = [{"source_mode": "sersic", "artifact_profile": "strong"}, {"source_mode": "sersic"}]
    m = build_manifest(hosts, ManifestConfig(injections_per_host=3, seed=5, variants=variants))
    cfg = InjectConfig(arc_poisson=True)

    prepared = prepare_host_cutouts(_cutout_index(hosts, blobs), cfg.stamp_size)
    assert prepared.schema.equals(PREPARED_HOSTS_SCHEMA)
    full_sigma = outer_sigma(img[None])[0]
    np.testing.assert_array_equal([prepared.column(f"cutout_sigma_{b}")[0].as_py() for b in "grz"], full_sigma)
    assert prepared.column("cutout_offset_pix")[0].as_py() == 0.5
    assert prepared.column("cutout")[1].as_py() is None
    assert prepared.column("cutout_status")[1].as_py().startswith("bad_cutout: shape")
    assert decode_canonical_image(prepared.column("cutout")[2].as_py()).shape == (3, 64, 64)

    reference = with_cutouts(m, blobs)
    for b in "grz":
        reference = reference.append_column(f"cutout_psfsize_{b}", hosts.column(f"psfsize_{b}").take(
            pa.array([ids.index(h) for h in m.column("host_id").to_pylist()])))
    expected = inject_batch(reference, cfg)
    got = inject_batch(_joined(m, prepared), cfg)
    assert got.equals(expected)
    status = got.column("status").to_pylist()
    assert status.count("ok") == m.num_rows - 3 and all(s.startswith("bad_cutout: shape") for s in status
                                                           if s != "ok")
