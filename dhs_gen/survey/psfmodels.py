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


def halfmax_fwhm_pix(kernel: np.ndarray, upsample: int = 8) -> float:
    """FWHM [pixels] of a centred kernel from its area above half maximum: 2 sqrt(A / pi),
    measured on an ``upsample``-times finer cubic resampling."""
    fine = _resample(kernel.astype(np.float64), upsample, kernel.shape[0] * upsample + 1)
    area = (fine >= 0.5 * fine.max()).sum() / upsample**2
    return float(2.0 * np.sqrt(area / np.pi))


@lru_cache(maxsize=8)
def _psfex_base(band: str, path: str | None) -> tuple[np.ndarray, float]:
    model = _psfex_model(path or str(data_path("decam_psfex", PSFEX_FILES[band])))
    kernel = model.at(model.zero[0], model.zero[1]).astype(np.float64)
    return kernel, halfmax_fwhm_pix(kernel)


def psfex_kernel(band: str, fwhm_arcsec: float | None = None, size: int = 33, path: str | None = None) -> np.ndarray:
    """The real PSFEx PSF of ``band`` at its reference point, recentred on its centroid, (size, size)
    unit sum; magnified to FWHM ``fwhm_arcsec`` (half-maximum definition) when given, which keeps
    the real shape, wings and asymmetry."""
    kernel, fwhm_pix = _psfex_base(band, path)
    factor = 1.0 if fwhm_arcsec is None else float(fwhm_arcsec) / PIXEL_SCALE_ARCSEC / fwhm_pix
    return _resample(kernel, factor, size).astype(np.float32)


def psfex_fwhm_arcsec(band: str) -> float:
    """Half-maximum FWHM [arcsec] of the packaged PSFEx model of ``band``."""
    return _psfex_base(band, None)[1] * PIXEL_SCALE_ARCSEC


class PSFExPSF:
    """The real DECam PSFEx models (one per band), rescaled to ``fwhm_arcsec`` unless it is None."""

    def __init__(self, fwhm_arcsec=None, size: int = 33):
        if fwhm_arcsec is None:
            fwhm_arcsec = [psfex_fwhm_arcsec(b) for b in BANDS]
        self.fwhm_arcsec = np.asarray(fwhm_arcsec, dtype=np.float64)
        self.size = size
        self.kernels = np.stack([psfex_kernel(b, f, size) for b, f in zip(BANDS, self.fwhm_arcsec)])

    def shifted(self, band: int, dx: float, dy: float) -> np.ndarray:
        half = self.size // 2
        return _resample(self.kernels[band].astype(np.float64), 1.0, self.size, centre=(half - dy, half - dx))
