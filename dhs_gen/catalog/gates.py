"""Pre-training data gates: each a function returning a :class:`GateResult` with a clear message.

Gates on a training manifest (pandas): split proportions in range, no galaxy both positive
and negative, no HEALPix pixel in two splits, weights per tier as configured; and on stamps:
no non-finite pixel in the central box.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np
import pandas as pd


@dataclass
class GateResult:
    """One gate's verdict: ``passed`` and a message naming what failed and by how much."""

    name: str
    passed: bool
    message: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["passed"] = bool(self.passed)
        return out


class GateFailure(RuntimeError):
    """Raised by :func:`enforce` when any gate failed; the message lists every failure."""


def enforce(results: Iterable[GateResult]) -> List[GateResult]:
    """Raise GateFailure listing the failed gates; return the results when all pass."""
    results = list(results)
    failed = [r for r in results if not r.passed]
    if failed:
        raise GateFailure("data gates failed: " + "; ".join(f"{r.name}: {r.message}" for r in failed))
    return results


def _require(manifest: pd.DataFrame, columns: Sequence[str], gate: str) -> None:
    missing = [c for c in columns if c not in manifest.columns]
    if missing:
        raise ValueError(f"gate {gate}: manifest lacks columns {missing}")


def gate_split_proportions(manifest: pd.DataFrame, expected: Dict[str, float], tolerance: float = 0.05
                           ) -> GateResult:
    """Each split's row fraction within ``tolerance`` of ``expected`` (e.g. train 0.70 +- 0.05)."""
    _require(manifest, ["split"], "split_proportions")
    frac = manifest["split"].value_counts(normalize=True).to_dict()
    bad = {s: round(frac.get(s, 0.0), 4) for s, f in expected.items() if abs(frac.get(s, 0.0) - f) > tolerance}
    unknown = sorted(set(frac) - set(expected))
    passed = not bad and not unknown
    msg = ("split fractions " + ", ".join(f"{s}={frac.get(s, 0.0):.3f}" for s in expected)
           + f" (expected {expected} +- {tolerance})")
    if unknown:
        msg += f"; unknown split labels {unknown}"
    return GateResult("split_proportions", passed, msg, {"fractions": frac, "out_of_range": bad})


def gate_no_label_overlap(manifest: pd.DataFrame, id_col: str = "galaxy_id") -> GateResult:
    """No galaxy appears both as a positive (label 1) and a negative (label 0)."""
    _require(manifest, [id_col, "label"], "no_label_overlap")
    both = np.intersect1d(manifest.loc[manifest["label"] == 1, id_col].to_numpy(dtype=str),
                          manifest.loc[manifest["label"] == 0, id_col].to_numpy(dtype=str))
    return GateResult("no_label_overlap", len(both) == 0,
                      "no galaxy is both positive and negative" if len(both) == 0
                      else f"{len(both)} galaxies are both positive and negative, e.g. {list(both[:5])}",
                      {"overlap": int(len(both))})


def gate_healpix_disjoint(manifest: pd.DataFrame, pixel_col: str = "healpix_128") -> GateResult:
    """Every HEALPix pixel belongs to exactly one split (no spatial leakage)."""
    from dhs_gen.catalog.splits import pixel_split_conflicts

    _require(manifest, [pixel_col, "split"], "healpix_disjoint")
    bad = pixel_split_conflicts(manifest[pixel_col].to_numpy(), manifest["split"].to_numpy())
    return GateResult("healpix_disjoint", len(bad) == 0,
                      "every HEALPix pixel is in one split" if len(bad) == 0
                      else f"{len(bad)} {pixel_col} pixels are in more than one split, e.g. {bad[:5].tolist()}",
                      {"conflicting_pixels": int(len(bad))})


def gate_tier_weights(manifest: pd.DataFrame, weights: Dict[str, Tuple[float, float]]) -> GateResult:
    """sample_weight of every row inside its tier's allowed [lo, hi] (e.g. A: (1, 1), B: (0.3, 0.6))."""
    _require(manifest, ["tier", "sample_weight"], "tier_weights")
    problems = []
    unknown = sorted(set(manifest["tier"].astype(str)) - set(weights))
    if unknown:
        problems.append(f"tiers without a configured weight: {unknown}")
    for tier, (lo, hi) in weights.items():
        w = manifest.loc[manifest["tier"] == tier, "sample_weight"].to_numpy(np.float64)
        bad = ~((w >= lo - 1e-6) & (w <= hi + 1e-6))
        if bad.any():
            problems.append(f"tier {tier}: {int(bad.sum())} weights outside [{lo}, {hi}], e.g. {w[bad][:3].tolist()}")
    return GateResult("tier_weights", not problems, "; ".join(problems) or "weights per tier as configured")


