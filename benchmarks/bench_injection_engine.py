"""Injection engine: the fast compiled engine vs lenstronomy used well, per stamp (g, r, z, 64x64,
supersampling 4, 33-px Moffat kernels), Sérsic and COSMOS (image) sources.

Sides, same lens / source / PSF configurations, one process, measured in one run:

- fast: ``render_lensed_source(..., backend="fast")`` — compiled float32 kernels (numba,
  ``dhs_gen.lensing.kernels``; exp2/log2/atan2 as polynomials that vectorise), one thread: pixel
  centres ray-traced first, sub-pixels only for pixels outside the faintest 1e-6 of the light
  (Sérsic: one compiled call per batch; COSMOS: compiled tracing + bilinear reads), then float32
  FFT convolution batched over rows and bands (Moffat spectra by cosine sums, band fluxes folded
  in).
- lenstronomy used well (the baseline): ``backend="lenstronomy"`` — one lenstronomy ``ImageModel``
  (PixelGrid 64x64, PSF ``NONE``, supersampling_factor 4) built once per lens-model list; per
  stamp one ``ImageModel.image`` (one ray trace + SERSIC_ELLIPSE / INTERPOL on the 256x256
  sub-pixel grid, binned); each band's 33x33 kernel by ``scipy.signal.fftconvolve(mode="same")``.
- lenstronomy per-band models (second baseline, Sérsic only): a new ``ImageModel`` with the band's
  PIXEL PSF per stamp and band (three ray traces per stamp), as the earlier reference did.

Ratios are CPU-time ratios (``time.process_time``: per core, robust to other load) and wall-time
ratios; accuracy (worst relative L2 per stamp and band, worst total-flux error) is of the fast
engine against lenstronomy used well on the baseline's stamps.
"""
from __future__ import annotations

import time

import numpy as np

from benchmarks.timing import best_time, entry

SIDES = {
    "fast": "dhs_gen fast engine (compiled float32 kernels + FFTs, one thread)",
    "well": "lenstronomy used well: one PSF-less ImageModel, one image per stamp, fftconvolve per band",
    "per_band": "lenstronomy per-band models: a new ImageModel with the band's PSF per stamp and band",
}


def _configs(n: int, seed: int = 0):
    from dhs_gen.sources import get_source

    rng = np.random.default_rng(seed)
    theta_e = rng.uniform(0.5, 3.0, n)
    q = rng.uniform(0.5, 1.0, n)
    phi = rng.uniform(0, np.pi, n)
    e = (1 - q) / (1 + q)
    lens = dict(theta_E=theta_e, e1=e * np.cos(2 * phi), e2=e * np.sin(2 * phi), center_x=rng.normal(0, 0.05, n),
                center_y=rng.normal(0, 0.05, n), gamma1=rng.normal(0, 0.05, n), gamma2=rng.normal(0, 0.05, n))
    psf = rng.uniform(0.9, 1.8, (n, 3))
    sersic = get_source("sersic").sample(rng, n, theta_E=theta_e)
    cosmos = get_source("cosmos").sample(rng, n, theta_E=theta_e)
    return lens, sersic, cosmos, psf


def _rows(d, k):
    return {key: (v[:k] if key != "kind" else v) for key, v in d.items()}


def _per_band_models(lens: dict, batch: dict, psf: np.ndarray) -> np.ndarray:
    """The second baseline: lenstronomy with a new ImageModel per stamp and band (Sérsic)."""
    from dhs_gen.lensing.geometry import sersic_amp_from_flux
    from dhs_gen.lensing.params import FLUX_KEYS, SERSIC_KEYS, validate_lens, validate_sersic
    from dhs_gen.lensing.reference import render_sersic_per_band_models
    from dhs_gen.lensing.render import band_fluxes, psf_kernels

    lens_p = validate_lens(lens)
    src = validate_sersic({k: batch[k] for k in SERSIC_KEYS + FLUX_KEYS}, size=len(psf))
    amps = sersic_amp_from_flux(band_fluxes(src), src["R_sersic"][:, None], src["n_sersic"][:, None])
    return render_sersic_per_band_models(lens_p, src, amps, psf_kernels(psf, 64), 64, 0.262, 4)


