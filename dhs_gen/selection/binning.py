"""Completeness axes: which columns a bin is over, its edges, and per-row bin indices.

An axis is "overall" (one bin), one column (a 1-D marginal) or two (a grid such as
``theta_e_arcsec x z_l``). Bins are half-open ``[lo, hi)`` (the last edge may be ``inf``);
rows outside every bin, or with a non-finite value, get index -1 and count nowhere on that axis.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pyarrow as pa

OVERALL = "overall"
GRID_SEP = " x "
HEALPIX_NSIDE_IN = 128


def column_f64(table, name: str) -> np.ndarray:
    """A numeric column as float64 with nulls as NaN (raises naming the column when absent)."""
    if name not in table.column_names:
        raise KeyError(f"column {name!r} is required but missing (have {table.column_names})")
    arr = table.column(name)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)


def theta_over_psf(table) -> np.ndarray:
    """theta_E / PSF FWHM (r) [dimensionless]: psf_fwhm_used_r, falling back to psfsize_r (arcsec);
    both are the survey psfsize, the NEA-FWHM of the rendered PSF (:mod:`dhs_gen.psf`)."""
    theta = column_f64(table, "theta_e_arcsec")
    fwhm = column_f64(table, "psf_fwhm_used_r") if "psf_fwhm_used_r" in table.column_names else None
    if "psfsize_r" in table.column_names:
        fallback = column_f64(table, "psfsize_r")
        fwhm = fallback if fwhm is None else np.where(np.isfinite(fwhm) & (fwhm > 0), fwhm, fallback)
    if fwhm is None:
        raise KeyError("theta_over_psf needs psf_fwhm_used_r or psfsize_r")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(fwhm > 0, theta / fwhm, np.nan)


def sky_regions(table, nside: int) -> np.ndarray:
    """NESTED HEALPix region at ``nside`` per row, coarsened from healpix_128 (else from ra/dec [deg]).

    float64 (NaN where a row has neither); rows are grouped into bootstrap blocks by it."""
    shift = 2 * int(np.log2(HEALPIX_NSIDE_IN // nside))
    names = table.column_names
    hp = column_f64(table, "healpix_128") if "healpix_128" in names else np.full(table.num_rows, np.nan)
    missing = ~np.isfinite(hp)
    if missing.any() and {"ra", "dec"} <= set(names):
        import healpy

        ra, dec = column_f64(table, "ra")[missing], column_f64(table, "dec")[missing]
        ok = np.isfinite(ra) & np.isfinite(dec)
        idx = np.flatnonzero(missing)[ok]
        hp[idx] = healpy.ang2pix(HEALPIX_NSIDE_IN, ra[ok], dec[ok], nest=True, lonlat=True)
    out = np.full(table.num_rows, np.nan)
    good = np.isfinite(hp)
    out[good] = hp[good].astype(np.int64) >> shift
    return out


DERIVED = {"theta_over_psf": theta_over_psf}


def axis_values(table, column: str) -> np.ndarray:
    """Values of a stored or derived axis column as float64."""
    if column in DERIVED:
        return DERIVED[column](table)
    return column_f64(table, column)


@dataclass(frozen=True)
class Axis:
    """A binning: column names and their edges (one tuple of floats per column)."""

    columns: tuple[str, ...]
    edges: tuple[tuple[float, ...], ...]

    @property
    def name(self) -> str:
        return GRID_SEP.join(self.columns) if self.columns else OVERALL

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(e) - 1 for e in self.edges)

    @property
    def n_bins(self) -> int:
        return int(np.prod(self.shape)) if self.columns else 1

    def index(self, table) -> np.ndarray:
        """Flat bin index per row (int64, C order over columns); -1 outside the edges."""
        if not self.columns:
            return np.zeros(table.num_rows, dtype=np.int64)
        flat = np.zeros(table.num_rows, dtype=np.int64)
        inside = np.ones(table.num_rows, dtype=bool)
        for column, edges, size in zip(self.columns, self.edges, self.shape):
            values = axis_values(table, column)
            e = np.asarray(edges, dtype=np.float64)
            i = np.searchsorted(e, values, side="right") - 1
            inside &= np.isfinite(values) & (i >= 0) & (i < size)
            flat = flat * size + np.clip(i, 0, size - 1)
        return np.where(inside, flat, -1)

    def bounds(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) arrays of shape (len(flat), n_columns) for flat bin indices."""
        flat = np.asarray(flat, dtype=np.int64)
        if not self.columns:
            return np.zeros((len(flat), 0)), np.zeros((len(flat), 0))
        multi = np.unravel_index(flat, self.shape)
        lo = np.stack([np.asarray(e)[i] for e, i in zip(self.edges, multi)], axis=1)
        hi = np.stack([np.asarray(e)[i + 1] for e, i in zip(self.edges, multi)], axis=1)
        return lo, hi


def build_axes(axes: Mapping[str, Sequence[float]], grids: Sequence[Sequence[str]]) -> list[Axis]:
    """The overall bin, every 1-D axis, then the 2-D grids."""
    out = [Axis((), ())]
    out += [Axis((name,), (tuple(float(x) for x in edges),)) for name, edges in axes.items()]
    out += [Axis(tuple(g), tuple(tuple(float(x) for x in axes[c]) for c in g)) for g in grids]
    return out
