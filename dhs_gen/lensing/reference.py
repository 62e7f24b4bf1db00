"""The reference backend: lenstronomy's SIE + SHEAR (+ MULTIPOLE / EPL) lensing a SERSIC_ELLIPSE
(or an INTERPOL image) source, supersampled and convolved with the same pixel Moffat kernel.

One lenstronomy ImageModel per row and band (its PSF is per band), as lenstronomy is normally
used; slow but the trusted answer the fast engine is tested against.
"""
from __future__ import annotations

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


def image_model(stamp_size: int, pixel_scale: float, supersampling: int, kernel: np.ndarray,
                lens_models: List[str], source_models: List[str]):
    """A lenstronomy ImageModel on the stamp grid (pixel (row, col) at x = (col - (W-1)/2) * scale,
    y = (row - (H-1)/2) * scale), sub-pixel integration then a pixel-kernel convolution."""
    from lenstronomy.Data.pixel_grid import PixelGrid
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    half = (stamp_size - 1) / 2.0
    grid = PixelGrid(nx=stamp_size, ny=stamp_size, transform_pix2angle=np.eye(2) * pixel_scale,
                     ra_at_xy_0=-half * pixel_scale, dec_at_xy_0=-half * pixel_scale)
    psf = PSF(psf_type="PIXEL", kernel_point_source=np.asarray(kernel, dtype=np.float64))
    numerics = {"supersampling_factor": int(supersampling), "supersampling_convolution": False}
    return ImageModel(grid, psf, lens_model_class=LensModel(lens_models),
                      source_model_class=LightModel(source_models), kwargs_numerics=numerics)


def render_sersic_reference(lens: Dict[str, np.ndarray], source: Dict[str, np.ndarray], amps: np.ndarray,
                            kernels: np.ndarray, stamp_size: int, pixel_scale: float,
                            supersampling: int) -> np.ndarray:
    """(B, 3, H, W) float32 lensed SERSIC_ELLIPSE images [flux per pixel]; ``amps`` (B, 3) are
    lenstronomy amplitudes per band, ``kernels`` (B, 3, K, K) pixel PSF kernels."""
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