def _measure(name: str, lens: dict, batch: dict, psf: np.ndarray, n_ref: int, quick: bool) -> list:
    from dhs_gen.sources import render_lensed_source

    n_fast = len(psf)
    ref_args = (_rows(lens, n_ref), _rows(batch, n_ref), psf[:n_ref])
    repeats = 1 if quick else 3

    def fast():
        return render_lensed_source(lens, batch, psf)

    def well():
        return render_lensed_source(*ref_args, backend="lenstronomy")

    render_lensed_source(_rows(lens, 1), _rows(batch, 1), psf[:1], backend="lenstronomy")  # imports, caches
    fast_wall = best_time(fast, repeats=repeats)
    well_wall = best_time(well, repeats=1 if quick else 2, warmup=0)
    fast_cpu = best_time(fast, repeats=repeats, warmup=0, clock=time.process_time) / n_fast
    well_cpu = best_time(well, repeats=1 if quick else 2, warmup=0, clock=time.process_time) / n_ref
    ref = well()
    fast_img = render_lensed_source(*ref_args)
    rel = np.linalg.norm((fast_img - ref).reshape(n_ref * 3, -1), axis=1) / \
        np.linalg.norm(ref.reshape(n_ref * 3, -1), axis=1)
    flux = np.abs(fast_img.sum(axis=(2, 3), dtype=np.float64) / ref.sum(axis=(2, 3), dtype=np.float64) - 1)
    sizes = f"g,r,z 64x64, supersampling 4, 33-px Moffat kernels; fast batch {n_fast}, lenstronomy {n_ref} stamps"
    rows = [
        entry(f"injection_engine.{name}.fast_cpu_ms_per_stamp", fast_cpu * 1e3, "ms CPU/stamp",
              baseline_name=f"{SIDES['well']} ({name})", baseline_value=well_cpu * 1e3, ratio=well_cpu / fast_cpu,
              target=">= 20x (stretch 40x)", notes=f"per core (process CPU time); ratio = speed-up; {sizes}"),
        entry(f"injection_engine.{name}.fast_stamps_per_s", n_fast / fast_wall, "stamps/s",
              baseline_name=f"{SIDES['well']} ({name})", baseline_value=n_ref / well_wall,
              notes=f"wall clock, one process; {sizes}"),
        entry(f"injection_engine.{name}.fast_vs_lenstronomy_max_rel_l2", float(rel.max()), "fraction",
              target="<= 1e-5", notes="||fast - lenstronomy|| / ||lenstronomy|| per stamp and band, worst case"),
        entry(f"injection_engine.{name}.fast_vs_lenstronomy_max_flux_err", float(flux.max()), "fraction",
              target="<= 1e-4", notes="|total flux fast / lenstronomy - 1| per stamp and band, worst case"),
    ]
    if name == "sersic":
        n_old = max(1, n_ref // 4)
        old_args = (_rows(lens, n_old), _rows(batch, n_old), psf[:n_old])
        old_cpu = best_time(lambda: _per_band_models(*old_args), repeats=1, warmup=0, clock=time.process_time) / n_old
        rows.append(entry("injection_engine.sersic.lenstronomy_well_vs_per_band_cpu_ms_per_stamp", well_cpu * 1e3,
                          "ms CPU/stamp", baseline_name=SIDES["per_band"], baseline_value=old_cpu * 1e3,
                          ratio=old_cpu / well_cpu,
                          notes=f"the two lenstronomy baselines; ratio = how much faster used well is; {sizes}"))
        rows.append(entry("injection_engine.sersic.fast_vs_per_band_cpu_ratio", old_cpu / fast_cpu, "x",
                          baseline_name=SIDES["per_band"], notes="fast engine speed-up over the per-band-model "
                                                                 "baseline (per core)"))
    return rows


def run(quick: bool = False) -> list:
    """Benchmark rows; ``quick``: a smoke run (few stamps, one repeat)."""
    n_fast, n_ref = (16, 2) if quick else (256, 16)
    lens, sersic, cosmos, psf = _configs(n_fast)
    return (_measure("sersic", lens, sersic, psf, n_ref, quick)
            + _measure("cosmos", lens, cosmos, psf, max(2, n_ref // 2), quick))
