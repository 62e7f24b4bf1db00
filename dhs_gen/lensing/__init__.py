"""Strong-lensing physics: SIE + shear (+ EPL, multipoles) lens models and the batch renderers.

Public API: :func:`render_lensed_sersic`, :func:`render_lensed_image`, :func:`magnification`,
:func:`point_magnification`, :func:`total_flux`, :func:`psf_kernels`, :class:`LensingInputError`.
(``dhs_gen.lensing.magnification`` is the function; its module stays importable by full name.)
"""
from __future__ import annotations

from dhs_gen.lensing.image_source import render_lensed_image, template_to_surface_brightness
from dhs_gen.lensing.magnification import magnification, point_magnification
from dhs_gen.lensing.params import LensingInputError
from dhs_gen.lensing.render import psf_kernels, render_lensed_sersic, total_flux

__all__ = ["LensingInputError", "magnification", "point_magnification", "psf_kernels", "render_lensed_image",
           "render_lensed_sersic", "template_to_surface_brightness", "total_flux"]
