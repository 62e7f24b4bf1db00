import numpy as np
import pyarrow as pa
import pytest

from dhs_gen.injection.manifest import ManifestConfig, build_manifest
from dhs_gen.injection.mixer import VariantSpec, assign_variant_index, mix_variants

VARIANTS = [VariantSpec(source_mode="sersic", gen_variant="gen5", weight=2.0),
            VariantSpec(source_mode="cosmos", gen_variant="gen6", weight=1.0),
            VariantSpec(source_mode="sersic_clumps", gen_variant="gen7", artifact_profile="strong", weight=1.0)]


def test_weights_set_the_mix_and_draws_are_stable():
    ids = [f"t{i}" for i in range(20000)]
    index = assign_variant_index(ids, VARIANTS, seed=3)
    assert np.bincount(index, minlength=3) / len(ids) == pytest.approx([0.5, 0.25, 0.25], abs=0.015)
    assert np.array_equal(index[:500], assign_variant_index(ids[:500], VARIANTS, seed=3))
    assert not np.array_equal(index, assign_variant_index(ids, VARIANTS, seed=4))


def test_existing_columns_are_replaced_never_duplicated():
    table = pa.table({"task_id": ["a", "b", "c"], "source_mode": ["old"] * 3, "x": [1, 2, 3]})
    out = mix_variants(table, VARIANTS, seed=1)
    assert out.column_names.count("source_mode") == 1
    assert out.column_names.count("artifact_profile") == 1 and out.column_names.count("gen_variant") == 1
    assert "old" not in out.column("source_mode").to_pylist()
    again = mix_variants(out, VARIANTS, seed=1)
    assert again.equals(out)


def test_uber_manifest_carries_every_variant():
    hosts = pa.table({"galaxy_id": [f"h{i}" for i in range(400)], "ra": np.linspace(1, 50, 400),
                      "dec": np.linspace(-5, 5, 400)})
    m = build_manifest(hosts, ManifestConfig(variants=VARIANTS))
    pairs = set(zip(m.column("source_mode").to_pylist(), m.column("gen_variant").to_pylist()))
    assert pairs == {("sersic", "gen5"), ("cosmos", "gen6"), ("sersic_clumps", "gen7")}
    assert len(m.column_names) == len(set(m.column_names))


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match="weight must be > 0"):
        VariantSpec(weight=0)
    with pytest.raises(ValueError, match="at least one variant"):
        assign_variant_index(["a"], [], seed=1)
