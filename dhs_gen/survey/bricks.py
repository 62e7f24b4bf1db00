"""Legacy Surveys brick geometry (0.25 deg rows; ~0.25 deg wide columns) and the mock-sky cells.

Bricks: row ``floor((dec + 90.125) / 0.25)`` has centre dec ``row * 0.25 - 90`` and
``round(360 cos(dec_c) / 0.25)`` columns; names are ``%04d`` of ra_c x 10, ``p``/``m``, ``%03d`` of
|dec_c| x 10 (e.g. ``2326p000``), which reproduces the DR9/DR10 brick names at |dec| < 85.
Cells (the mock sky's unit of generation) are 0.25/16 deg squares in (ra, dec) aligned with
brick rows, so a (cell row within the brick row, global cell column mod 4096, index) triple is
unique inside a brick and serves as the Tractor ``objid``.
"""
from __future__ import annotations

import numpy as np

BRICK_HEIGHT_DEG = 0.25
CELLS_PER_BRICK_ROW = 16
CELL_DEG = BRICK_HEIGHT_DEG / CELLS_PER_BRICK_ROW
N_CELL_COLS = int(round(360.0 / CELL_DEG))
OBJ_PER_CELL_MAX = 64
_COL_MOD = 4096


def brick_row(dec) -> np.ndarray:
    return np.floor((np.asarray(dec, dtype=np.float64) + 90.0 + BRICK_HEIGHT_DEG / 2) / BRICK_HEIGHT_DEG).astype(np.int64)


def _ncols(row) -> np.ndarray:
    dec_c = row * BRICK_HEIGHT_DEG - 90.0
    return np.maximum(1, np.round(360.0 * np.cos(np.radians(dec_c)) / BRICK_HEIGHT_DEG)).astype(np.int64)


def brick_of(ra, dec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(brick id int64, centre ra, centre dec) [deg] of positions; id = row * 2^20 + column."""
    ra = np.mod(np.atleast_1d(np.asarray(ra, dtype=np.float64)), 360.0)
    row = brick_row(np.atleast_1d(dec))
    ncols = _ncols(row)
    width = 360.0 / ncols
    col = np.minimum(np.floor(ra / width).astype(np.int64), ncols - 1)
    return row * (1 << 20) + col, (col + 0.5) * width, row * BRICK_HEIGHT_DEG - 90.0


def brick_names(ra_c, dec_c) -> np.ndarray:
    """Brick names from brick centres, vectorised (object array of str)."""
    ra_c = np.atleast_1d(np.asarray(ra_c, dtype=np.float64))
    dec_c = np.atleast_1d(np.asarray(dec_c, dtype=np.float64))
    ra_part = np.char.zfill(np.floor(ra_c * 10 + 1e-6).astype(np.int64).astype(str), 4)
    dec_part = np.char.zfill(np.floor(np.abs(dec_c) * 10 + 1e-6).astype(np.int64).astype(str), 3)
    sign = np.where(dec_c >= 0, "p", "m")
    return np.char.add(np.char.add(ra_part, sign), dec_part).astype(object)


def brickname_of(ra, dec) -> np.ndarray:
    """Brick name of each position."""
    _, ra_c, dec_c = brick_of(ra, dec)
    return brick_names(ra_c, dec_c)


def cell_index(ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """(cell row, cell column) of positions."""
    ra = np.mod(np.asarray(ra, dtype=np.float64), 360.0)
    iy = np.floor((np.asarray(dec, dtype=np.float64) + 90.0 + BRICK_HEIGHT_DEG / 2) / CELL_DEG).astype(np.int64)
    ix = np.floor(ra / CELL_DEG).astype(np.int64) % N_CELL_COLS
    return iy, ix


def cell_origin(iy, ix) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) [deg] of the lower-left corner of cells."""
    return np.asarray(ix) * CELL_DEG, np.asarray(iy) * CELL_DEG - 90.0 - BRICK_HEIGHT_DEG / 2


def cells_in_box(ra_min: float, ra_max: float, dec_min: float, dec_max: float) -> tuple[np.ndarray, np.ndarray]:
    """All (iy, ix) cells overlapping an ra/dec box (ra_max may exceed 360 to wrap), row-major."""
    iy0, ix0 = cell_index(0.0, dec_min)[0], int(np.floor(ra_min / CELL_DEG))
    iy1, ix1 = cell_index(0.0, dec_max)[0], int(np.floor(ra_max / CELL_DEG))
    iy = np.arange(int(iy0), int(iy1) + 1)
    ix = np.arange(ix0, ix1 + 1)
    gy, gx = np.meshgrid(iy, ix, indexing="ij")
    return gy.ravel(), gx.ravel() % N_CELL_COLS


def objid_of(iy, ix, k) -> np.ndarray:
    """Tractor-like objid, unique within a brick: (cell row in brick row, column mod 4096, k)."""
    local_row = np.asarray(iy, dtype=np.int64) % CELLS_PER_BRICK_ROW
    return ((local_row * _COL_MOD + np.asarray(ix, dtype=np.int64) % _COL_MOD) * OBJ_PER_CELL_MAX
            + np.asarray(k, dtype=np.int64))
