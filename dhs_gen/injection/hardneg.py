"""Hard negatives: the injected light with its azimuthal sectors shuffled about the lens centre.

Δ = positive − control (the arc). The shuffled region is the annulus about the lens centre that
holds ``FLUX_FRACTION`` (99.5%) of Δ's positive flux (summed over bands): radii from the radial
cumulative flux, ``(1 − F)/2`` inside r_in and outside r_out. The annulus is cut into N azimuthal
sectors (N = 2π θ_E / (2 FWHM), between 3 and 8: sectors at least two PSF FWHMs long on the
Einstein ring when they fit) and the sectors are permuted (never all by the same angle, which would
only rotate the lens): each output sector is the input sector it is given, rotated rigidly about
the lens centre and resampled bilinearly; neighbouring sectors cross-fade (smoothly, C1) over two
PSF FWHMs of arc length (at most a whole sector), and the shuffled annulus fades into the untouched
light over two FWHMs beyond r_in and r_out, so no edge sharper than the PSF appears. One geometry
for all bands, so colours are kept pixel by pixel; the flux and radial profile are kept (the
cross-fade windows form a partition of unity before and after the rotation, and the radial fade is
rotation invariant) up to the resampling (< 1% for PSF-smooth light); pixels beyond the fades
(< 0.5% of the flux) are unchanged. Hard negative = control + shuffled Δ. For θ_E ≲ FWHM the arc
is unresolved and 3 sectors with wide cross-fades move light between thirds of the ring only.

The earlier rule (LEGACY_FORMATS.md) permuted single pixels in [θ_E − 1.5 FWHM, θ_E + 1.5 FWHM):
4–21% of the arc's flux lay outside and stayed coherent, and the pixel permutation added
sub-PSF speckle (power at spatial frequencies no PSF-convolved image has) a network can learn.
"""
from __future__ import annotations

import numpy as np

FLUX_FRACTION = 0.995
N_SECTORS = 8  # at most
MIN_SECTORS = 3  # the fewest with a permutation that is not a rotation
SECTOR_FWHM = 2.0  # sectors at least this many PSF FWHMs long at the Einstein radius, when they fit
FADE_FWHM = 2.0  # cross-fades (between sectors, at the annulus edges) this many PSF FWHMs long
RADIAL_BIN = 0.25  # [pixels] radial step of the annulus radii


def shuffle_annulus(delta: np.ndarray, center=(0.0, 0.0), flux_fraction: float = FLUX_FRACTION,
                    radius: np.ndarray | None = None) -> tuple:
    """(r_in, r_out) [pixels] of the annulus about ``center`` = (x, y) offset [pixels] from the
    stamp centre that holds ``flux_fraction`` of the positive flux of ``delta`` (C, H, W) summed
    over bands (at least; radii in steps of ``RADIAL_BIN``): pixels with r_in ≤ r ≤ r_out. (0, 0)
    when there is no positive flux. ``radius``: the (H, W) pixel radii about ``center`` when the
    caller has them already."""
    flux = np.clip(delta, 0.0, None).sum(axis=0, dtype=np.float64).ravel()  # exact: clip, then a float64 sum
    total = flux.sum()
    if not total > 0:
        return 0.0, 0.0
    # radial cumulative flux in RADIAL_BIN-px bins; whole bins are kept, so the annulus holds >= F
    radius = _radius(delta.shape[-2:], center) if radius is None else radius
    bins = (radius.ravel() / RADIAL_BIN).astype(np.int64)
    cum = np.cumsum(np.bincount(bins, weights=flux)) / total
    tail = 0.5 * (1.0 - flux_fraction)
    first = int(np.searchsorted(cum, tail, side="right"))
    last = min(int(np.searchsorted(cum, 1.0 - tail, side="left")), len(cum) - 1)
    return first * RADIAL_BIN, (last + 1) * RADIAL_BIN


def annulus_mask(shape, r_in: float, r_out: float, center=(0.0, 0.0)) -> np.ndarray:
    """(H, W) bool: pixels with r_in ≤ radius ≤ r_out [pixels] about ``center`` (x, y offset from
    the stamp centre)."""
    r = _radius(shape, center)
    return (r >= r_in) & (r <= r_out)


def _radius(shape, center) -> np.ndarray:
    h, w = shape
    x = np.arange(w) - (w - 1) / 2.0 - center[0]
    y = np.arange(h) - (h - 1) / 2.0 - center[1]
    return np.hypot(x[None, :], y[:, None])


def sector_count(theta_pix: float, fwhm_pix: float) -> int:
    """Number of sectors: as many as the Einstein ring holds sectors at least ``SECTOR_FWHM`` PSF
    FWHMs long (2 pi theta_E / (SECTOR_FWHM FWHM)), between ``MIN_SECTORS`` and ``N_SECTORS``."""
    if not (np.isfinite(theta_pix) and np.isfinite(fwhm_pix) and fwhm_pix > 0):
        return MIN_SECTORS
    return int(np.clip(np.floor(2.0 * np.pi * theta_pix / (SECTOR_FWHM * fwhm_pix)), MIN_SECTORS, N_SECTORS))


