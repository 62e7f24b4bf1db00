"""Strong-lensing physics: SIE + shear lens models and the batch renderer of lensed sources.

Public API: :func:`render_lensed_sersic`, :func:`render_lensed_image`, :func:`magnification`,
:func:`total_flux`, :func:`psf_kernels`, :class:`LensingInputError`.
"""
from __future__ import annotations

from dhs_gen.lensing.params import LensingInputError
from dhs_gen.lensing.render import psf_kernels, render_lensed_sersic, total_flux

__all__ = ["LensingInputError", "psf_kernels", "render_lensed_sersic", "total_flux"]
