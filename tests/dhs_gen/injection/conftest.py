"""Real host cutouts (the packaged DR10 cutouts) and a small manifest over them."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dhs_gen.data_files import DATA_DIR
from dhs_gen.io.stamps import decode_stamp_npz, encode_stamp


@pytest.fixture(scope="session")
def real_hosts():
    """(hosts table, {host_id: canonical blob}) for the six real DR10 101x101 cutouts."""
    files = sorted((DATA_DIR / "dr10_cutouts").glob("*.npz"))
    stamps = [decode_stamp_npz(f, nan_policy="report") for f in files]
    ids = [f.stem for f in files]
    hosts = pa.table({
        "galaxy_id": ids,
        "ra": [float(s.meta.get("ra", 10.0 + i)) for i, s in enumerate(stamps)],
        "dec": [float(s.meta.get("dec", 1.0)) for s in stamps],
        "psfsize_g": np.full(len(ids), 1.45), "psfsize_r": np.full(len(ids), 1.30),
        "psfsize_z": np.full(len(ids), 1.15),
    })
    return hosts, {h: encode_stamp(s.image, "grz") for h, s in zip(ids, stamps)}


@pytest.fixture(scope="session")
def with_cutouts():
    """f(manifest, blobs) -> the manifest with each host's cutout blob in column ``cutout``."""
    def attach(manifest: pa.Table, blobs: dict) -> pa.Table:
        hosts = manifest.column("host_id").to_pylist()
        return manifest.append_column("cutout", pa.array([blobs.get(h) for h in hosts], pa.binary()))
    return attach