def sector_permutation(rng: np.random.Generator, n: int = N_SECTORS) -> np.ndarray:
    """A permutation of the ``n`` sectors that is not a rotation (source sector of each output
    sector; redrawn while every sector would move by the same angle)."""
    while True:
        perm = rng.permutation(n)
        if len(np.unique((perm - np.arange(n)) % n)) > 1:
            return perm


def shuffle_delta(delta: np.ndarray, theta_pix: float, fwhm_pix: float, rng: np.random.Generator,
                  center=(0.0, 0.0)) -> np.ndarray:
    """Δ (C, H, W) with the azimuthal sectors of its 99.5%-flux annulus about ``center`` (x, y
    offset [pixels] from the stamp centre) permuted (see the module docstring); float32.
    ``theta_pix``: θ_E [pixels] (sets the number of sectors); ``fwhm_pix``: the PSF FWHM [pixels]
    (the sector length and every cross-fade scale with it); ``rng`` draws the permutation."""
    delta = np.asarray(delta, dtype=np.float32)
    c, h, w = delta.shape
    radius = _radius((h, w), center)
    r_in, r_out = shuffle_annulus(delta, center, radius=radius)
    out = delta.copy()
    if r_out <= 0:
        return out
    ramp = FADE_FWHM * max(float(fwhm_pix), 1.0)
    n_sectors = sector_count(theta_pix, max(float(fwhm_pix), 1.0))
    perm = sector_permutation(rng, n_sectors)
    inside = np.flatnonzero((radius >= r_in - ramp) & (radius <= r_out + ramp))  # flat pixel indices
    rows, cols = np.divmod(inside, w)
    r = radius.ravel()[inside].astype(np.float32)
    x = (cols - ((w - 1) / 2.0 + center[0])).astype(np.float32)
    y = (rows - ((h - 1) / 2.0 + center[1])).astype(np.float32)
    width = np.float32(2.0 * np.pi / n_sectors)
    u = np.mod(np.arctan2(y, x), np.float32(2.0 * np.pi)) / width  # sector coordinate in [0, N)
    k = u.astype(np.int64) % n_sectors
    f = u - np.floor(u)
    # cross-fade over an arc length of FADE_FWHM FWHMs (at most a whole sector) about each sector boundary
    half = np.minimum(np.float32(0.5 * ramp) / np.maximum(r, np.float32(1e-6)) / width, np.float32(0.5))
    t = np.minimum(np.minimum(f, 1.0 - f) / half, np.float32(1.0))
    w_own = np.float32(0.5) + np.float32(0.5) * np.sin(np.float32(0.5 * np.pi) * t)  # smooth (C1); 1 past the fade
    # the content of sector perm[j] lands in sector j: rotate by (perm[j] - j) sectors. The
    # neighbouring sector is sampled only inside the cross-fades (elsewhere its weight is 0)
    fade = np.flatnonzero(w_own < 1.0)
    kf = k[fade]
    other = np.where(f[fade] < 0.5, kf - 1, kf + 1) % n_sectors
    move = np.concatenate([perm[k] - k, perm[other] - other]) % n_sectors
    turns = np.arange(n_sectors) * (2.0 * np.pi / n_sectors)
    cos, sin = np.cos(turns).astype(np.float32)[move], np.sin(turns).astype(np.float32)[move]
    xx, yy = np.concatenate([x, x[fade]]), np.concatenate([y, y[fade]])
    samples = _bilinear(delta, sin * xx + cos * yy + np.float32((h - 1) / 2.0 + center[1]),
                        cos * xx - sin * yy + np.float32((w - 1) / 2.0 + center[0]))
    shuffled = samples[:, :len(x)]
    wf = w_own[fade]
    shuffled[:, fade] = wf * shuffled[:, fade] + (1.0 - wf) * samples[:, len(x):]
    # radial cross-fade to the untouched light over FADE_FWHM FWHMs outside [r_in, r_out]
    taper = np.cos(np.float32(0.5 * np.pi / ramp) * np.clip(np.maximum(r_in - r, r - r_out), 0.0, ramp)) ** 2
    flat = out.reshape(c, h * w)
    flat[:, inside] = taper * shuffled + (1.0 - taper) * np.take(flat, inside, axis=1)
    return out


def _bilinear(images: np.ndarray, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """(C, N) float32 bilinear samples of (C, H, W) ``images`` at fractional (row, col) [pixels];
    zero outside the image (a zero border; points farther out are clamped onto it)."""
    c, h, w = images.shape
    padded = np.zeros((c, h + 2, w + 2), dtype=np.float32)
    padded[:, 1:-1, 1:-1] = images
    row = np.clip(row + np.float32(1.0), 0.0, np.float32(h + 1.0 - 1e-3))
    col = np.clip(col + np.float32(1.0), 0.0, np.float32(w + 1.0 - 1e-3))
    r0, c0 = row.astype(np.int64), col.astype(np.int64)
    fr, fc = (row - r0).astype(np.float32), (col - c0).astype(np.float32)
    i00 = r0 * (w + 2) + c0
    corners = np.take(padded.reshape(c, -1), np.concatenate([i00, i00 + 1, i00 + (w + 2), i00 + (w + 3)]), axis=1)
    v00, v01, v10, v11 = corners.reshape(c, 4, len(i00)).transpose(1, 0, 2)
    top = v00 + (v01 - v00) * fc
    return top + (v10 + (v11 - v10) * fc - top) * fr
