"""A Tractor/sweep-like catalogue of the mock sky, at any size, vectorised.

Columns follow the DR9/DR10 Tractor data model, lower-cased (``brickname``, ``objid``, ``ra``,
``dec``, ``type`` PSF/REX/EXP/DEV/SER, ``flux_g/r/z/w1`` [nanomaggies], ``shape_r`` [arcsec],
``shape_e1``, ``shape_e2``, ``sersic``, ``nobs_g/r/z``, ``psfsize_g/r/z`` [arcsec FWHM],
``psfdepth_g/r/z`` and ``galdepth_g/r/z`` as inverse variances [nmgy^-2] exactly as sweeps store
them, ``maskbits``, ``ebv`` [mag], ``z_phot_median`` (photo-z), ``brick_primary``, ``release``)
plus ``mock_population`` (galaxy | star | lrg | satellite | lens: the truth, not a Tractor column).

Rows are the objects of whole bricks taken in a fixed plan: the real DR10 bricks that hold the
LRG sample and the real-conditions bricks first (so small catalogues contain the real LRGs and
real conditions), then a strip of bricks from ra = 150 deg, dec = -5 deg northwards; the first
``n_rows`` in that order (brick order, then objid) form the catalogue. With ``lens_patches=N``
the plan starts with the sky cells of N lenscat DESI lenses (:func:`patch_cells`; segments with
``row == PATCH_ROW``) and the bricks leave those cells out, so each object is still one row. A cutout of
:class:`~dhs_gen.survey.MockDR10` (same seed) at any row's (ra, dec) shows that object centred.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property, lru_cache
from typing import List

import numpy as np
import pyarrow as pa

from dhs_gen.survey.bricks import (
    BRICK_HEIGHT_DEG,
    N_CELL_COLS,
    _ncols,
    brick_names,
    brick_of,
    brick_row,
    cell_index,
    cells_in_box,
)
from dhs_gen.survey.conditions import conditions_at, real_bricks
from dhs_gen.survey.hashing import combine, normal, position_key, seed_key
from dhs_gen.survey.hosts import _lrg_frame, lrgs_in_cells
from dhs_gen.survey.lenses import LENSCAT, lens_galaxies, lenses_in_cells, load_lens_table, patch_lenses
from dhs_gen.survey.sky import (
    GALAXY_DENSITY,
    POPULATIONS,
    SATELLITE_RADIUS_ARCSEC,
    STAR_DENSITY,
    TYPES,
    generated_objects,
    lrg_objects,
    sky_objects,
)
from dhs_gen.units import FWHM_PER_SIGMA, mag5_to_psfdepth_ivar

DR10_RELEASE = 10000
STRIP_RA0, STRIP_DEC0, STRIP_RA_SPAN = 150.0, -5.0, 90.0
SEGMENT_BRICKS = 32
PATCH_ROW = -1  # Segment.row of a lens-patch segment: col0:col1 index the plan's patch cells
PATCH_CELLS_PER_SEGMENT = 64
# half-light radius [arcsec] of the reference galaxy (round exponential) behind galdepth
_GALDEPTH_REF_SIGMA = 0.45 / 1.2

CATALOG_SCHEMA = pa.schema([
    ("release", pa.int16()), ("brickname", pa.string()), ("objid", pa.int32()), ("brick_primary", pa.bool_()),
    ("type", pa.string()), ("ra", pa.float64()), ("dec", pa.float64()),
    *[(f"flux_{b}", pa.float32()) for b in ("g", "r", "z", "w1")],
    *[(f"nobs_{b}", pa.int16()) for b in "grz"],
    *[(f"psfsize_{b}", pa.float32()) for b in "grz"],
    *[(f"psfdepth_{b}", pa.float32()) for b in "grz"],
    *[(f"galdepth_{b}", pa.float32()) for b in "grz"],
    ("shape_r", pa.float32()), ("shape_e1", pa.float32()), ("shape_e2", pa.float32()), ("sersic", pa.float32()),
    ("maskbits", pa.int32()), ("ebv", pa.float32()), ("z_phot_median", pa.float32()), ("mock_population", pa.string()),
])
UNITS = {**{f"flux_{b}": "nanomaggies" for b in ("g", "r", "z", "w1")},
         **{f"psfsize_{b}": "arcsec (PSF FWHM)" for b in "grz"},
         **{f"psfdepth_{b}": "nmgy^-2 (inverse variance of a point-source flux)" for b in "grz"},
         **{f"galdepth_{b}": "nmgy^-2 (inverse variance of a 0.45\" exponential galaxy flux)" for b in "grz"},
         "shape_r": "arcsec", "ra": "deg", "dec": "deg", "ebv": "mag"}


@dataclass(frozen=True)
class Segment:
    """Consecutive bricks ``col0 <= col < col1`` of brick row ``row``, holding ``n_rows`` objects;
    with ``row == PATCH_ROW`` the lens-patch cells ``col0:col1`` of :func:`patch_cells`."""

    row: int
    col0: int
    col1: int
    n_rows: int = -1


def _real_brick_keys() -> List[tuple]:
    lrg = _lrg_frame()
    ids_l, _, _ = brick_of(lrg["ra"].to_numpy(), lrg["dec"].to_numpy())
    ids = np.concatenate([np.unique(ids_l), real_bricks()["brick_id"].to_numpy()])
    _, first = np.unique(ids, return_index=True)
    ordered = ids[np.sort(first)]
    return [(int(i >> 20), int(i & ((1 << 20) - 1))) for i in ordered]


def _strip_segments(skip: set):
    row = int(brick_row(np.array([STRIP_DEC0]))[0])
    while True:
        ncols = int(_ncols(np.array([row]))[0])
        width = 360.0 / ncols
        col0 = int(np.floor(STRIP_RA0 / width))
        col1 = col0 + int(np.ceil(STRIP_RA_SPAN / width))
        run = []
        for col in range(col0, col1):
            if (row, col) in skip:
                continue
            if run and (col != run[-1] + 1 or len(run) == SEGMENT_BRICKS):
                yield Segment(row, run[0], run[-1] + 1)
                run = []
            run.append(col)
        if run:
            yield Segment(row, run[0], run[-1] + 1)
        row += 1


def _segment_box(seg: Segment) -> tuple[float, float, float, float]:
    width = 360.0 / int(_ncols(np.array([seg.row]))[0])
    dec_c = seg.row * BRICK_HEIGHT_DEG - 90.0
    eps = 1e-9
    return (seg.col0 * width, seg.col1 * width - eps, dec_c - BRICK_HEIGHT_DEG / 2,
            dec_c + BRICK_HEIGHT_DEG / 2 - eps)


def _in_segment(ra, dec, seg: Segment) -> np.ndarray:
    ids, _, _ = brick_of(ra, dec)
    return ((ids >> 20) == seg.row) & ((ids & ((1 << 20) - 1)) >= seg.col0) & ((ids & ((1 << 20) - 1)) < seg.col1)


def _lrg_cells(seg: Segment):
    """Cells whose LRGs (with satellites up to 15" away) can fall in the segment."""
    ra0, ra1, dec0, dec1 = _segment_box(seg)
    pad = (SATELLITE_RADIUS_ARCSEC + 1.0) / 3600.0
    dra = pad / max(np.cos(np.radians(max(abs(dec0), abs(dec1)))), 1e-3)
    return cells_in_box(ra0 - dra, ra1 + dra, dec0 - pad, dec1 + pad)


@lru_cache(maxsize=8)
def patch_cells(lens_patches: int, seed=0, lens_table: str | None = None) -> np.ndarray:
    """Cell keys (iy * 2^32 + ix) of the catalogue's lens patches, in plan order: the cells of
    the first ``lens_patches`` lenses of :func:`dhs_gen.survey.lenses.patch_lenses`."""
    if lens_patches <= 0:
        return np.zeros(0, dtype=np.int64)
    table = load_lens_table(lens_table or LENSCAT)
    rows = patch_lenses(lens_patches, lens_table or LENSCAT, seed)
    iy, ix = cell_index(table["ra"].to_numpy()[rows], table["dec"].to_numpy()[rows])
    keys = iy * (1 << 32) + ix
    _, first = np.unique(keys, return_index=True)
    return keys[np.sort(first)]


def _cell_keys(ra, dec) -> np.ndarray:
    iy, ix = cell_index(ra, dec)
    return iy * (1 << 32) + ix


def _segment_cells(seg: Segment, patches: np.ndarray):
    """(iy, ix) of the cells a segment generates: a lens patch's cells or the brick box's."""
    if seg.row == PATCH_ROW:
        keys = patches[seg.col0:seg.col1]
        return keys >> 32, keys & ((1 << 32) - 1)
    return cells_in_box(*_segment_box(seg))


def _segment_lrg_cells(seg: Segment, patches: np.ndarray):
    """Cells whose LRGs (with satellites up to 15" away) can fall in the segment."""
    if seg.row != PATCH_ROW:
        return _lrg_cells(seg)
    iy, ix = _segment_cells(seg, patches)
    dy, dx = (d.ravel() for d in np.meshgrid([-1, 0, 1], [-1, 0, 1], indexing="ij"))
    return (iy[:, None] + dy[None, :]).ravel(), ((ix[:, None] + dx[None, :]) % N_CELL_COLS).ravel()


def _keep(ra, dec, seg: Segment, patches: np.ndarray) -> np.ndarray:
    """Objects that are rows of the segment: inside its patch cells, or inside its bricks and
    outside every lens patch (each object belongs to exactly one segment)."""
    keys = _cell_keys(ra, dec)
    if seg.row == PATCH_ROW:
        return np.isin(keys, patches[seg.col0:seg.col1])
    keep = _in_segment(ra, dec, seg)
    if len(patches):
        keep &= ~np.isin(keys, patches)
    return keep


@dataclass(frozen=True)
class CatalogSpec:
    """What mock sky a catalogue is drawn from: the options shared by :func:`plan_catalog`,
    :func:`catalog_segment` and :func:`mock_catalog` (densities per deg^2)."""

    seed: int = 0
    galaxy_density: float = GALAXY_DENSITY
    star_density: float = STAR_DENSITY
    include_lrgs: bool = True
    include_lenses: bool = True  # known lenses (lenscat or lens_table) are part of the sky
    lens_table: str | None = None  # None: the packaged lenscat
    lens_patches: int = 0  # the plan starts with the cells of this many lenscat DESI lenses

    @property
    def lenses(self) -> str | None:
        """The lens table painted into the sky (None: no lenses)."""
        return (self.lens_table or LENSCAT) if self.include_lenses else None

    @cached_property
    def patches(self) -> np.ndarray:
        """Cell keys of the lens patches (none without lenses)."""
        return patch_cells(self.lens_patches, self.seed, self.lens_table) if self.lenses else patch_cells(0)


def catalog_spec(spec: CatalogSpec | None = None, **options) -> CatalogSpec:
    """``spec``, or one built from keyword options (``seed=``, ``lens_patches=``, ...); not both."""
    if spec is not None and options:
        raise TypeError(f"give a CatalogSpec or options, not both (got {sorted(options)})")
    if spec is None:
        unknown = set(options) - {f.name for f in fields(CatalogSpec)}
        if unknown:
            raise TypeError(f"unknown catalogue option(s) {sorted(unknown)}")
        spec = CatalogSpec(**options)
    return spec


def _count_segment(seg: Segment, spec: CatalogSpec) -> int:
    patches, lenses = spec.patches, spec.lenses
    iy, ix = _segment_cells(seg, patches)
    pos = generated_objects(iy, ix, spec.seed, spec.galaxy_density, spec.star_density, positions_only=True)
    n = int(_keep(pos["ra"], pos["dec"], seg, patches).sum())
    if spec.include_lrgs:
        lrg = lrg_objects(lrgs_in_cells(*_segment_lrg_cells(seg, patches)), spec.seed)
        n += int(_keep(lrg["ra"], lrg["dec"], seg, patches).sum())
    if lenses:
        gal = lens_galaxies(lenses_in_cells(iy, ix, lenses), spec.seed, lenses, spec.include_lrgs)
        n += int(_keep(gal["ra"], gal["dec"], seg, patches).sum())
    return n


def _all_segments(patches: np.ndarray):
    """Every segment of the catalogue plan, in order (lens patches, real bricks, then the strip)."""
    for start in range(0, len(patches), PATCH_CELLS_PER_SEGMENT):
        yield Segment(PATCH_ROW, start, min(start + PATCH_CELLS_PER_SEGMENT, len(patches)))
    real = _real_brick_keys()
    yield from (Segment(r, c, c + 1) for r, c in real)
    yield from _strip_segments(set(real))


def plan_catalog(n_rows: int, spec: CatalogSpec | None = None, **options) -> List[Segment]:
    """The segments whose objects make the first ``n_rows`` rows; the last is truncated
    (``Segment.n_rows`` = rows to keep). Cheap: only object positions are generated.
    ``spec`` (or its fields as keyword options): see :class:`CatalogSpec`."""
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    spec = catalog_spec(spec, **options)
    plan, total = [], 0
    for seg in _all_segments(spec.patches):
        if total >= n_rows:
            break
        n = _count_segment(seg, spec)
        if n == 0:
            continue
        keep = min(n, n_rows - total)
        plan.append(Segment(seg.row, seg.col0, seg.col1, keep))
        total += keep
    return plan


def catalog_segment(seg: Segment, spec: CatalogSpec | None = None, **options) -> pa.Table:
    """The catalogue rows of one segment (ordered by brick, objid), first ``seg.n_rows`` of them."""
    spec = catalog_spec(spec, **options)
    patches = spec.patches
    iy, ix = _segment_cells(seg, patches)
    objs = sky_objects(iy, ix, spec.seed, spec.galaxy_density, spec.star_density, spec.include_lrgs,
                       lrg_cells=_segment_lrg_cells(seg, patches), lenses=spec.lenses)
    ids, ra_c, dec_c = brick_of(objs["ra"], objs["dec"])
    keep = _keep(objs["ra"], objs["dec"], seg, patches)
    order = np.flatnonzero(keep)[np.lexsort((objs["objid"][keep], ids[keep]))]
    if seg.n_rows >= 0:
        order = order[:seg.n_rows]
    o = {k: v[order] for k, v in objs.items()}
    uniq, first, inverse = np.unique(ids[order], return_index=True, return_inverse=True)
    names = _dictionary(inverse, brick_names(ra_c[order][first], dec_c[order][first]))
    return objects_table(o, names, spec.seed)


def _dictionary(codes, values) -> pa.Array:
    """A string column from integer codes into ``values`` (built as a dictionary array)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, dtype=np.int32)),
                                          pa.array(list(values), pa.string())).cast(pa.string())


def objects_table(o: dict, bricknames, seed=0) -> pa.Table:
    """Sky objects (columns) -> catalogue Table with Tractor columns and per-source conditions."""
    n = len(o["ra"])
    cond = conditions_at(o["ra"], o["dec"], seed) if n else {k: np.zeros(0) for k in
                                                               [f"{p}_{b}" for p in ("psfsize", "psfdepth", "nobs")
                                                                for b in "grz"] + ["ebv"]}
    key = combine(seed_key(seed), position_key(o["ra"], o["dec"])) if n else np.zeros(0, np.uint64)
    cols = {
        "release": np.full(n, DR10_RELEASE, np.int16), "brickname": bricknames, "objid": o["objid"].astype(np.int32),
        "brick_primary": np.ones(n, bool), "type": _dictionary(o["type"], TYPES), "ra": o["ra"], "dec": o["dec"],
        **{f"flux_{b}": o[f"flux_{b}"].astype(np.float32) for b in ("g", "r", "z", "w1")},
    }
    for b in "grz":
        cols[f"nobs_{b}"] = cond[f"nobs_{b}"].astype(np.int16)
    for i, b in enumerate("grz"):
        psf = cond[f"psfsize_{b}"] * np.exp(0.02 * normal(key, 60 + i)) if n else np.zeros(0)
        cols[f"psfsize_{b}"] = psf.astype(np.float32)
        m5 = cond[f"psfdepth_{b}"] + (0.04 * normal(key, 70 + i) if n else 0.0)
        ivar = mag5_to_psfdepth_ivar(m5)
        sig2 = (psf / FWHM_PER_SIGMA) ** 2
        cols[f"psfdepth_{b}"] = ivar.astype(np.float32)
        cols[f"galdepth_{b}"] = (ivar * sig2 / (sig2 + _GALDEPTH_REF_SIGMA**2)).astype(np.float32)
    cols.update({
        "shape_r": o["shape_r"].astype(np.float32), "shape_e1": o["shape_e1"].astype(np.float32),
        "shape_e2": o["shape_e2"].astype(np.float32), "sersic": o["sersic"].astype(np.float32),
        "maskbits": o["maskbits"].astype(np.int32), "ebv": cond["ebv"].astype(np.float32),
        "z_phot_median": o["z_phot"].astype(np.float32), "mock_population": _dictionary(o["population"], POPULATIONS),
    })
    arrays = [cols[f.name] if isinstance(cols[f.name], pa.Array) else pa.array(cols[f.name], type=f.type)
              for f in CATALOG_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=CATALOG_SCHEMA)


def mock_catalog(n_rows: int, spec: CatalogSpec | None = None, **options) -> pa.Table:
    """The first ``n_rows`` objects of the mock sky as a Tractor-like Table (see module doc);
    ``spec`` (or its fields as keyword options): see :class:`CatalogSpec`."""
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    spec = catalog_spec(spec, **options)
    tables, total = [], 0
    for seg in _all_segments(spec.patches):
        if total >= n_rows:
            break
        table = catalog_segment(seg, spec)
        tables.append(table.slice(0, n_rows - total))
        total += tables[-1].num_rows
    if not tables:
        return CATALOG_SCHEMA.empty_table()
    return pa.concat_tables(tables).combine_chunks()
