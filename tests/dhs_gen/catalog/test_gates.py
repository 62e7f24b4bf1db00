import numpy as np
import pandas as pd
import pytest

from dhs_gen.catalog.gates import (
    GateFailure,
    central_nonfinite,
    enforce,
    gate_central_finite,
    gate_healpix_disjoint,
    gate_no_label_overlap,
    gate_split_proportions,
    gate_tier_weights,
    manifest_gates,
)
from dhs_gen.io.stamps import encode_stamp, encode_stamp_npz

WEIGHTS = {"A": (1.0, 1.0), "B": (0.3, 0.6), "N1": (1.0, 1.0), "N2": (1.0, 1.0)}
FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def manifest(n=200):
    splits = np.array(["train"] * 140 + ["val"] * 30 + ["test"] * 30)[:n]
    return pd.DataFrame({"galaxy_id": [f"g{i}" for i in range(n)], "label": [1] * 10 + [0] * (n - 10),
                         "tier": ["A"] * 5 + ["B"] * 5 + ["N1"] * (n - 10), "sample_weight": [1.0] * 5 + [0.5] * 5
                         + [1.0] * (n - 10), "split": splits, "healpix_128": np.arange(n) // 2})


def test_clean_manifest_passes():
    results = enforce(manifest_gates(manifest(), FRACTIONS, WEIGHTS))
    assert [r.name for r in results] == ["split_proportions", "no_label_overlap", "healpix_disjoint", "tier_weights"]


def test_each_gate_fails_with_a_clear_message():
    m = manifest()
    m.loc[0:40, "split"] = "test"
    r = gate_split_proportions(m, FRACTIONS)
    assert not r.passed and "train=0.495" in r.message
    m = manifest()
    m.loc[199, "galaxy_id"] = "g0"
    r = gate_no_label_overlap(m)
    assert not r.passed and "1 galaxies are both positive and negative" in r.message and "g0" in r.message
    m = manifest()
    m.loc[139, "healpix_128"] = 70  # pixel 70 also holds row 140 (val)
    r = gate_healpix_disjoint(m)
    assert not r.passed and "1 healpix_128 pixels" in r.message and "70" in r.message
    m = manifest()
    m.loc[6, "sample_weight"] = 0.9
    r = gate_tier_weights(m, WEIGHTS)
    assert not r.passed and "tier B: 1 weights outside [0.3, 0.6]" in r.message
    with pytest.raises(GateFailure, match="tier_weights"):
        enforce([r])
    with pytest.raises(ValueError, match="lacks columns"):
        gate_tier_weights(m.drop(columns=["tier"]), WEIGHTS)


def test_central_finite_on_stamps():
    image = np.ones((3, 101, 101), np.float32)
    edge_nan = image.copy()
    edge_nan[:, 0, 0] = np.nan
    core_nan = image.copy()
    core_nan[1, 50, 50] = np.nan
    assert list(central_nonfinite(np.stack([image, edge_nan, core_nan]), 50)) == [0, 0, 1]
    blobs = [encode_stamp(image), encode_stamp_npz(edge_nan), encode_stamp(core_nan), None]
    r = gate_central_finite(["a", "b", "c", "d"], blobs, box=50)
    assert not r.passed and "2 of 4" in r.message and "'c'" in r.message and "missing" in r.message
    assert gate_central_finite(["a", "b"], blobs[:2]).passed
