"""PSF kernels: Moffat profiles from a FWHM and real PSFEx models, and the survey's PSF-width convention.

The survey's ``psfsize`` (Tractor/sweep ``psfsize_<b>``, brick tables, cutout ``psf_fwhm``) is
legacypipe's noise-equivalent FWHM: the FWHM of the Gaussian with the PSF's noise-equivalent area
NEA = 1 / sum(PSF^2) of the unit-sum, pixel-sampled PSF (legacypipe ``image.psf_norm`` and
``coadds.py``: psfsize = 2.3548 sqrt(NEA / 4 pi) x pixel scale), not the width at half maximum.
:func:`psfsize_kernels` is the one place that turns a psfsize into a kernel: a Moffat (beta 3.5)
whose pixel-sampled NEA-FWHM on the kernel grid actually used equals psfsize. Every renderer (the
lensed-arc renderer, the mock survey) and every theta_E / PSF axis uses that convention.

Kernels are odd-sized, centred on the middle pixel (index size // 2), normalised to unit sum,
float32. Centring matters: an FFT convolution with an off-centre kernel shifts the image (the
earlier pipeline's -23 px PSF bug); :func:`convolve_same` is the centred convolution to use.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from dhs_gen import PIXEL_SCALE_ARCSEC
from dhs_gen.jit import kernel
from dhs_gen.units import FWHM_PER_SIGMA

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
    Evaluated on one quadrant and mirrored (exactly symmetric); pixel-centre kernels with a
    half-integer beta (the default 3.5) by a compiled kernel (:func:`_half_integer_moffats`).
    """
    fwhm = np.atleast_1d(np.asarray(fwhm_pix, dtype=np.float64))
    if not np.all(np.isfinite(fwhm)) or np.any(fwhm <= 0):
        raise PSFError(f"FWHM must be finite and > 0 pixels, got {fwhm[~(np.isfinite(fwhm) & (fwhm > 0))][:3]}")
    if beta <= 1:
        raise PSFError(f"Moffat beta must be > 1, got {beta}")
    size = _odd_size(size, max_size)
    oversample = int(oversample)
    half = size // 2
    alpha = moffat_alpha(fwhm, beta)
    if oversample == 1 and float(2 * beta).is_integer() and beta <= 16:  # the default beta = 3.5
        prof = np.empty((len(fwhm), size, size), dtype=np.float32)
        _half_integer_moffats(1.0 / alpha**2, int(beta), bool(2 * beta % 2), prof)
        return prof
    # one quadrant (offsets 0..half pixels, both axes): the kernel is symmetric under x -> -x,
    # y -> -y, so it is evaluated on (half + 1)^2 pixels and mirrored (4x fewer powers)
    sub = (np.arange(half + 1)[:, None] + (np.arange(oversample) + 0.5) / oversample - 0.5).ravel()
    r2 = sub[:, None] ** 2 + sub[None, :] ** 2
    quad = np.log1p(r2[None] / alpha[:, None, None] ** 2)
    quad *= -beta
    np.exp(quad, out=quad)  # (1 + r^2/alpha^2)^-beta: exp and log1p vectorise, a power does not
    if oversample > 1:
        quad = quad.reshape(len(fwhm), half + 1, oversample, half + 1, oversample).mean(axis=(2, 4))
    fold = np.where(np.arange(half + 1) > 0, 2.0, 1.0)  # offsets +-d: two pixels each, d = 0: one
    total = np.einsum("bij,i,j->b", quad, fold, fold)
    quad /= total[:, None, None]
    quad = quad.astype(np.float32)
    prof = np.empty((len(fwhm), size, size), dtype=np.float32)
    prof[:, half:, half:] = quad
    prof[:, half:, :half] = quad[:, :, :0:-1]
    prof[:, :half] = prof[:, :half:-1]
    return prof


