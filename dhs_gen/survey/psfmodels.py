"""Per-band PSFs for the mock survey: Moffat from the FWHM, or the real DECam PSFEx models.

A PSF object has ``kernels`` (3, S, S) float32 unit-sum centred kernels (for convolving
extended sources), ``fwhm_arcsec`` (3,), and ``shifted(band, dx, dy)``: the unit-sum PSF
centred at a sub-pixel offset (for point sources, which are drawn directly, not convolved).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from dhs_gen import BANDS, PIXEL_SCALE_ARCSEC
from dhs_gen.data_files import data_path
from dhs_gen.psf import DEFAULT_BETA, PSFExModel, moffat_alpha, moffat_kernels

PSFEX_FILES = {
    "g": "c4d_180809_002630_ooi_g_ls9-N12-psfex.fits",
    "r": "c4d_171113_061941_ooi_r_ls9-psfex.fits",
    "z": "c4d_181215_045000_ooi_z_ls9-psfex.fits",
}


class MoffatPSF:
    """Moffat PSFs with FWHM ``fwhm_arcsec`` (3,) and index ``beta``, sampled at pixel centres."""

    def __init__(self, fwhm_arcsec, beta: float = DEFAULT_BETA, size: int = 33):
        self.fwhm_arcsec = np.asarray(fwhm_arcsec, dtype=np.float64)
        self.beta = beta
        self.size = size
        self.kernels = moffat_kernels(self.fwhm_arcsec / PIXEL_SCALE_ARCSEC, beta=beta, size=size)
        self._alpha = moffat_alpha(self.fwhm_arcsec / PIXEL_SCALE_ARCSEC, beta)
        half = size // 2
        self._grid = np.arange(-half, half + 1, dtype=np.float64)

    def shifted(self, band: int, dx: float, dy: float) -> np.ndarray:
        r2 = (self._grid[None, :] - dx) ** 2 + (self._grid[:, None] - dy) ** 2
        prof = (1.0 + r2 / self._alpha[band] ** 2) ** (-self.beta)
        return prof / prof.sum()


@lru_cache(maxsize=8)
def _psfex_model(path: str) -> PSFExModel:
    return PSFExModel.from_fits(path)


def psfex_kernel(band: str, fwhm_arcsec: float | None = None, size: int = 33, path: str | None = None) -> np.ndarray:
    """The real PSFEx PSF of ``band`` at its reference point, (size, size) unit sum; rescaled in
    radius to ``fwhm_arcsec`` when given (keeps the real shape, wings and asymmetry)."""
    from scipy.ndimage import zoom

    model = _psfex_model(path or str(data_path("decam_psfex", PSFEX_FILES[band])))
    kernel = model.at(model.zero[0], model.zero[1]).astype(np.float64)
    if fwhm_arcsec is not None:
        factor = float(fwhm_arcsec) / (model.fwhm_pix * PIXEL_SCALE_ARCSEC)
        kernel = zoom(kernel, factor, order=3)
        if kernel.shape[0] % 2 == 0:
            kernel = kernel[:-1, :-1]
    half, c = size // 2, kernel.shape[0] // 2
    if c < half:
        kernel = np.pad(kernel, half - c)
        c = half
    kernel = np.clip(kernel[c - half:c + half + 1, c - half:c + half + 1], 0.0, None)
    return (kernel / kernel.sum()).astype(np.float32)


def psfex_fwhm_arcsec(band: str) -> float:
    """FWHM [arcsec] of the packaged PSFEx model of ``band`` (PSFEx ``psf_fwhm``)."""
    return float(_psfex_model(str(data_path("decam_psfex", PSFEX_FILES[band]))).fwhm_pix * PIXEL_SCALE_ARCSEC)


class PSFExPSF:
    """The real DECam PSFEx models (one per band), rescaled to ``fwhm_arcsec`` unless it is None."""

    def __init__(self, fwhm_arcsec=None, size: int = 33):
        if fwhm_arcsec is None:
            fwhm_arcsec = [psfex_fwhm_arcsec(b) for b in BANDS]
        self.fwhm_arcsec = np.asarray(fwhm_arcsec, dtype=np.float64)
        self.size = size
        self.kernels = np.stack([psfex_kernel(b, f, size) for b, f in zip(BANDS, self.fwhm_arcsec)])

    def shifted(self, band: int, dx: float, dy: float) -> np.ndarray:
        from scipy.ndimage import shift

        out = np.clip(shift(self.kernels[band].astype(np.float64), (dy, dx), order=3, mode="constant"), 0.0, None)
        return out / out.sum()
