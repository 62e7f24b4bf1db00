"""Injection engine: fast numpy backend vs lenstronomy per stamp (g, r, z, 64x64, supersampling 4).

Both backends render the same random lens / source / PSF configurations in the same run, one
process, one core; the ratio is the speed-up (target >= 20x). Accuracy of the fast engine on
those stamps (max relative L2 difference) is reported alongside.
"""
from __future__ import annotations

import time

import numpy as np

from benchmarks.timing import best_time, entry


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


def _measure(name: str, lens: dict, batch: dict, psf: np.ndarray, n_ref: int, quick: bool) -> list:
    from dhs_gen.sources import render_lensed_source

    n_fast = len(psf)
    ref_lens, ref_src, ref_psf = _rows(lens, n_ref), _rows(batch, n_ref), psf[:n_ref]
    fast_t = best_time(lambda: render_lensed_source(lens, batch, psf), repeats=1 if quick else 3)
    render_lensed_source(_rows(lens, 1), _rows(batch, 1), psf[:1], backend="lenstronomy")  # imports, caches
    ref_t = best_time(lambda: render_lensed_source(ref_lens, ref_src, ref_psf, backend="lenstronomy"),
                      repeats=1 if quick else 2, warmup=0)
    fast_cpu = best_time(lambda: render_lensed_source(lens, batch, psf), repeats=1 if quick else 3,
                         warmup=0, clock=time.process_time) / n_fast
    ref_cpu = best_time(lambda: render_lensed_source(ref_lens, ref_src, ref_psf, backend="lenstronomy"),
                        repeats=1, warmup=0, clock=time.process_time) / n_ref
    ref = render_lensed_source(ref_lens, ref_src, ref_psf, backend="lenstronomy")
    fast_img = render_lensed_source(ref_lens, ref_src, ref_psf)
    rel = np.linalg.norm((fast_img - ref).reshape(n_ref * 3, -1), axis=1) / \
        np.linalg.norm(ref.reshape(n_ref * 3, -1), axis=1)
    return [
        entry(f"injection_engine.{name}.fast_stamps_per_s", n_fast / fast_t, "stamps/s/core",
              baseline_name=f"lenstronomy {name} (same configs)", baseline_value=n_ref / ref_t,
              target=">= 20x" if name == "sersic" else "",
              notes=f"g,r,z 64x64 ss=4; fast batch {n_fast}, lenstronomy {n_ref} stamps (one ImageModel per band)"),
        entry(f"injection_engine.{name}.fast_cpu_ms_per_stamp", fast_cpu * 1e3, "ms CPU/stamp",
              baseline_name=f"lenstronomy {name} CPU", baseline_value=ref_cpu * 1e3, ratio=ref_cpu / fast_cpu,
              target=">= 20x" if name == "sersic" else "", notes="process CPU time; ratio = speed-up"),
        entry(f"injection_engine.{name}.fast_vs_lenstronomy_max_rel_l2", float(rel.max()), "fraction",
              target="<= 0.01", notes="||fast - ref|| / ||ref|| per stamp and band, worst case"),
    ]


def run(quick: bool = False) -> list:
    n_fast, n_ref = (32, 3) if quick else (256, 16)
    lens, sersic, cosmos, psf = _configs(n_fast)
    return (_measure("sersic", lens, sersic, psf, n_ref, quick)
            + _measure("cosmos", lens, cosmos, psf, max(2, n_ref // 2), quick))
