"""Per-band PSFs for the mock survey: Moffat from the psfsize, or the real DECam PSFEx models.

A PSF object has ``kernels`` (3, S, S) float32 unit-sum centred kernels (for convolving
extended sources), ``fwhm_arcsec`` (3,) the survey psfsize [arcsec] = the kernels' NEA-FWHM
(legacypipe's convention, :mod:`dhs_gen.psf`), and ``shifted(band, dx, dy)``: the unit-sum PSF
centred at a sub-pixel offset (for point sources, which are drawn directly, not convolved).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from dhs_gen import BANDS, PIXEL_SCALE_ARCSEC
from dhs_gen.data_files import data_path
from dhs_gen.psf import (
    DEFAULT_BETA,
    PSFExModel,
    moffat_alpha,
    moffat_fwhm_for_psfsize,
    nea_fwhm,
    psfsize_kernels,
)

PSFEX_FILES = {
    "g": "c4d_180809_002630_ooi_g_ls9-N12-psfex.fits",
    "r": "c4d_171113_061941_ooi_r_ls9-psfex.fits",
    "z": "c4d_181215_045000_ooi_z_ls9-psfex.fits",
}


class MoffatPSF:
    """Moffat PSFs (index ``beta``, sampled at pixel centres) of survey psfsize ``fwhm_arcsec`` (3,)
    [arcsec, NEA-FWHM]: :func:`dhs_gen.psf.psfsize_kernels`."""

    def __init__(self, fwhm_arcsec, beta: float = DEFAULT_BETA, size: int = 33):
        self.fwhm_arcsec = np.asarray(fwhm_arcsec, dtype=np.float64)
        self.beta = beta
        self.size = size
        self.kernels = psfsize_kernels(self.fwhm_arcsec, size=size, beta=beta)
        halfmax = moffat_fwhm_for_psfsize(self.fwhm_arcsec, size=size, beta=beta)
        self._alpha = moffat_alpha(halfmax / PIXEL_SCALE_ARCSEC, beta)
        half = size // 2
        self._grid = np.arange(-half, half + 1, dtype=np.float64)

    def shifted(self, band: int, dx: float, dy: float) -> np.ndarray:
        r2 = (self._grid[None, :] - dx) ** 2 + (self._grid[:, None] - dy) ** 2
        prof = (1.0 + r2 / self._alpha[band] ** 2) ** (-self.beta)
        return prof / prof.sum()


@lru_cache(maxsize=8)
def _psfex_model(path: str) -> PSFExModel:
    return PSFExModel.from_fits(path)


def _resample(kernel: np.ndarray, factor: float, size: int, centre=None) -> np.ndarray:
    """``kernel`` magnified by ``factor`` about ``centre`` (default: its light centroid), on an
    odd ``size`` grid centred on the middle pixel (cubic spline), unit sum."""
    from scipy.ndimage import map_coordinates

    if centre is None:
        yy, xx = np.indices(kernel.shape)
        centre = ((kernel * yy).sum() / kernel.sum(), (kernel * xx).sum() / kernel.sum())
    grid = (np.arange(size) - size // 2) / factor
    rows = centre[0] + grid[:, None] + 0.0 * grid[None, :]
    cols = centre[1] + grid[None, :] + 0.0 * grid[:, None]
    out = np.clip(map_coordinates(kernel, [rows, cols], order=3, mode="constant"), 0.0, None)
    return out / out.sum()


@lru_cache(maxsize=8)
def _psfex_base(band: str, path: str | None) -> tuple[np.ndarray, float]:
    """(the PSFEx model of ``band`` at its reference point, its NEA-FWHM [pixels])."""
    model = _psfex_model(path or str(data_path("decam_psfex", PSFEX_FILES[band])))
    kernel = model.at(model.zero[0], model.zero[1]).astype(np.float64)
    return kernel, nea_fwhm(kernel)


def psfex_kernel(band: str, fwhm_arcsec: float | None = None, size: int = 33, path: str | None = None) -> np.ndarray:
    """The real PSFEx PSF of ``band`` at its reference point, recentred on its centroid, (size, size)
    unit sum; magnified, when ``fwhm_arcsec`` is given, until its NEA-FWHM on that grid equals it
    (the survey psfsize, within 0.1%), which keeps the real shape, wings and asymmetry."""
    kernel, nea_pix = _psfex_base(band, path)
    if fwhm_arcsec is None:
        return _resample(kernel, 1.0, size).astype(np.float32)
    target = float(fwhm_arcsec) / PIXEL_SCALE_ARCSEC
    factor = target / nea_pix
    for _ in range(4):  # NEA-FWHM scales ~ linearly with the magnification; the grid edge bends it
        out = _resample(kernel, factor, size)
        ratio = target / nea_fwhm(out)
        if abs(ratio - 1.0) < 1e-4:
            break
        factor *= ratio
    return out.astype(np.float32)


def psfex_fwhm_arcsec(band: str) -> float:
    """psfsize [arcsec] (NEA-FWHM) of the packaged PSFEx model of ``band``."""
    return _psfex_base(band, None)[1] * PIXEL_SCALE_ARCSEC


class PSFExPSF:
    """The real DECam PSFEx models (one per band), rescaled to psfsize ``fwhm_arcsec`` [arcsec,
    NEA-FWHM] unless it is None."""

    def __init__(self, fwhm_arcsec=None, size: int = 33):
        if fwhm_arcsec is None:
            fwhm_arcsec = [psfex_fwhm_arcsec(b) for b in BANDS]
        self.fwhm_arcsec = np.asarray(fwhm_arcsec, dtype=np.float64)
        self.size = size
        self.kernels = np.stack([psfex_kernel(b, f, size) for b, f in zip(BANDS, self.fwhm_arcsec)])

    def shifted(self, band: int, dx: float, dy: float) -> np.ndarray:
        half = self.size // 2
        return _resample(self.kernels[band].astype(np.float64), 1.0, self.size, centre=(half - dy, half - dx))
