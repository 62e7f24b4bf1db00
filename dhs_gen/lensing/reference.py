"""The reference backend: lenstronomy's SIE + SHEAR (+ MULTIPOLE / EPL) lensing a SERSIC_ELLIPSE
(or an INTERPOL image) source, supersampled and convolved with the same pixel Moffat kernels.

Used as lenstronomy's users would for many stamps: one ``ImageModel`` without a PSF per lens-model
list, built once and reused; per stamp one ray trace and one supersampled source image
(``ImageModel.image``, sub-pixel average) at unit amplitude; then each band's pixel kernel applied
with ``scipy.signal.fftconvolve(mode="same")`` (what lenstronomy's PIXEL PSF does) and the band's
amplitude. :func:`render_sersic_per_band_models` keeps the naive form — a new ``ImageModel`` with
the band's PSF per row and band, three ray traces per stamp — as a second benchmark baseline; both
give the same pixels (~1e-8, tested). Slow but the trusted answer the fast engine is tested against.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Dict, List, Tuple

import numpy as np


def lens_model_kwargs(lens: Dict[str, np.ndarray], i: int) -> Tuple[List[str], List[dict]]:
    """lenstronomy lens_model_list and kwargs_lens for batch row ``i``."""
    main = {"theta_E": lens["theta_E"][i], "e1": lens["e1"][i], "e2": lens["e2"][i],
            "center_x": lens["center_x"][i], "center_y": lens["center_y"][i]}
    if "gamma" in lens:
        models, kwargs = ["EPL"], [dict(main, gamma=lens["gamma"][i])]
    else:
        models, kwargs = ["SIE"], [main]
    models.append("SHEAR")
    kwargs.append({"gamma1": lens["gamma1"][i], "gamma2": lens["gamma2"][i], "ra_0": 0.0, "dec_0": 0.0})
    for m in (3, 4):
        if f"a{m}" in lens:
            models.append("MULTIPOLE")
            kwargs.append({"m": m, "a_m": lens[f"a{m}"][i], "phi_m": lens[f"phi{m}"][i],
                           "center_x": lens["center_x"][i], "center_y": lens["center_y"][i]})
    return models, [{k: float(v) for k, v in kw.items()} for kw in kwargs]


def image_model(stamp_size: int, pixel_scale: float, supersampling: int, kernel, lens_models: List[str],
                source_models: List[str]):
    """A lenstronomy ImageModel on the stamp grid (pixel (row, col) at x = (col - (W-1)/2) * scale,
    y = (row - (H-1)/2) * scale): sub-pixel integration, then the pixel ``kernel`` convolution
    (``kernel=None``: no PSF, the unconvolved image)."""
    from lenstronomy.Data.pixel_grid import PixelGrid
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    half = (stamp_size - 1) / 2.0
    grid = PixelGrid(nx=stamp_size, ny=stamp_size, transform_pix2angle=np.eye(2) * pixel_scale,
                     ra_at_xy_0=-half * pixel_scale, dec_at_xy_0=-half * pixel_scale)
    psf = PSF(psf_type="NONE") if kernel is None else \
        PSF(psf_type="PIXEL", kernel_point_source=np.asarray(kernel, dtype=np.float64))
    numerics = {"supersampling_factor": int(supersampling), "supersampling_convolution": False}
    return ImageModel(grid, psf, lens_model_class=LensModel(lens_models),
                      source_model_class=LightModel(source_models), kwargs_numerics=numerics)


@lru_cache(maxsize=16)
def _unconvolved_model(stamp_size: int, pixel_scale: float, supersampling: int, lens_models: tuple,
                       source_model: str):
    """The one PSF-less ImageModel per (grid, lens-model list, source model), built once."""
    return image_model(stamp_size, pixel_scale, supersampling, None, list(lens_models), [source_model])


def convolve_with_kernels(image: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """(C, H, W) float64: one unconvolved (H, W) image convolved with each of ``kernels`` (C, K, K)
    by ``scipy.signal.fftconvolve(mode="same")``, lenstronomy's PIXEL-kernel convolution."""
    from scipy.signal import fftconvolve

    return np.stack([fftconvolve(image, np.asarray(k, dtype=np.float64), mode="same") for k in kernels])


