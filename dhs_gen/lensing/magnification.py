"""Total magnification of extended sources by the lens model (no PSF, no noise).

mu = (lensed flux) / (unlensed flux), with the lensed flux integrated by ray shooting a finely
supersampled image-plane grid over the stamp field and the unlensed flux the analytic Sérsic
total. This is the lens-model magnification the flux-conservation test compares rendered
stamps against; :func:`point_magnification` gives the point-source value 1/det(A).
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from dhs_gen import PIXEL_SCALE_ARCSEC
from dhs_gen.lensing.params import validate_grid, validate_lens, validate_sersic
from dhs_gen.lensing.render import lensed_sersic_unit_images


def magnification(lens: Dict[str, np.ndarray], source: Dict[str, np.ndarray], *, stamp_size: int = 64,
                  pixel_scale: float = PIXEL_SCALE_ARCSEC, supersampling: int = 8) -> np.ndarray:
    """(B,) float64 total magnification of elliptical Sérsic sources (source dict as for
    render_lensed_sersic; fluxes optional and ignored), integrated over the stamp field."""
    validate_grid(stamp_size, pixel_scale, supersampling)
    lens_p = validate_lens(lens)
    shape_keys = ("R_sersic", "n_sersic", "e1", "e2", "center_x", "center_y")
    src_p = validate_sersic({k: source[k] for k in shape_keys if k in source}, size=len(lens_p["theta_E"]),
                            fluxes=False)
    unit = lensed_sersic_unit_images(lens_p, src_p, int(stamp_size), float(pixel_scale), int(supersampling))
    return unit.sum(axis=(1, 2), dtype=np.float64)


def point_magnification(lens: Dict[str, np.ndarray], x, y, step: float = 1e-4) -> np.ndarray:
    """Signed point magnification 1/det(A) at image-plane points x, y (B,) [arcsec] for each
    row's lens (lenstronomy's LensModel.magnification, finite-difference step [arcsec])."""
    from lenstronomy.LensModel.lens_model import LensModel

    from dhs_gen.lensing.reference import lens_model_kwargs

    lens_p = validate_lens(lens)
    x = np.broadcast_to(np.asarray(x, dtype=np.float64), lens_p["theta_E"].shape)
    y = np.broadcast_to(np.asarray(y, dtype=np.float64), lens_p["theta_E"].shape)
    out = np.empty(len(x))
    for i in range(len(x)):
        models, kwargs = lens_model_kwargs(lens_p, i)
        out[i] = LensModel(models).magnification(x[i], y[i], kwargs, diff=step)
    return out
