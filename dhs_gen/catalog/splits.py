"""HEALPix spatial splits: neighbouring sky never straddles train/val/test.

Pixels are NESTED nside=128 computed with ``lonlat=True`` (RA, Dec in degrees). The split of
a pixel comes from a hash of the pixel number, so every galaxy in one pixel gets one label.

Schemes:
- ``legacy_sha256`` (the earlier pipeline's, so users keep their splits): u = first 4 bytes
  big-endian of SHA-256(f"{pixel}_{seed}") / 2^32.
- ``stable_hash64``: u = :func:`dhs_gen.determinism.stable_uniform` (seed, pixel).

Labels come from cumulative fractions: train if u < f0, val if u < f0 + f1, else test.
Both schemes have a native Spark twin (:func:`split_col`) giving identical labels.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from dhs_gen.determinism import stable_uniform

DEFAULT_NSIDE = 128
DEFAULT_SPLIT_SEED = 42
DEFAULT_FRACTIONS = (0.70, 0.15, 0.15)
DEFAULT_NAMES = ("train", "val", "test")
SCHEMES = ("legacy_sha256", "stable_hash64")


def healpix_index(ra, dec, nside: int = DEFAULT_NSIDE) -> np.ndarray:
    """NESTED HEALPix pixel (int64) of RA/Dec in degrees (``lonlat=True``); the RING scheme is never used."""
    import healpy as hp

    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    if ra.shape != dec.shape:
        raise ValueError(f"ra and dec shapes differ: {ra.shape} vs {dec.shape}")
    bad = ~np.isfinite(ra) | ~np.isfinite(dec) | (np.abs(dec) > 90.0)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} positions have non-finite RA/Dec or |Dec| > 90 deg")
    return np.asarray(hp.ang2pix(nside, ra, dec, nest=True, lonlat=True), dtype=np.int64)


def check_fractions(fractions: Sequence[float], names: Sequence[str] = DEFAULT_NAMES) -> tuple[float, ...]:
    """Validate split fractions (non-negative, one per name, summing to 1); return them as a tuple."""
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != len(names):
        raise ValueError(f"{len(fractions)} split fractions for {len(names)} split names {list(names)}")
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    return fractions


def legacy_pixel_uniform(pixels, seed: int = DEFAULT_SPLIT_SEED) -> np.ndarray:
    """u in [0, 1): first 4 bytes (big-endian) of SHA-256(f"{pixel}_{seed}") / 2^32."""
    pixels = np.asarray(pixels, dtype=np.int64).ravel()
    unique, inverse = np.unique(pixels, return_inverse=True)
    u = np.fromiter(
        (int.from_bytes(hashlib.sha256(f"{int(p)}_{seed}".encode()).digest()[:4], "big") for p in unique),
        dtype=np.float64, count=len(unique),
    ) / 2.0**32
    return u[inverse]


def pixel_uniform(pixels, seed: int = DEFAULT_SPLIT_SEED, scheme: str = "legacy_sha256") -> np.ndarray:
    """The per-pixel uniform of a split scheme (hashes each distinct pixel once)."""
    pixels = np.asarray(pixels, dtype=np.int64).ravel()
    if scheme == "legacy_sha256":
        return legacy_pixel_uniform(pixels, seed)
    if scheme == "stable_hash64":
        unique, inverse = np.unique(pixels, return_inverse=True)
        return stable_uniform(seed, unique.tolist())[inverse]
    raise ValueError(f"unknown split scheme {scheme!r}; known: {list(SCHEMES)}")


def split_from_pixel(pixels, seed: int = DEFAULT_SPLIT_SEED, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                     scheme: str = "legacy_sha256", names: Sequence[str] = DEFAULT_NAMES) -> np.ndarray:
    """Split label (object array of ``names``) of each HEALPix pixel from the hash of the pixel."""
    fractions = check_fractions(fractions, names)
    u = pixel_uniform(pixels, seed, scheme)
    edges = np.cumsum(fractions)[:-1]
    index = np.searchsorted(edges, u, side="right")
    return np.asarray(names, dtype=object)[index]


def split_col(pixel_col: str = "healpix_128", seed: int = DEFAULT_SPLIT_SEED,
              fractions: Sequence[float] = DEFAULT_FRACTIONS, scheme: str = "legacy_sha256",
              names: Sequence[str] = DEFAULT_NAMES):
    """Spark column: the twin of :func:`split_from_pixel`, computed natively with ``sha2``."""
    from pyspark.sql import functions as F

    from dhs_gen.spark import stable_hash64_col

    fractions = check_fractions(fractions, names)
    pixel = F.col(pixel_col).cast("long")
    if scheme == "legacy_sha256":
        key = F.concat(pixel.cast("string"), F.lit(f"_{seed}"))
        u = F.conv(F.substring(F.sha2(key, 256), 1, 8), 16, 10).cast("double") / F.lit(2.0**32)
    elif scheme == "stable_hash64":
        from dhs_gen.determinism import HASH_HEX_DIGITS

        u = stable_hash64_col(seed, pixel).cast("double") / F.lit(float(16**HASH_HEX_DIGITS))
    else:
        raise ValueError(f"unknown split scheme {scheme!r}; known: {list(SCHEMES)}")
    edges = np.cumsum(fractions)[:-1]
    expr = F.lit(names[-1])
    for edge, name in reversed(list(zip(edges, names[:-1]))):
        expr = F.when(u < F.lit(float(edge)), F.lit(name)).otherwise(expr)
    return expr


def pixel_split_conflicts(pixels, splits) -> np.ndarray:
    """HEALPix pixels that carry more than one split label (empty when the split is spatial)."""
    import pandas as pd

    frame = pd.DataFrame({"pixel": np.asarray(pixels), "split": np.asarray(splits)})
    counts = frame.groupby("pixel")["split"].nunique()
    return counts.index[counts > 1].to_numpy()