def render_sersic_reference(lens: Dict[str, np.ndarray], source: Dict[str, np.ndarray], amps: np.ndarray,
                            kernels: np.ndarray, stamp_size: int, pixel_scale: float,
                            supersampling: int) -> np.ndarray:
    """(B, 3, H, W) float32 lensed SERSIC_ELLIPSE images [flux per pixel]; ``amps`` (B, 3) are
    lenstronomy amplitudes per band, ``kernels`` (B, 3, K, K) pixel PSF kernels. One cached
    PSF-less ImageModel, one unit-amplitude image per row, each band's kernel by fftconvolve."""
    n = len(amps)
    out = np.empty((n, 3, stamp_size, stamp_size), dtype=np.float32)
    shape = {k: source[k] for k in ("R_sersic", "n_sersic", "e1", "e2", "center_x", "center_y")}
    for i in range(n):
        models, kwargs_lens = lens_model_kwargs(lens, i)
        model = _unconvolved_model(stamp_size, float(pixel_scale), int(supersampling), tuple(models), "SERSIC_ELLIPSE")
        src = dict({k: float(v[i]) for k, v in shape.items()}, amp=1.0)
        unit = model.image(kwargs_lens=kwargs_lens, kwargs_source=[src])
        out[i] = convolve_with_kernels(unit, kernels[i]) * np.asarray(amps[i], dtype=np.float64)[:, None, None]
    return out


def render_sersic_per_band_models(lens: Dict[str, np.ndarray], source: Dict[str, np.ndarray], amps: np.ndarray,
                                  kernels: np.ndarray, stamp_size: int, pixel_scale: float,
                                  supersampling: int) -> np.ndarray:
    """As :func:`render_sersic_reference`, the naive way: a new ImageModel with the band's PIXEL
    PSF per row and band (three ray traces and Sérsic evaluations per stamp). A benchmark
    baseline only."""
    n = len(amps)
    out = np.empty((n, 3, stamp_size, stamp_size), dtype=np.float32)
    shape = {k: source[k] for k in ("R_sersic", "n_sersic", "e1", "e2", "center_x", "center_y")}
    for i in range(n):
        models, kwargs_lens = lens_model_kwargs(lens, i)
        src = {k: float(v[i]) for k, v in shape.items()}
        for j in range(3):
            model = image_model(stamp_size, pixel_scale, supersampling, kernels[i, j], models, ["SERSIC_ELLIPSE"])
            out[i, j] = model.image(kwargs_lens=kwargs_lens, kwargs_source=[dict(src, amp=float(amps[i, j]))])
    return out


def render_image_reference(lens: Dict[str, np.ndarray], sb: np.ndarray, geo: Dict[str, np.ndarray],
                           kernels: np.ndarray, stamp_size: int, pixel_scale: float,
                           supersampling: int) -> np.ndarray:
    """(B, 3, H, W) float32 lensed INTERPOL images [flux per pixel] of surface-brightness templates
    ``sb`` (B, C, h, w) [flux / arcsec^2] with ``geo`` scale, center_x, center_y (B,) [arcsec].
    C = 1: one image per row convolved with each band's kernel (the caller scales by band flux);
    C = 3: one image per band. One cached PSF-less ImageModel; kernels by fftconvolve."""
    n, c = sb.shape[:2]
    out = np.empty((n, 3, stamp_size, stamp_size), dtype=np.float32)
    for i in range(n):
        models, kwargs_lens = lens_model_kwargs(lens, i)
        model = _unconvolved_model(stamp_size, float(pixel_scale), int(supersampling), tuple(models), "INTERPOL")
        geo_i = {"amp": 1.0, "scale": float(geo["scale"][i]), "center_x": float(geo["center_x"][i]),
                 "center_y": float(geo["center_y"][i]), "phi_G": 0.0}
        unit = []
        for band in range(c):
            model.SourceModel.delete_interpol_caches()  # INTERPOL caches the first image's spline
            unit.append(model.image(kwargs_lens=kwargs_lens,
                                    kwargs_source=[dict(geo_i, image=np.asarray(sb[i, band], dtype=np.float64))]))
        if c == 1:
            out[i] = convolve_with_kernels(unit[0], kernels[i])
        else:
            out[i] = np.concatenate([convolve_with_kernels(unit[b], kernels[i, b:b + 1]) for b in range(3)])
    return out