@kernel
def _half_integer_moffats(inv_alpha2, k, half_power, out):
    """out[b] = the unit-sum pixel-centre Moffat (1 + r^2 inv_alpha2[b])^-beta, beta = k (+ 1/2
    when ``half_power``), on the odd (S, S) grid of ``out`` (B, S, S) float32: products and one
    square root instead of a power; the quadrant is evaluated in float64 and mirrored."""
    n, size = out.shape[0], out.shape[1]
    half = size // 2
    quad = np.empty((half + 1, half + 1), dtype=np.float64)
    base = np.empty(half + 1, dtype=np.float64)
    for b in range(n):
        ia = inv_alpha2[b]
        for i in range(half + 1):
            p = quad[i]  # the power, built along the row (loops over j vectorise)
            for j in range(half + 1):
                base[j] = 1.0 + (i * i + j * j) * ia
                p[j] = np.sqrt(base[j]) if half_power else 1.0
            for _ in range(k):
                for j in range(half + 1):
                    p[j] *= base[j]
            for j in range(half + 1):
                p[j] = 1.0 / p[j]
        total = 0.0
        for i in range(half + 1):
            row = 0.0
            for j in range(half + 1):
                row += quad[i, j] if j == 0 else 2.0 * quad[i, j]
            total += row if i == 0 else 2.0 * row
        for i in range(half + 1):
            for j in range(half + 1):
                v = np.float32(quad[i, j] / total)
                out[b, half + i, half + j] = v
                out[b, half - i, half + j] = v
                out[b, half + i, half - j] = v
                out[b, half - i, half - j] = v


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
    FWHM_nea = 2.3548 sqrt(NEA / 4 pi): legacypipe's ``psfsize`` (in pixels). Point-source depths
    scale with the NEA, so this is the width that ties a depth to a per-pixel noise. A Moffat with
    beta = 3.5 has FWHM_nea = 1.23 x its half-maximum FWHM; the real DECam PSFEx models shipped
    here 1.17-1.53 x theirs. The PSFEx files' own ``psf_fwhm`` column is PSFEx's estimate, 2-8%
    below FWHM_nea: it is not the psfsize convention.
    """
    k = np.asarray(kernel, dtype=np.float64)
    k = k / k.sum()
    return float(FWHM_PER_SIGMA * np.sqrt(1.0 / (4.0 * np.pi * np.sum(k**2))))


@lru_cache(maxsize=16)
def _moffat_nea_table(beta: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(half-maximum FWHM, NEA-FWHM) [pixels] of pixel-sampled unit-sum (size, size) Moffat
    kernels on a fine geometric grid of half-maximum FWHM, restricted to where the NEA-FWHM rises
    strictly (a kernel much wider than its grid saturates at a flat NEA). Read-only."""
    fwhm = np.geomspace(0.25, 2.0 * size, 2049)
    nea = np.concatenate([FWHM_PER_SIGMA / np.sqrt(4.0 * np.pi * np.sum(
        moffat_kernels(chunk, beta=beta, size=size).astype(np.float64) ** 2, axis=(1, 2)))
        for chunk in np.array_split(fwhm, 16)])
    rising = np.flatnonzero(np.diff(nea) <= 0)
    stop = rising[0] + 1 if len(rising) else len(nea)
    fwhm, nea = fwhm[:stop], nea[:stop]
    fwhm.flags.writeable = nea.flags.writeable = False
    return fwhm, nea


def moffat_fwhm_for_psfsize(psfsize_arcsec, *, size: int = 33, beta: float = DEFAULT_BETA,
                            pixel_scale: float = PIXEL_SCALE_ARCSEC) -> np.ndarray:
    """Half-maximum FWHM [arcsec] of the Moffat (``beta``) whose pixel-sampled, unit-sum
    (``size`` x ``size``) kernel at ``pixel_scale`` [arcsec/px] has NEA-FWHM = ``psfsize_arcsec``
    (the survey's psfsize, arcsec); same shape as the input.

    The NEA-FWHM of the sampled kernel is tabulated on a fine grid (2049 widths, cached per
    ``beta`` and ``size``) and inverted by interpolation (relative error < 1e-4). For beta 3.5 on
    a 33-px kernel the half-maximum FWHM is 0.81-0.82 x psfsize for psfsize 0.8-2"; raises
    PSFError for a psfsize that no kernel on that grid reaches (below ~0.7 px or near the grid)."""
    psfsize = np.asarray(psfsize_arcsec, dtype=np.float64)
    if not np.all(np.isfinite(psfsize)) or np.any(psfsize <= 0):
        raise PSFError(f"psfsize must be finite and > 0 arcsec, got {psfsize[~(np.isfinite(psfsize) & (psfsize > 0))][:3]}")
    if beta <= 1:
        raise PSFError(f"Moffat beta must be > 1, got {beta}")
    size = _odd_size(size, None)
    fwhm, nea = _moffat_nea_table(float(beta), size)
    target = psfsize / pixel_scale
    outside = (target < nea[0]) | (target > nea[-1])
    if np.any(outside):
        raise PSFError(f"psfsize {psfsize[outside][:3]} arcsec is outside what a {size}-px Moffat kernel at "
                       f"{pixel_scale} arcsec/px reaches ({nea[0] * pixel_scale:.3f}-{nea[-1] * pixel_scale:.3f} arcsec)")
    return np.exp(np.interp(np.log(target), np.log(nea), np.log(fwhm))) * pixel_scale


def psfsize_kernels(psfsize_arcsec, *, size: int = 33, beta: float = DEFAULT_BETA,
                    pixel_scale: float = PIXEL_SCALE_ARCSEC) -> np.ndarray:
    """The survey PSF of width ``psfsize_arcsec`` (legacypipe psfsize = NEA-FWHM, arcsec; any
    shape): unit-sum, centred, pixel-sampled Moffat (``beta``) kernels, float32
    ``psfsize.shape + (size, size)``, whose NEA-FWHM (:func:`nea_fwhm` x ``pixel_scale``) equals
    psfsize. The one definition of the convention (see the module docstring)."""
    psfsize = np.asarray(psfsize_arcsec, dtype=np.float64)
    size = _odd_size(size, None)
    halfmax = moffat_fwhm_for_psfsize(psfsize.ravel(), size=size, beta=beta, pixel_scale=pixel_scale)
    return moffat_kernels(halfmax / pixel_scale, beta=beta, size=size).reshape(psfsize.shape + (size, size))


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
