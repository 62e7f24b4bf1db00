"""Readers for the earlier pipeline's datasets, accepted as users hold them.

* Phase-4c stamp tables: Parquet Hive-partitioned by ``region_split`` with a compressed-npz
  ``stamp_npz`` column (and ``ctrl_stamp_npz`` in paired tables); some blobs are gzip-wrapped.
* Cutout folders: one npz per galaxy (``cutout`` (101, 101, 3) + ``meta_*``).

The unit trap: ``psfdepth_r`` is a 5-sigma AB magnitude in the phase-4 tables but an inverse
variance [nmgy^-2] in the sweep-derived catalogue tables. :func:`legacy_psfdepth_to_mag5`
converts by declared origin and refuses values that contradict it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa

from dhs_gen.io.stamps import Stamp, StampDecodeError, decode_stamp_npz, majority_shape
from dhs_gen.units import psfdepth_ivar_to_mag5

# Plausible 5-sigma AB depths; an inverse variance in nmgy^-2 for DR10 is ~1e1..1e6.
_MAG5_RANGE = (15.0, 30.0)
CENTRAL_BOX = 50
CENTRAL_NAN_LIMIT = 0.02


class LegacyFormatError(ValueError):
    """Legacy data contradicts its declared format (e.g. a depth in the wrong unit)."""


@dataclass(frozen=True)
class DecodedColumn:
    """Decoded stamps of one binary column: images (N, C, H, W) float32 (zeros where failed),
    the band string, and per-row status ("ok" or the reason)."""

    images: np.ndarray
    bands: str
    status: list


def decode_stamp_column(blobs, bands: str | None = None, expected_size=None) -> DecodedColumn:
    """Decode a column of stamp blobs (any layout); a bad row gets a failure status, never an exception.

    ``expected_size``: the declared stamp side [pixels], one int or one per row (e.g. the
    dataset's ``stamp_size`` column; None entries undeclared). Rows of another size get
    ``shape_mismatch``. Without any declaration the reference (C, H, W) and bands are the
    majority of the decodable rows (:func:`~dhs_gen.io.stamps.majority_shape`), never the first
    row's. Non-finite pixels are reported in the status ("ok" only when all pixels are finite)
    and kept in the image for the caller to decide.
    """
    values = blobs.to_pylist() if isinstance(blobs, (pa.Array, pa.ChunkedArray)) else list(blobs)
    sizes = (list(expected_size) if expected_size is not None and not isinstance(expected_size, (int, np.integer))
             else [expected_size] * len(values))
    decoded: list[Stamp | None] = []
    status = []
    for blob, size in zip(values, sizes):
        if blob is None:
            decoded.append(None)
            status.append("missing_stamp")
            continue
        try:
            stamp = decode_stamp_npz(blob, bands=bands, nan_policy="report")
        except StampDecodeError as exc:
            decoded.append(None)
            status.append(f"decode_error: {exc}")
            continue
        if size is not None and stamp.image.shape[1:] != (int(size), int(size)):
            decoded.append(None)
            status.append(f"shape_mismatch: {stamp.image.shape[1]}x{stamp.image.shape[2]}, declared {size}x{size}")
            continue
        decoded.append(stamp)
        status.append("ok" if stamp.nonfinite_count == 0 else f"nonfinite_pixels: {stamp.nonfinite_count}")
    good = [s for s in decoded if s is not None]
    if not good:
        return DecodedColumn(np.zeros((len(values), 0, 0, 0), np.float32), bands or "", status)
    found_bands, *shape = majority_shape([(s.bands, *s.image.shape) for s in good])
    shape = tuple(shape)
    images = np.zeros((len(values),) + shape, dtype=np.float32)
    for i, stamp in enumerate(decoded):
        if stamp is None:
            continue
        if stamp.image.shape != shape or stamp.bands != found_bands:
            status[i] = f"shape_mismatch: {stamp.bands} {stamp.image.shape} vs {found_bands} {shape}"
            continue
        images[i] = stamp.image
    return DecodedColumn(images, found_bands, status)


def read_legacy_stamps(uri: str, columns: list[str] | None = None, region_split: str | None = None) -> pa.Table:
    """Read a phase-4c stamps table (Hive-partitioned by region_split), optionally one split."""
    import pyarrow.dataset as ds

    from dhs_gen.storage import read_parquet

    flt = ds.field("region_split") == region_split if region_split else None
    return read_parquet(uri, columns=columns, filters=flt)


def legacy_psfdepth_to_mag5(values, origin: str) -> np.ndarray:
    """Legacy ``psfdepth_*`` -> 5-sigma AB depth [mag].

    origin: "phase4" (already a 5-sigma magnitude) or "sweep" (inverse variance, nmgy^-2).
    Raises LegacyFormatError when the values contradict the declared origin.
    """
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    looks_mag = finite.size == 0 or bool(np.all((finite >= _MAG5_RANGE[0]) & (finite <= _MAG5_RANGE[1])))
    if origin == "phase4":
        if not looks_mag:
            raise LegacyFormatError(
                f"psfdepth declared a 5-sigma magnitude but values span {finite.min():.3g}..{finite.max():.3g}; "
                "is this an inverse variance (origin='sweep')?")
        return arr
    if origin == "sweep":
        if finite.size and looks_mag and finite.max() < 100:
            raise LegacyFormatError(
                f"psfdepth declared an inverse variance but values span {finite.min():.3g}..{finite.max():.3g}, "
                "which look like 5-sigma magnitudes (origin='phase4')")
        return psfdepth_ivar_to_mag5(arr)
    raise ValueError(f"origin must be 'phase4' or 'sweep', not {origin!r}")


def cutout_quality_ok(stamp: Stamp, size: int = 101, bands: str = "grz") -> bool:
    """Legacy ``quality_ok``: all bands, size x size, central 50x50 NaN fraction < 0.02."""
    if stamp.bands != bands or stamp.image.shape[1:] != (size, size):
        return False
    c = size // 2
    h = CENTRAL_BOX // 2
    core = stamp.image[:, c - h:c + h, c - h:c + h]
    return float(np.mean(~np.isfinite(core))) < CENTRAL_NAN_LIMIT


def iter_cutout_dir(uri: str) -> Iterator[tuple[str, Stamp | None, str]]:
    """Yield (file URI, stamp or None, status) for every ``*.npz`` under a cutout folder."""
    from dhs_gen.storage import list_files, read_bytes

    for path in list_files(uri, suffix=".npz"):
        try:
            stamp = decode_stamp_npz(read_bytes(path), nan_policy="report")
        except StampDecodeError as exc:
            yield path, None, f"decode_error: {exc}"
            continue
        yield path, stamp, "ok" if cutout_quality_ok(stamp) else "quality_not_ok"
