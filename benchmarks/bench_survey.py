"""Survey benchmarks: mock cutouts per second per core, mock catalogue rows per second.

Baselines, measured in the same run on the same positions:
* ``mock_cutouts_per_s_core`` (Moffat PSF, the default) vs the same cutouts through the
  PSFEx path (real DECam PSF models, spline-resampled per band and per star);
* ``mock_catalog_rows_per_s`` (vectorised splitmix64 streams, all columns) vs the naive
  per-row approach: a ``dhs_gen.determinism.row_rng`` Generator per object drawing the 25 random
  numbers an object needs (random numbers only, no columns built, so a lower bound on its cost).
Single process, so per second = per core.
"""
from __future__ import annotations

import time

from benchmarks.timing import best_time, entry


def _rate(fn, n: int, repeats: int) -> float:
    return n / best_time(fn, repeats=repeats, warmup=1)


def run(quick: bool = False) -> list:
    from dhs_gen.determinism import row_rng
    from dhs_gen.survey import MockDR10
    from dhs_gen.survey.catalog import mock_catalog

    n_cut = 10 if quick else 60
    positions = [(150.0 + 0.013 * i, 2.0 + 0.007 * i) for i in range(n_cut)]
    moffat, psfex = MockDR10(seed=0), MockDR10(seed=0, psf_model="psfex")

    def cutouts(mock):
        return lambda: [mock.get_cutout(ra, dec) for ra, dec in positions]

    repeats = 1 if quick else 2
    r_moffat = _rate(cutouts(moffat), n_cut, repeats)
    r_psfex = _rate(cutouts(psfex), n_cut, repeats)

    from dhs_gen.survey.lenses import load_lens_table, patch_lenses

    lens_table = load_lens_table()
    rows = patch_lenses(n_cut)
    lens_positions = list(zip(lens_table["ra"].to_numpy()[rows], lens_table["dec"].to_numpy()[rows]))
    no_lenses = MockDR10(seed=0, include_lenses=False)

    def lens_cutouts(mock):
        return lambda: [mock.get_cutout(ra, dec) for ra, dec in lens_positions]

    lens_cutouts(moffat)()  # warm the arc renderer
    r_lens = _rate(lens_cutouts(moffat), n_cut, repeats)
    r_plain = _rate(lens_cutouts(no_lenses), n_cut, repeats)

    n_rows = 20_000 if quick else 200_000
    n_naive = 2_000 if quick else 10_000
    mock_catalog(1000)  # warm caches (packaged tables)
    t0 = time.perf_counter()
    table = mock_catalog(n_rows)
    r_cat = table.num_rows / (time.perf_counter() - t0)
    ids = [f"{b}_{o}" for b, o in zip(table.column("brickname").to_pylist()[:n_naive],
                                       table.column("objid").to_pylist()[:n_naive])]
    t0 = time.perf_counter()
    for row_id in ids:
        row_rng(0, row_id).random(25)
    r_naive = len(ids) / (time.perf_counter() - t0)
    return [
        entry("mock_cutouts_per_s_core", r_moffat, "cutouts/s", "psfex_path_cutouts_per_s_core", r_psfex,
              notes=f"101x101x3 float32, Moffat PSF, noise+neighbours+defects; {n_cut} positions"),
        entry("mock_lens_cutouts_per_s_core", r_lens, "cutouts/s", "same_positions_lenses_off_per_s_core", r_plain,
              notes=f"{n_cut} lenscat positions: lens galaxy + SIE-lensed Sersic arcs (4x supersampled) vs "
                    "a host galaxy without arcs"),
        entry("mock_catalog_rows_per_s", r_cat, "rows/s", "per_row_generator_rows_per_s", r_naive,
              notes=f"{n_rows} Tractor-like rows (all columns) vs {n_naive} rows of per-row Generators"),
    ]
