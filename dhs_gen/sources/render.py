"""Render any generated source batch through a lens: dispatches on the batch's ``kind``."""
from __future__ import annotations

from typing import Dict

import numpy as np

from dhs_gen import PIXEL_SCALE_ARCSEC
from dhs_gen.lensing.image_source import render_lensed_image
from dhs_gen.lensing.params import FLUX_KEYS, SERSIC_KEYS
from dhs_gen.lensing.render import render_lensed_sersic
from dhs_gen.sources.cosmos import template_supersampling
from dhs_gen.sources.registry import SourceError


def render_lensed_source(lens: Dict[str, np.ndarray], batch: Dict[str, np.ndarray], psf_fwhm, *,
                         stamp_size: int = 64, pixel_scale: float = PIXEL_SCALE_ARCSEC, supersampling: int = 4,
                         backend: str = "fast") -> np.ndarray:
    """float32 (B, 3, H, W) nanomaggies/pixel for a batch from any registered generator
    (``kind`` "sersic" -> render_lensed_sersic, "image" -> render_lensed_image; an image batch with
    ``hlr_arcsec`` renders small templates with :func:`dhs_gen.sources.cosmos.template_supersampling`)."""
    kind = batch.get("kind")
    opts = dict(stamp_size=stamp_size, pixel_scale=pixel_scale, supersampling=supersampling, backend=backend)
    if kind == "sersic":
        return render_lensed_sersic(lens, {k: batch[k] for k in SERSIC_KEYS + FLUX_KEYS}, psf_fwhm, **opts)
    if kind == "image":
        fluxes = np.stack([np.asarray(batch[k], dtype=np.float64) for k in FLUX_KEYS], axis=1)
        if "hlr_arcsec" not in batch:
            return render_lensed_image(lens, batch["templates"], batch["template_pixel_scale"], fluxes,
                                       batch["center_x"], batch["center_y"], psf_fwhm, **opts)
        # small templates (COSMOS half-light radius < 0.15") get finer ray tracing
        per_row = template_supersampling(batch["hlr_arcsec"], supersampling)
        psf = np.asarray(psf_fwhm, dtype=np.float64)
        out = np.empty((len(per_row), 3, stamp_size, stamp_size), dtype=np.float32)
        for s in np.unique(per_row):
            rows = np.flatnonzero(per_row == s)
            out[rows] = render_lensed_image(
                {k: np.asarray(v)[rows] for k, v in lens.items()}, np.asarray(batch["templates"])[rows],
                np.asarray(batch["template_pixel_scale"])[rows], fluxes[rows], np.asarray(batch["center_x"])[rows],
                np.asarray(batch["center_y"])[rows], psf[rows], **dict(opts, supersampling=int(s)))
        return out
    raise SourceError(f"source batch kind must be 'sersic' or 'image', got {kind!r}")