def central_nonfinite(images: np.ndarray, box: int) -> np.ndarray:
    """Non-finite pixel count in the central ``box`` x ``box`` region of each (N, C, H, W) image."""
    h, w = images.shape[-2:]
    y0, x0 = (h - box) // 2, (w - box) // 2
    core = images[..., y0:y0 + box, x0:x0 + box]
    return (~np.isfinite(core)).reshape(len(images), -1).sum(axis=1)


def gate_central_finite(ids: Sequence[str], blobs: Iterable[bytes], box: int = 50,
                        max_examples: int = 5) -> GateResult:
    """No NaN/inf in the central ``box`` x ``box`` pixels of any stamp (any legacy layout or canonical)."""
    from dhs_gen.io.stamps import decode_stamp_npz

    bad, n = [], 0
    for gid, blob in zip(ids, blobs):
        n += 1
        if blob is None:
            bad.append((gid, "missing stamp"))
            continue
        image = decode_stamp_npz(blob, nan_policy="report").image
        count = int(central_nonfinite(image[None], box)[0])
        if count:
            bad.append((gid, f"{count} non-finite central pixels"))
    return GateResult("central_finite", not bad,
                      f"{n} stamps checked, central {box}x{box} finite" if not bad
                      else f"{len(bad)} of {n} stamps fail, e.g. {bad[:max_examples]}", {"failed": len(bad)})


def manifest_gates(manifest: pd.DataFrame, split_fractions: Dict[str, float], tier_weights: Dict[str, Tuple[float, float]],
                   split_tolerance: float = 0.05, pixel_col: str = "healpix_128",
                   stamps: Tuple[Sequence[str], Iterable[bytes]] | None = None, central_box: int = 50
                   ) -> List[GateResult]:
    """All manifest gates (and the central-finite gate when ``stamps`` = (ids, blobs) is given)."""
    results = [
        gate_split_proportions(manifest, split_fractions, split_tolerance),
        gate_no_label_overlap(manifest),
        gate_healpix_disjoint(manifest, pixel_col),
        gate_tier_weights(manifest, tier_weights),
    ]
    if stamps is not None:
        results.append(gate_central_finite(stamps[0], stamps[1], central_box))
    return results


def run_manifest_gates(manifest_uri: str, gates_cfg, cutouts_uri: str | None = None) -> dict:
    """Evaluate the gates on a manifest dataset (and its cutouts); return the JSON summary.

    ``gates_cfg`` is the ``gates`` section of a :class:`~dhs_gen.catalog.config.CatalogConfig`.
    """
    import pyarrow.compute as pc

    from dhs_gen.storage import read_parquet

    manifest = read_parquet(manifest_uri).to_pandas()
    if manifest.empty:
        raise ValueError(f"{manifest_uri}: the training manifest is empty")
    stamps = None
    if cutouts_uri:
        cut = read_parquet(cutouts_uri, columns=["galaxy_id", "cutout"])
        cut = cut.filter(pc.is_in(cut.column("galaxy_id"), value_set=pc.unique(
            read_parquet(manifest_uri, columns=["galaxy_id"]).column("galaxy_id"))))
        found = set(cut.column("galaxy_id").to_pylist())
        missing = [g for g in manifest["galaxy_id"] if g not in found]
        stamps = (cut.column("galaxy_id").to_pylist() + missing,
                  cut.column("cutout").to_pylist() + [None] * len(missing))
    g = gates_cfg
    results = manifest_gates(manifest, g.split_fractions, {k: tuple(v) for k, v in g.tier_weights.items()},
                             g.split_tolerance, "healpix_128", stamps, g.central_box_pixels)
    return {"job": "data_gates", "manifest": manifest_uri, "rows": len(manifest),
            "gates": [r.to_dict() for r in results], "passed": all(r.passed for r in results)}
