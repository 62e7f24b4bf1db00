"""data_gates CLI: passes a clean manifest, fails a leaky one naming the problem."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa

from dhs_gen import storage
from dhs_gen.catalog.splits import split_from_pixel
from dhs_gen.io.stamps import encode_stamp
from jobs.data_gates import main


def write_manifest(path, n=3000, leak=False):
    pix = np.arange(n) // 3
    m = pd.DataFrame({"galaxy_id": [f"g{i}" for i in range(n)], "label": np.r_[np.ones(30), np.zeros(n - 30)]
                      .astype("int8"), "tier": ["A"] * 10 + ["B"] * 20 + ["N1"] * (n - 30),
                      "sample_weight": np.r_[np.ones(10), np.full(20, 0.5), np.ones(n - 30)].astype("float32"),
                      "split": split_from_pixel(pix).astype(str), "healpix_128": pix})
    if leak:
        m.loc[1, "split"] = "test" if m.loc[1, "split"] != "test" else "train"
    storage.write_parquet(pa.Table.from_pandas(m, preserve_index=False), str(path / "part-0.parquet"))
    storage.mark_complete(str(path))
    return m


def test_clean_manifest_passes(tmp_path, capsys):
    m = write_manifest(tmp_path / "m")
    images = [np.ones((3, 101, 101), np.float32)] * 3
    images[2] = images[2].copy()
    images[2][0, 50, 50] = np.nan
    cut = pa.table({"galaxy_id": list(m["galaxy_id"][:3]), "cutout": [encode_stamp(i) for i in images]})
    storage.write_parquet(cut, str(tmp_path / "cut" / "part-0.parquet"))
    storage.mark_complete(str(tmp_path / "cut"))
    assert main(["--manifest", str(tmp_path / "m"), "--output", str(tmp_path / "g")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["passed"] and len(out["gates"]) == 4
    # with stamps: one NaN core and 2997 missing stamps fail the central gate
    assert main(["--manifest", str(tmp_path / "m"), "--cutouts", str(tmp_path / "cut")]) == 1
    err = capsys.readouterr().err
    assert "GATE FAILED central_finite" in err and "2998 of 3000" in err


def test_leaky_manifest_fails(tmp_path, capsys):
    write_manifest(tmp_path / "m", leak=True)
    assert main(["--manifest", str(tmp_path / "m"), "--set", "gates.tier_weights.B=[0.3,0.45]"]) == 1
    err = capsys.readouterr().err
    assert "GATE FAILED healpix_disjoint" in err and "GATE FAILED tier_weights" in err
