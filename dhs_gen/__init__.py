"""Dark Halo Scope science and data core.

Conventions used everywhere (see docs/architecture.md):
fluxes in nanomaggies (AB zero point 22.5), angles in arcsec, DR10 pixel scale 0.262"/px,
images float32 (C, H, W) with channel order g, r, z.
"""

__version__ = "0.1.0"

PIXEL_SCALE_ARCSEC = 0.262
AB_ZEROPOINT = 22.5
BANDS = "grz"
