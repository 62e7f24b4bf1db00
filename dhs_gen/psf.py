"""PSF kernels: Moffat profiles from a FWHM and real PSFEx models.

Kernels are odd-sized, centred on the middle pixel (index size // 2), normalised to unit sum,
float32. Centring matters: an FFT convolution with an off-centre kernel shifts the image (the
earlier pipeline's -23 px PSF bug); :func:`convolve_same` is the centred convolution to use.
"""
from __future__ import annotations

import numpy as np

DEFAULT_BETA = 3.5


class PSFError(ValueError):
    """Invalid PSF parameters or an unreadable PSF model."""


def _odd_size(size: int, max_size: int | None) -> int:
    size = int(size)
    if size < 1 or size % 2 == 0:
        raise PSFError(f"kernel size must be a positive odd integer, got {size}")
    if max_size is not None:
        max_size = int(max_size)
        if max_size < 1:
            raise PSFError(f"max_size must be >= 1, got {max_size}")
        size = min(size, max_size if max_size % 2 else max_size - 1)
    return size


def moffat_alpha(fwhm, beta: float = DEFAULT_BETA):
    """Moffat core width alpha from FWHM: FWHM = 2 alpha sqrt(2^(1/beta) - 1)."""
    return np.asarray(fwhm, dtype=np.float64) / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


def moffat_kernels(fwhm_pix, beta: float = DEFAULT_BETA, size: int = 33, max_size: int | None = None,
                   oversample: int = 1) -> np.ndarray:
    """Batch of Moffat kernels, (B, S, S) float32, one per FWHM [pixels] in ``fwhm_pix``.

    I(r) ∝ (1 + (r/alpha)^2)^-beta sampled at pixel centres (``oversample=1``) or averaged over
    ``oversample`` x ``oversample`` sub-pixels; then normalised to unit sum over the kernel.
    """
    fwhm = np.atleast_1d(np.asarray(fwhm_pix, dtype=np.float64))
    if not np.all(np.isfinite(fwhm)) or np.any(fwhm <= 0):
        raise PSFError(f"FWHM must be finite and > 0 pixels, got {fwhm[~(np.isfinite(fwhm) & (fwhm > 0))][:3]}")
    if beta <= 1:
        raise PSFError(f"Moffat beta must be > 1, got {beta}")
    size = _odd_size(size, max_size)
    oversample = int(oversample)
    half = size // 2
    sub = (np.arange(size * oversample) + 0.5) / oversample - 0.5 - half
    r2 = sub[:, None] ** 2 + sub[None, :] ** 2
    alpha = moffat_alpha(fwhm, beta)[:, None, None]
    prof = (1.0 + r2[None] / alpha**2) ** (-beta)
    if oversample > 1:
        prof = prof.reshape(len(fwhm), size, oversample, size, oversample).mean(axis=(2, 4))
    prof /= prof.sum(axis=(1, 2), keepdims=True)
    return prof.astype(np.float32)


def moffat_kernel(fwhm_pix: float, beta: float = DEFAULT_BETA, size: int = 33, max_size: int | None = None,
                  oversample: int = 1) -> np.ndarray:
    """One normalised odd-sized Moffat kernel (S, S) float32; FWHM in pixels; clipped to max_size."""
    return moffat_kernels([fwhm_pix], beta=beta, size=size, max_size=max_size, oversample=oversample)[0]


def kernel_centroid(kernel: np.ndarray) -> tuple[float, float]:
    """(row, col) light centroid of a kernel, in pixels."""
    rows, cols = np.indices(kernel.shape)
    total = kernel.sum()
    return float((kernel * rows).sum() / total), float((kernel * cols).sum() / total)


def nea_fwhm(kernel: np.ndarray) -> float:
    """Noise-equivalent FWHM [pixels]: the Gaussian FWHM with the kernel's noise-equivalent area.

    NEA = 1 / sum(k^2) for a unit-sum kernel, and a Gaussian has NEA = 4 pi sigma^2, so
    FWHM_nea = 2.3548 sqrt(NEA / 4 pi). Point-source depths scale with the NEA, so this is
    the width that ties a depth to a per-pixel noise. On the real DECam PSFEx models shipped
    here, the model's ``psf_fwhm`` header agrees with FWHM_nea within 10% while the
    half-maximum width is 10-30% smaller (real PSFs have wings). A Moffat with beta = 3.5 has
    FWHM_nea = 1.23 x its half-maximum FWHM.
    """
    k = np.asarray(kernel, dtype=np.float64)
    k = k / k.sum()
    return float(2.0 * np.sqrt(2.0 * np.log(2.0)) * np.sqrt(1.0 / (4.0 * np.pi * np.sum(k**2))))


