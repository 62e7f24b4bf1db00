"""The uber mixer: assign injection variants (source mode, generation, artifact profile) by weight.

A row's variant is chosen by a stable uniform of (seed, task_id) against the cumulative weights,
so the mix is reproducible and independent of partitioning. Columns the mixer owns replace any
existing column of the same name (never a duplicate).
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import pyarrow as pa
from pydantic import field_validator

from dhs_gen.config import StrictModel
from dhs_gen.determinism import stable_uniform

VARIANT_COLUMNS = ("source_mode", "gen_variant", "artifact_profile")


class VariantSpec(StrictModel):
    """One injection variant and its mixing weight (weights need not sum to 1)."""

    source_mode: str = "sersic"
    gen_variant: str = "base"
    artifact_profile: str = "none"
    weight: float = 1.0

    @field_validator("weight")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not value > 0:
            raise ValueError(f"variant weight must be > 0, got {value}")
        return value


def assign_variant_index(task_ids: Sequence[str], variants: List[VariantSpec], seed: int) -> np.ndarray:
    """Index into ``variants`` of each row: stable_uniform(f"{seed}:mix", task_id) vs cumulative weights."""
    if not variants:
        raise ValueError("the mixer needs at least one variant")
    weights = np.array([v.weight for v in variants], dtype=np.float64)
    edges = np.cumsum(weights) / weights.sum()
    u = stable_uniform(f"{seed}:mix", task_ids)
    return np.minimum(np.searchsorted(edges, u, side="right"), len(variants) - 1)


def mix_variants(table: pa.Table, variants: List[VariantSpec], seed: int) -> pa.Table:
    """``table`` with the variant columns set from the weighted mix (existing ones replaced)."""
    index = assign_variant_index(table.column("task_id").to_pylist(), variants, seed)
    for name in VARIANT_COLUMNS:
        values = np.array([getattr(v, name) for v in variants], dtype=object)[index]
        array = pa.array(values.tolist(), type=pa.string())
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, array)
        else:
            table = table.append_column(name, array)
    return table
