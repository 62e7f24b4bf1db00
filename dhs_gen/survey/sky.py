"""The mock sky: galaxies and stars generated per cell, plus the real DR10 LRGs.

Every object is a pure function of (seed, cell, index) through :mod:`dhs_gen.survey.hashing`,
so the catalogue generator and the cutout renderer see the same sky. Distributions (tuned to
DR9/DR10 Tractor catalogues at high Galactic latitude):

* galaxies: r-band counts dN/dm ∝ 10^(0.33 m) over 16 < r < 24 (default 15,000 per deg^2);
  type mix PSF/REX/EXP/DEV/SER varying with magnitude; photo-z rising with r; red/blue colour
  sequences; log-normal half-light radii shrinking with r; axis ratios by type;
* stars: dN/dm ∝ 10^(0.2 m) over 9 < r < 23 (default 2,000 per deg^2), a stellar locus in
  g-r / r-z;
* real LRGs (``load_lrg_sample``) with their real fluxes, Tractor types and photo-z (the host
  estimator, :mod:`dhs_gen.survey.photoz`); shapes drawn from their position.

Redshifts: the real LRGs, their satellites and the lens galaxies (:mod:`dhs_gen.survey.lenses`)
carry the injection hosts' estimator (:mod:`dhs_gen.survey.photoz`) on their g, r, z, W1 fluxes.
The generated galaxies keep their generating redshift (colours are drawn from it, so it is
consistent with them by construction) rather than that estimator, for two reasons: the estimator
fits one LRG template, so on the generated blue (star-forming) galaxies it is biased low; and it
costs about ten times the generation of the objects themselves (``generated_objects`` runs for
every cutout's neighbourhood). Phase-4a hosts take z_l from the estimator on their own fluxes
(``manifest.host_redshift.column`` unset), so no z_l bin reads a generated galaxy's redshift
unless a config names the catalogue's ``z_phot_median`` column.

Fluxes are nanomaggies, sizes arcsec (half-light radius), Tractor ellipticities e1/e2.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.stats import poisson

from dhs_gen.survey.bricks import CELL_DEG, OBJ_PER_CELL_MAX, cell_origin, objid_of
from dhs_gen.survey.hashing import combine, normal, position_key, seed_key, unit
from dhs_gen.survey.hosts import _lrg_frame, lrgs_in_cells
from dhs_gen.units import mag_to_nmgy

TYPES = np.array(["PSF", "REX", "EXP", "DEV", "SER"], dtype=object)
PSF, REX, EXP, DEV, SER = range(5)
POP_GALAXY, POP_STAR, POP_LRG, POP_HOST, POP_SATELLITE, POP_LENS = 0, 1, 2, 3, 4, 5
POPULATIONS = np.array(["galaxy", "star", "lrg", "host", "satellite", "lens"], dtype=object)
LRG_OBJID_OFFSET = 16 * 4096 * OBJ_PER_CELL_MAX
SATELLITES_MAX = 15
SATELLITE_MEAN = 2.5
SATELLITE_RADIUS_ARCSEC = 15.0
GALAXY_DENSITY = 20000.0
STAR_DENSITY = 2000.0


def _power_law_mag(u, lo, hi, slope):
    a, b = 10.0 ** (slope * lo), 10.0 ** (slope * hi)
    return np.log10(a + u * (b - a)) / slope


def _ellipticity(key, types, stream):
    q = np.where(types == DEV, np.clip(0.75 + 0.15 * normal(key, stream), 0.3, 1.0),
                 np.where(types == SER, 0.25 + 0.75 * unit(key, stream + 1), 0.15 + 0.85 * unit(key, stream + 2)))
    q = np.where((types == REX) | (types == PSF), 1.0, q)
    e = (1.0 - q) / (1.0 + q)
    phi = np.pi * unit(key, stream + 3)
    return e * np.cos(2 * phi), e * np.sin(2 * phi)


def _galaxy_shapes(key, types, mag_r, stream):
    """shape_r [arcsec], e1, e2, sersic for galaxy types."""
    factor = np.select([types == DEV, types == SER, types == EXP], [1.25, 1.1, 1.0], 0.55)
    med = 0.6 * 10.0 ** (-0.15 * (mag_r - 21.0)) * factor
    shape_r = np.clip(med * np.exp(0.45 * normal(key, stream)), 0.05, 30.0)
    shape_r = np.where(types == REX, np.clip(shape_r, 0.02, 1.5), shape_r)
    shape_r = np.where(types == PSF, 0.0, shape_r)
    e1, e2 = _ellipticity(key, types, stream + 1)
    sersic = np.select([types == DEV, types == SER, types == PSF], [4.0, 0.5 + 5.5 * unit(key, stream + 6) ** 1.3, 0.0], 1.0)
    return shape_r, e1, e2, sersic


def _colours_galaxy(key, mag_r, types):
    zp = np.clip((0.08 + 0.1 * (mag_r - 17.0)) * np.exp(0.3 * normal(key, 20)), 0.01, 1.6)
    red = unit(key, 21) < np.where((types == DEV) | (types == SER), 0.7, 0.2)
    zc = np.minimum(zp, 1.2)
    g_r = np.where(red, 0.75 + 1.0 * zc, 0.2 + 0.35 * zc) + 0.1 * normal(key, 22)
    r_z = np.where(red, 0.45 + 0.9 * zc, 0.25 + 0.45 * zc) + 0.1 * normal(key, 23)
    z_w1 = 0.4 + 1.1 * zc + 0.3 * normal(key, 24)
    return g_r, r_z, z_w1, zp


def _colours_star(key):
    g_r = 0.25 + 1.25 * unit(key, 22) ** 0.8
    r_z = np.where(g_r < 1.3, 0.75 * g_r - 0.1, 0.9 + 2.5 * (g_r - 1.3)) + 0.05 * normal(key, 23)
    z_w1 = -0.3 + 0.5 * r_z + 0.1 * normal(key, 24)
    return g_r, r_z, z_w1


def _maskbits(key, pop, mag_r):
    """Tractor MASKBITS: BRIGHT(1), ALLMASK_G/R/Z(5-7), WISEM1(8), WISEM2(9), MEDIUM(11),
    GALAXY(12), CLUSTER(13) at realistic rates; bright stars flag themselves."""
    bits = np.zeros(len(pop), dtype=np.int32)
    for stream, (bit, rate) in enumerate([(1, 0.004), (5, 0.003), (6, 0.003), (7, 0.003), (8, 0.02),
                                          (9, 0.01), (11, 0.02), (12, 0.003), (13, 0.0005)]):
        bits |= np.where(unit(key, 40 + stream) < rate, 1 << bit, 0).astype(np.int32)
    star = pop == POP_STAR
    bits |= np.where(star & (mag_r < 13.0), 1 << 1, 0).astype(np.int32)
    bits |= np.where(star & (mag_r >= 13.0) & (mag_r < 16.0), 1 << 11, 0).astype(np.int32)
    return bits


def _empty() -> dict:
    f8 = np.zeros(0)
    return {"ra": f8, "dec": f8, "objid": np.zeros(0, np.int64), "population": np.zeros(0, np.int8),
            "type": np.zeros(0, np.int8), **{f"flux_{b}": f8 for b in ("g", "r", "z", "w1")},
            "shape_r": f8, "shape_e1": f8, "shape_e2": f8, "sersic": f8, "z_phot": f8,
            "maskbits": np.zeros(0, np.int32)}


@lru_cache(maxsize=8192)
def _poisson_cdf(mu: float) -> np.ndarray:
    return poisson.cdf(np.arange(OBJ_PER_CELL_MAX), mu)


def _poisson_inverse(u, mu):
    """Poisson deviates from uniforms by inverse CDF, grouped by the (few) distinct means."""
    out = np.zeros(len(u), dtype=np.int64)
    values, inverse = np.unique(mu, return_inverse=True)
    for i, m in enumerate(values):
        sel = inverse == i
        out[sel] = np.searchsorted(_poisson_cdf(float(m)), u[sel], side="right")
    return out


def cell_counts(iy, ix, seed=0, galaxy_density=GALAXY_DENSITY, star_density=STAR_DENSITY):
    """(n_galaxies, n_stars) per cell: Poisson with mean density x cell area (∝ cos dec)."""
    iy = np.asarray(iy, dtype=np.int64)
    ix = np.asarray(ix, dtype=np.int64)
    ckey = combine(seed_key(seed), (iy << 32) + ix)
    _, dec0 = cell_origin(iy, ix)
    area = CELL_DEG**2 * np.cos(np.radians(dec0 + CELL_DEG / 2))
    n_gal = _poisson_inverse(unit(ckey, 1), galaxy_density * area)
    n_star = _poisson_inverse(unit(ckey, 2), star_density * area)
    n_gal = np.minimum(n_gal, OBJ_PER_CELL_MAX - 1)
    return n_gal, np.minimum(n_star, OBJ_PER_CELL_MAX - 1 - n_gal), ckey


def generated_objects(iy, ix, seed=0, galaxy_density=GALAXY_DENSITY, star_density=STAR_DENSITY,
                      positions_only: bool = False) -> dict:
    """Columns (numpy arrays) of the galaxies and stars of the given cells, cell-major order
    (only ``ra``, ``dec`` when ``positions_only``)."""
    iy = np.asarray(iy, dtype=np.int64)
    ix = np.asarray(ix, dtype=np.int64)
    n_gal, n_star, ckey = cell_counts(iy, ix, seed, galaxy_density, star_density)
    n_tot = n_gal + n_star
    total = int(n_tot.sum())
    if total == 0:
        return {k: v for k, v in _empty().items() if not positions_only or k in ("ra", "dec")}
    cell = np.repeat(np.arange(len(iy)), n_tot)
    k = np.arange(total) - np.repeat(np.cumsum(n_tot) - n_tot, n_tot)
    pop = np.where(k < n_gal[cell], POP_GALAXY, POP_STAR).astype(np.int8)
    key = combine(ckey[cell], k.astype(np.uint64))
    ra0, dec0 = cell_origin(iy[cell], ix[cell])
    ra = ra0 + CELL_DEG * unit(key, 1)
    dec = dec0 + CELL_DEG * unit(key, 2)
    if positions_only:
        return {"ra": ra, "dec": dec}
    star = pop == POP_STAR
    mag_r = np.where(star, _power_law_mag(unit(key, 3), 9.0, 23.0, 0.2), _power_law_mag(unit(key, 3), 16.0, 24.0, 0.33))

    u = unit(key, 4)
    p_psf = np.clip(0.03 + 0.03 * (mag_r - 19.0), 0.02, 0.2)
    p_rex = np.clip(0.2 + 0.08 * (mag_r - 19.0), 0.15, 0.6)
    rest = 1.0 - p_psf - p_rex
    types = np.select([u < p_psf, u < p_psf + p_rex, u < p_psf + p_rex + 0.45 * rest,
                       u < p_psf + p_rex + 0.75 * rest], [PSF, REX, EXP, DEV], SER)
    types = np.where(star, PSF, types).astype(np.int8)
    shape_r, e1, e2, sersic = _galaxy_shapes(key, types, mag_r, 10)
    g_r, r_z, z_w1, zp = _colours_galaxy(key, mag_r, types)
    sg_r, sr_z, sz_w1 = _colours_star(key)
    g_r, r_z, z_w1 = np.where(star, sg_r, g_r), np.where(star, sr_z, r_z), np.where(star, sz_w1, z_w1)
    flux_r = mag_to_nmgy(mag_r)
    return {
        "ra": ra, "dec": dec, "objid": objid_of(iy[cell], ix[cell], k), "population": pop, "type": types,
        "flux_g": flux_r * 10.0 ** (-0.4 * g_r), "flux_r": flux_r, "flux_z": flux_r * 10.0 ** (0.4 * r_z),
        "flux_w1": flux_r * 10.0 ** (0.4 * (r_z + z_w1)),
        "shape_r": shape_r, "shape_e1": e1, "shape_e2": e2, "sersic": sersic,
        "z_phot": np.where(star, 0.0, zp), "maskbits": _maskbits(key, pop, mag_r),
    }


@lru_cache(maxsize=1)
def _lrg_arrays() -> dict:
    frame = _lrg_frame()
    type_codes = {str(t): i for i, t in enumerate(TYPES)}
    out = {c: frame[c].to_numpy(np.float64) for c in ("ra", "dec", "flux_g", "flux_r", "flux_z", "flux_w1",
                                                       "z_phot")}
    out["type"] = frame["type"].map(type_codes).fillna(EXP).to_numpy(np.int8)
    return out


def lrg_objid(index) -> np.ndarray:
    """The mock's objid of real DR10 LRGs (rows ``index`` of the LRG sample); their satellites
    take the next ``SATELLITES_MAX`` objids."""
    return LRG_OBJID_OFFSET + np.asarray(index, dtype=np.int64) * (SATELLITES_MAX + 1)


def lrg_galaxy_ids(index, ra, dec) -> np.ndarray:
    """``{brickname}_{objid}`` of LRG-sample rows ``index`` at ``ra``, ``dec`` [deg]: the
    ``galaxy_id`` the mock catalogue (and so its negative pool) gives the same galaxy, so a host
    that is also a catalogue negative carries one id in both (provenance compares ids). The
    packaged sample has no real DR10 objid: on the real survey, give hosts their Tractor
    ``brickname``/``objid`` ids through a host table instead."""
    from dhs_gen.catalog.tractor import galaxy_ids
    from dhs_gen.survey.bricks import brickname_of

    return galaxy_ids(brickname_of(ra, dec), lrg_objid(index))


def lrg_core(index, seed=0) -> tuple[dict, np.ndarray]:
    """(columns, keys) of real DR10 LRGs (rows ``index`` of the LRG sample) without companions:
    real position, fluxes, type and photo-z (the estimator of :mod:`dhs_gen.survey.photoz` on their
    real g, r, z, W1, as for the injection hosts); shape, ellipticity and Sersic index from the position."""
    arr = _lrg_arrays()
    index = np.asarray(index, dtype=np.int64)
    ra, dec = arr["ra"][index], arr["dec"][index]
    key = combine(seed_key(seed), position_key(ra, dec))
    types = arr["type"][index]
    shape_r = np.clip(0.9 * np.exp(0.4 * normal(key, 10)), 0.2, 8.0)
    shape_r = np.select([types == PSF, types == REX], [0.0, np.clip(0.45 * shape_r, 0.05, 1.5)], shape_r)
    e1, e2 = _ellipticity(key, types, 11)
    sersic = np.select([types == DEV, types == SER, types == PSF], [4.0, 2.5 + 3.5 * unit(key, 16), 0.0], 1.0)
    cols = {"ra": ra, "dec": dec, "objid": lrg_objid(index),
            "population": np.full(len(index), POP_LRG, np.int8), "type": types,
            **{f"flux_{b}": arr[f"flux_{b}"][index] for b in ("g", "r", "z", "w1")},
            "shape_r": shape_r, "shape_e1": e1, "shape_e2": e2, "sersic": sersic,
            "z_phot": arr["z_phot"][index], "maskbits": np.zeros(len(index), np.int32)}
    return cols, key


def lrg_objects(index, seed=0) -> dict:
    """Columns of real DR10 LRGs (rows ``index`` of the LRG sample) and their companions."""
    if not len(np.atleast_1d(index)):
        return _empty()
    lrgs, key = lrg_core(index, seed)
    return concat_objects([lrgs, satellites(lrgs, key)])


def satellites(parents: dict, keys) -> dict:
    """Faint red companions of massive galaxies (Poisson mean 2.5 within 15"), drawn from the
    parents' keys; objid = parent objid + 1..15. Real LRGs live in groups; the packaged DR10
    cutouts show it."""
    from scipy.stats import poisson

    keys = np.asarray(keys, dtype=np.uint64)
    n = np.minimum(poisson.ppf(unit(keys, 80), SATELLITE_MEAN).astype(np.int64), SATELLITES_MAX)
    total = int(n.sum())
    if total == 0:
        return _empty()
    parent = np.repeat(np.arange(len(keys)), n)
    j = np.arange(total) - np.repeat(np.cumsum(n) - n, n) + 1
    key = combine(keys[parent], j.astype(np.uint64) + np.uint64(1000))
    radius = (2.5 + (SATELLITE_RADIUS_ARCSEC - 2.5) * unit(key, 1) ** 0.8) / 3600.0
    angle = 2 * np.pi * unit(key, 2)
    dec = parents["dec"][parent] + radius * np.cos(angle)
    ra = parents["ra"][parent] + radius * np.sin(angle) / np.cos(np.radians(parents["dec"][parent]))
    flux_r = parents["flux_r"][parent] * 10.0 ** (-0.4 * (1.0 + 3.0 * unit(key, 3)))
    g_r = -2.5 * np.log10(np.clip(parents["flux_g"][parent] / parents["flux_r"][parent], 1e-3, None))
    r_z = -2.5 * np.log10(np.clip(parents["flux_r"][parent] / parents["flux_z"][parent], 1e-3, None))
    g_r = g_r - 0.3 * unit(key, 4) + 0.08 * normal(key, 5)
    r_z = r_z - 0.2 * unit(key, 4) + 0.08 * normal(key, 6)
    u = unit(key, 7)
    types = np.select([u < 0.35, u < 0.7, u < 0.85], [REX, EXP, DEV], SER).astype(np.int8)
    mag_r = 22.5 - 2.5 * np.log10(flux_r)
    shape_r, e1, e2, sersic = _galaxy_shapes(key, types, mag_r, 10)
    return {"ra": ra % 360.0, "dec": dec, "objid": parents["objid"][parent] + j,
            "population": np.full(total, POP_SATELLITE, np.int8), "type": types,
            "flux_g": flux_r * 10.0 ** (-0.4 * g_r), "flux_r": flux_r, "flux_z": flux_r * 10.0 ** (0.4 * r_z),
            "flux_w1": flux_r * 10.0 ** (0.4 * (r_z + 1.2)), "shape_r": shape_r, "shape_e1": e1, "shape_e2": e2,
            "sersic": sersic, "z_phot": parents["z_phot"][parent], "maskbits": np.zeros(total, np.int32)}


def concat_objects(parts: list) -> dict:
    """Concatenate object column dicts."""
    parts = [p for p in parts if len(p["ra"])]
    if not parts:
        return _empty()
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def sky_objects(iy, ix, seed=0, galaxy_density=GALAXY_DENSITY, star_density=STAR_DENSITY,
                include_lrgs: bool = True, lrg_cells=None, lenses: str | None = None) -> dict:
    """All objects of the given cells: generated galaxies and stars, the real LRGs (and their
    satellites) of ``lrg_cells`` (default: the same cells), then the lens galaxies of the lens
    table ``lenses`` (``"lenscat"`` or a table URI, see :mod:`dhs_gen.survey.lenses`; None: no lenses)."""
    parts = [generated_objects(iy, ix, seed, galaxy_density, star_density)]
    if include_lrgs:
        ly, lx = (iy, ix) if lrg_cells is None else lrg_cells
        parts.append(lrg_objects(lrgs_in_cells(ly, lx), seed))
    if lenses:
        from dhs_gen.survey.lenses import lens_galaxies, lenses_in_cells

        parts.append(lens_galaxies(lenses_in_cells(iy, ix, lenses), seed, lenses, include_lrgs))
    return concat_objects(parts)