def convolve_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Centred 2-D convolution of (..., H, W) images with an odd (S, S) kernel, output (..., H, W).

    Uses FFT with explicit zero padding so a kernel centred on pixel S//2 never shifts the image.
    """
    from scipy.signal import fftconvolve

    if kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise PSFError(f"kernel must be odd-sized, got {kernel.shape}")
    kernel = kernel.reshape((1,) * (image.ndim - 2) + kernel.shape)
    return fftconvolve(image, kernel, mode="same", axes=(-2, -1)).astype(image.dtype, copy=False)


class PSFExModel:
    """A PSFEx PSF model (Legacy Surveys format: one row, lower-case columns, ``psf_mask``).

    The PSF at image position (x, y) [pixels] is sum_k c_k(x, y) * psf_mask[k] with polynomial
    terms in X_IMAGE/Y_IMAGE ordered 1, x, x^2, ..., y, xy, ..., y^deg (PSFEx convention),
    x = (X - polzero1) / polscal1. ``psf_samp`` is the basis sampling in image pixels.
    """

    def __init__(self, basis: np.ndarray, degree: int, zero: tuple, scale: tuple, sampling: float,
                 fwhm_pix: float, source: str = ""):
        if basis.ndim != 3 or basis.shape[1] % 2 == 0 or basis.shape[1] != basis.shape[2]:
            raise PSFError(f"{source}: PSF basis must be (K, S, S) with odd S, got {basis.shape}")
        nterms = (degree + 1) * (degree + 2) // 2
        if basis.shape[0] != nterms:
            raise PSFError(f"{source}: {basis.shape[0]} basis images but degree {degree} needs {nterms}")
        self.basis = basis.astype(np.float64)
        self.degree = degree
        self.zero = zero
        self.scale = scale
        self.sampling = sampling
        self.fwhm_pix = fwhm_pix
        self.source = source

    @classmethod
    def from_fits(cls, uri: str) -> PSFExModel:
        """Read a PSFEx FITS model from a path or URI."""
        import io

        from astropy.io import fits

        from dhs_gen.storage import read_bytes

        try:
            with fits.open(io.BytesIO(read_bytes(uri)), memmap=False) as hdul:
                table = hdul[1].data
                names = {n.lower(): n for n in table.columns.names}

                def col(name):
                    if name not in names:
                        raise PSFError(f"{uri}: PSFEx table lacks column {name!r}")
                    return table[names[name]][0]

                basis = np.array(col("psf_mask"), dtype=np.float64)
                if basis.ndim == 4:
                    basis = basis[0]
                return cls(basis=basis, degree=int(col("poldeg1")),
                           zero=(float(col("polzero1")), float(col("polzero2"))),
                           scale=(float(col("polscal1")), float(col("polscal2"))),
                           sampling=float(col("psf_samp")), fwhm_pix=float(col("psf_fwhm")), source=str(uri))
        except (OSError, IndexError, KeyError) as exc:
            raise PSFError(f"{uri}: not a readable PSFEx model: {exc}") from None

    def _terms(self, x: float, y: float) -> np.ndarray:
        dx = (x - self.zero[0]) / self.scale[0]
        dy = (y - self.zero[1]) / self.scale[1]
        return np.array([dx**i * dy**j for j in range(self.degree + 1) for i in range(self.degree + 1 - j)])

    def at(self, x: float, y: float, size: int | None = None) -> np.ndarray:
        """Normalised (S, S) float32 kernel at image position (x, y), resampled to image pixels,
        optionally cropped about its centre to odd ``size``."""
        psf = np.tensordot(self._terms(x, y), self.basis, axes=1)
        if abs(self.sampling - 1.0) > 1e-6:
            from scipy.ndimage import zoom

            psf = zoom(psf, self.sampling, order=3)
            if psf.shape[0] % 2 == 0:
                psf = psf[:-1, :-1]
        if size is not None:
            size = _odd_size(size, psf.shape[0])
            c, h = psf.shape[0] // 2, size // 2
            psf = psf[c - h:c + h + 1, c - h:c + h + 1]
        psf = np.clip(psf, 0.0, None)
        return (psf / psf.sum()).astype(np.float32)
