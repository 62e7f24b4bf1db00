"""Gen8 domain randomisation: artifact profiles drawn per row, identical on every product.

One realisation is drawn per injection row from its own generator and applied to the positive,
its paired control and the hard negative alike, so no artifact statistic can separate the labels
(tests/dhs_gen/injection/test_artifacts.py proves it). Amplitudes scale with the host's own
noise σ per band [nmgy/pixel]. Kinds: cosmic rays (1-3 pixel tracks, one band), satellite trails
(a straight line across the stamp, one band), bad columns (a dead column, one band, set to 0),
background gradients (a linear plane in every band), PSF mismatch (the arc is rendered with its
FWHM scaled) and noise rescaling (extra Gaussian noise so σ becomes s·σ, s ≥ 1).
"""
from __future__ import annotations

import math
import sys
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, List, Sequence, Tuple

import numpy as np
from numba.np.random._constants import fi_double, ki_double, wi_double, ziggurat_nor_inv_r, ziggurat_nor_r

from dhs_gen.config import ConfigError
from dhs_gen.injection.hardneg import shuffle_row, shuffle_scratch
from dhs_gen.injection.streams import pcg64_double, pcg64_output, pcg64_step, pcg64_words, set_pcg64_state
from dhs_gen.jit import kernel_strict


@dataclass(frozen=True)
class ArtifactProfile:
    """Probabilities and amplitude ranges of each artifact kind (amplitudes in units of σ)."""

    p_cosmic: float = 0.0
    cosmic_mean_count: float = 1.0
    cosmic_amp_sigma: Tuple[float, float] = (5.0, 50.0)
    p_trail: float = 0.0
    trail_amp_sigma: Tuple[float, float] = (1.0, 5.0)
    p_bad_column: float = 0.0
    p_gradient: float = 0.0
    gradient_amp_sigma: float = 0.5
    p_psf_mismatch: float = 0.0
    psf_scale_range: Tuple[float, float] = (0.95, 1.05)
    p_noise: float = 0.0
    noise_scale_range: Tuple[float, float] = (1.0, 1.2)


PROFILES: Dict[str, ArtifactProfile] = {
    "none": ArtifactProfile(),
    "mild": ArtifactProfile(p_cosmic=0.3, p_trail=0.05, p_bad_column=0.05, p_gradient=0.3,
                            p_psf_mismatch=0.5, p_noise=0.3),
    "strong": ArtifactProfile(p_cosmic=0.7, cosmic_mean_count=3.0, p_trail=0.2, trail_amp_sigma=(2.0, 10.0),
                              p_bad_column=0.2, p_gradient=0.7, gradient_amp_sigma=2.0, p_psf_mismatch=0.8,
                              psf_scale_range=(0.85, 1.15), p_noise=0.6, noise_scale_range=(1.0, 1.5)),
}


def get_profile(name: str) -> ArtifactProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown artifact profile {name!r}; known: {sorted(PROFILES)}") from None


@dataclass
class ArtifactDraw:
    """One row's realisation: PSF FWHM scale per band, an additive image and dead columns."""

    psf_scale: np.ndarray
    additive: np.ndarray | None = None
    dead: list = field(default_factory=list)  # (band, column) pairs

    @property
    def kinds(self) -> int:
        return int(self.additive is not None) + len(self.dead) + int(np.any(self.psf_scale != 1.0))


def compose_injection(hosts, host_rows, arcs, arc_rows, centers, shuffle_plan, draws, products) -> None:
    """The three products of an injection, each row composed while its stamps are in cache:
    ``products`` = (positive, control, hard negative), (N, C, H, W) float32 (rows may be strided,
    e.g. stamp_array's blobs, each row contiguous), row r written as
    positive = (host + arc) + additive, control = host + additive and hard negative =
    (host + shuffled arc) + additive (float32 sums in that order; no additive where the draw has
    none), then ``draws[r]``'s dead columns set to 0: every product of a row gets the same
    realisation. Host and arc of row r are ``hosts[host_rows[r]]``, ``arcs[arc_rows[r]]``
    ((*, C, H, W) float32); the shuffle is
    :func:`dhs_gen.injection.hardneg.shuffle_row` about ``centers[r]`` ((N, 2) x, y [pixels]) with
    ``shuffle_plan`` = (ramps, n_sectors, perms) of :func:`dhs_gen.injection.hardneg.sector_plan` or
    :func:`~dhs_gen.injection.hardneg.seeded_sector_plan`."""
    n = len(host_rows)
    if n == 0:
        return
    shape = products[0].shape
    additive, index = _additives(draws, shape)
    spans = [_row_span(images) for images in products]
    ramps, n_sectors, perms = shuffle_plan
    _compose_injection(np.ascontiguousarray(hosts, np.float32), np.asarray(host_rows, np.int64),
                       np.ascontiguousarray(arcs, np.float32), np.asarray(arc_rows, np.int64),
                       np.ascontiguousarray(centers, np.float64), np.asarray(ramps, np.float64),
                       np.asarray(n_sectors, np.int64), np.ascontiguousarray(perms, np.int64), additive, index,
                       spans[0][0], spans[0][1], spans[1][0], spans[1][1], spans[2][0], spans[2][1])
    _dead_columns(draws, products)


def _additives(draws, shape) -> tuple:
    """(the additive images of the draws that have one, stacked (a view where they are slots of one
    array), index (N,) int64 of each row's image, -1 for none)."""
    added = [r for r, draw in enumerate(draws) if draw.additive is not None]
    index = np.full(len(draws), -1, np.int64)
    index[added] = np.arange(len(added))
    return (_stacked([draws[r].additive for r in added]) if added else np.zeros((1,) + tuple(shape[1:]), np.float32),
            index)


def _dead_columns(draws, products) -> None:
    """Set each row's dead columns to 0 in every product."""
    for r, draw in enumerate(draws):
        for band, column in draw.dead:
            for images in products:
                images[r, band, :, column] = 0.0


def _row_span(images: np.ndarray) -> tuple:
    """(1-D float32 view from the first row's first pixel to the last row's last, row stride in
    pixels) of an (N, C, H, W) float32 array whose rows are each contiguous and do not overlap."""
    n, row = len(images), int(np.prod(images.shape[1:]))
    stride = images.strides[0] // 4
    contiguous_rows = images.dtype == np.float32 and images[0].flags.c_contiguous if n else True
    if not contiguous_rows or images.strides[0] % 4 or (n > 1 and stride < row):
        raise ValueError(f"product rows must be contiguous float32 stamps (strides {images.strides})")
    span = np.lib.stride_tricks.as_strided(images, shape=((n - 1) * stride + row,), strides=(4,))
    return span, stride


def _stacked(images: list) -> np.ndarray:
    """``np.stack(images)``, without a copy when they are consecutive slots of one array (as
    :func:`draw_batch` allocates them)."""
    first = images[0]
    base, step = first.base, first.nbytes
    start = first.__array_interface__["data"][0]
    if isinstance(base, np.ndarray) and base.flags.c_contiguous and base.ndim == first.ndim + 1 \
            and base.shape[1:] == first.shape and base.dtype == first.dtype and first.flags.c_contiguous \
            and all(image.base is base and image.__array_interface__["data"][0] == start + k * step
                    for k, image in enumerate(images)):
        slot = (start - base.__array_interface__["data"][0]) // step
        return base[slot:slot + len(images)]
    return np.stack(images)


@kernel_strict
def _compose_injection(hosts, host_rows, arcs, arc_rows, centers, ramps, n_sectors, perms, additive, index,
                       positive, positive_stride, control, control_stride, hard_negative, hard_negative_stride):
    """:func:`compose_injection` on the products' row spans (1-D float32, rows ``*_stride`` pixels
    apart)."""
    n_bands, h, w = hosts.shape[1:]
    size = n_bands * h * w
    scratch = shuffle_scratch(n_bands, h, w)
    shuffled = np.empty(size, np.float32)
    for r in range(len(host_rows)):
        host, arc = hosts[host_rows[r]].ravel(), arcs[arc_rows[r]].ravel()
        shuffle_row(arc, shuffled, h, w, centers[r, 0], centers[r, 1], ramps[r], n_sectors[r], perms[r], scratch)
        pos = positive[r * positive_stride:r * positive_stride + size]
        ctrl = control[r * control_stride:r * control_stride + size]
        neg = hard_negative[r * hard_negative_stride:r * hard_negative_stride + size]
        a = index[r]
        if a >= 0:
            add = additive[a].ravel()
            for p in range(size):
                pos[p] = (host[p] + arc[p]) + add[p]
                ctrl[p] = host[p] + add[p]
                neg[p] = (host[p] + shuffled[p]) + add[p]
        else:
            for p in range(size):
                pos[p] = host[p] + arc[p]
                ctrl[p] = host[p]
                neg[p] = host[p] + shuffled[p]


def draw_artifacts(profile: ArtifactProfile, rng: np.random.Generator, sigma: np.ndarray,
                   shape: Tuple[int, int, int]) -> ArtifactDraw:
    """Draw one realisation for a (C, H, W) stamp with host noise ``sigma`` (C,) [nmgy/pixel].

    The generator is consumed in a fixed order (PSF, cosmic rays, trail, gradient, noise, bad
    column), each kind drawing only when its probability test passes.
    """
    return _draw(profile, rng, _usable_sigma(sigma), shape)


def draw_batch(profiles: Sequence[ArtifactProfile], rngs: Sequence[np.random.Generator], sigma: np.ndarray,
               shape: Tuple[int, int, int]) -> List[ArtifactDraw]:
    """``[draw_artifacts(profiles[r], rngs[r], sigma[r], shape) for r ...]`` (the same draws) for
    ``sigma`` (N, C) [nmgy/pixel], its checks done once for the batch; the additive images are
    consecutive slots of one array (:func:`compose_injection` reads them without a copy)."""
    slots = _Slots(len(profiles), shape)
    return [_draw(profile, rng, row, shape, slots) for profile, rng, row in zip(profiles, rngs, _usable_sigma(sigma))]


_SPARE: deque = deque(maxlen=1)  # the last batch's slot array, reused once nothing refers to it


class _Slots:
    """Zeroed float32 images of one shape handed out in order from one (n, C, H, W) array: the
    previous batch's array when no image of it is referred to any more (every view of an array
    holds a reference to it, so its reference count says so), which spares the page faults of a
    new one; a new array otherwise. At most one spare array (the last batch's) is kept."""

    def __init__(self, n: int, shape: Tuple[int, int, int]):
        shape = tuple(shape)
        spare = _SPARE.pop() if _SPARE else None
        if spare is None or spare.shape[1:] != shape or len(spare) < n or sys.getrefcount(spare) > 2:
            spare = np.empty((n,) + shape, np.float32)  # (2 references: ``spare`` and getrefcount's argument)
        _SPARE.append(spare)
        self.array, self.used = spare[:n], 0

    def take(self) -> np.ndarray:
        image = self.array[self.used]
        image.fill(0.0)
        self.used += 1
        return image


def _usable_sigma(sigma: np.ndarray) -> np.ndarray:
    """float32 σ, 0 where it is not finite and positive (no artifact amplitude there)."""
    sigma = np.asarray(sigma)
    return np.where(np.isfinite(sigma) & (sigma > 0), sigma, 0.0).astype(np.float32)


def _draw(profile: ArtifactProfile, rng: np.random.Generator, sigma: np.ndarray,
          shape: Tuple[int, int, int], slots: _Slots | None = None) -> ArtifactDraw:
    """:func:`draw_artifacts` for a float32 ``sigma`` already checked (:func:`_usable_sigma`), the
    additive image from ``slots`` (a new array without)."""
    n_bands, h, w = shape
    random = rng.random
    psf_scale = rng.uniform(*profile.psf_scale_range, size=n_bands) if random() < profile.p_psf_mismatch \
        else _unit_scale(n_bands)
    add = None
    for p, kind in ((profile.p_cosmic, _cosmic_rays), (profile.p_trail, _trail), (profile.p_gradient, _gradient),
                    (profile.p_noise, _noise)):
        if random() < p:
            if add is None:
                add = np.zeros(shape, dtype=np.float32) if slots is None else slots.take()
            kind(add, profile, rng, sigma)
    dead = []
    if random() < profile.p_bad_column:
        dead.append((int(rng.integers(n_bands)), int(rng.integers(w))))
    return ArtifactDraw(psf_scale=psf_scale, additive=add, dead=dead)


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """``rng.uniform(low, high)`` for float scalars, the same float and generator state (numpy
    computes low + (high - low) x the next double, as here) without its argument handling (~1 µs)."""
    return low + (high - low) * rng.random()


@lru_cache(maxsize=8)
def _unit_scale(n_bands: int) -> np.ndarray:
    """Read-only float64 ones (n_bands,): the PSF scale of a row without PSF mismatch (shared)."""
    ones = np.ones(n_bands)
    ones.flags.writeable = False
    return ones


def _cosmic_rays(add: np.ndarray, profile: ArtifactProfile, rng: np.random.Generator, sigma: np.ndarray) -> None:
    """Add 1-3 pixel tracks (at least one; Poisson mean ``cosmic_mean_count``), each in one band."""
    n_bands, h, w = add.shape
    for _ in range(max(1, rng.poisson(profile.cosmic_mean_count))):
        band, r0, c0 = rng.integers(n_bands), int(rng.integers(h)), int(rng.integers(w))
        length, angle = int(rng.integers(1, 4)), _uniform(rng, 0.0, np.pi)
        dy, dx = math.sin(angle), math.cos(angle)  # (= numpy's sin, cos of a float64)
        pixels = dict.fromkeys((min(max(round(r0 + k * dy), 0), h - 1), min(max(round(c0 + k * dx), 0), w - 1))
                               for k in range(length))  # round half to even; a pixel hit twice gets it once
        value = _uniform(rng, *profile.cosmic_amp_sigma) * sigma[band]  # float32
        for row, col in pixels:
            add[band, row, col] += value


def _trail(add: np.ndarray, profile: ArtifactProfile, rng: np.random.Generator, sigma: np.ndarray) -> None:
    """Add a Gaussian-profile (σ = 1 pixel) straight line across the stamp in one band."""
    n_bands, h, w = add.shape
    band, angle = rng.integers(n_bands), _uniform(rng, 0.0, np.pi)
    offset = _uniform(rng, -0.5, 0.5) * min(h, w)
    xx, yy = _centred_grid(h, w)
    dist = xx * np.sin(angle) - yy * np.cos(angle) - offset
    add[band] += _uniform(rng, *profile.trail_amp_sigma) * sigma[band] * np.exp(-0.5 * dist**2)


@lru_cache(maxsize=8)
def _centred_grid(h: int, w: int):
    """float32 (h, w) column and row offsets [pixels] from the stamp centre, read-only."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx, yy = xx - (w - 1) / 2, yy - (h - 1) / 2
    xx.flags.writeable = yy.flags.writeable = False
    return xx, yy


def _gradient(add: np.ndarray, profile: ArtifactProfile, rng: np.random.Generator, sigma: np.ndarray) -> None:
    """Add a zero-mean linear plane of random direction to every band."""
    _, h, w = add.shape
    gx, gy = rng.normal(size=2)
    ramp = np.empty((h, w))
    _ramp(ramp, float(gx), float(gy), float(np.hypot(gx, gy) or 1.0), float(max(h, w)))
    mean = np.add.reduce(ramp, axis=None) / ramp.size  # ramp.mean(): numpy's pairwise sum, the same bits
    _add_plane(add, ramp, mean, profile.gradient_amp_sigma * sigma)  # float32 amplitude x float64 plane


@kernel_strict
def _ramp(ramp, gx, gy, norm, side):
    """ramp[i, j] = (j gx + i gy) / norm / side in float64 (numpy's operations in numpy's order)."""
    h, w = ramp.shape
    for i in range(h):
        for j in range(w):
            ramp[i, j] = (j * gx + i * gy) / norm / side


@kernel_strict
def _add_plane(add, ramp, mean, amp):
    """add[c] += float32(amp[c] * (ramp - mean)) (the difference and product in float64, rounded once)."""
    n_bands, h, w = add.shape
    for c in range(n_bands):
        a = np.float64(amp[c])
        for i in range(h):
            for j in range(w):
                add[c, i, j] += np.float32(a * (ramp[i, j] - mean))


def _noise(add: np.ndarray, profile: ArtifactProfile, rng: np.random.Generator, sigma: np.ndarray) -> None:
    """Add Gaussian noise that turns the host noise σ into s·σ (s ≥ 1 drawn per row)."""
    scale = _uniform(rng, *profile.noise_scale_range)
    extra = sigma * np.sqrt(max(scale**2 - 1.0, 0.0))
    if not isinstance(rng.bit_generator, np.random.PCG64):  # another bit generator: numpy itself
        add += rng.standard_normal(add.shape).astype(np.float32) * extra[:, None, None]
        return
    state = rng.bit_generator.state
    words = pcg64_words(state)
    _add_noise_pcg64(add, words, extra)
    set_pcg64_state(rng, state, words[0], words[1])


@kernel_strict
def _add_noise_pcg64(add, words, extra):
    """add[c] += float32(n) * extra[c] (``extra`` float64: the product and the sum in float64,
    rounded once, as ``add += normals.astype(float32) * extra``) for standard normals n drawn in C
    order with the PCG64 inline: ``words`` = uint64 (state hi, state lo, increment hi, increment
    lo) of the generator, the state advanced in place. The normals are numpy's
    ``random_standard_normal`` (the ziggurat; numba's port, line for line, with its tables), each
    uint64 PCG64's next output and each double :func:`~dhs_gen.injection.streams.pcg64_double`, as
    numpy's PCG64 gives them: the values ``rng.standard_normal(add.shape)`` gives, bit for bit."""
    n_bands, h, w = add.shape
    hi, lo, inc_hi, inc_lo = words[0], words[1], words[2], words[3]
    for c in range(n_bands):
        for i in range(h):
            for j in range(w):
                while True:
                    hi, lo = pcg64_step(hi, lo, inc_hi, inc_lo)
                    r = pcg64_output(hi, lo)
                    idx = r & 0xff
                    r >>= 8
                    sign = r & 0x1
                    rabs = (r >> 1) & 0x000fffffffffffff
                    x = rabs * wi_double[idx]
                    if (sign & 0x1):
                        x = -x
                    if rabs < ki_double[idx]:
                        break
                    if idx == 0:
                        while True:
                            hi, lo = pcg64_step(hi, lo, inc_hi, inc_lo)
                            u = pcg64_double(hi, lo)
                            xx = -ziggurat_nor_inv_r * np.log1p(-u)
                            hi, lo = pcg64_step(hi, lo, inc_hi, inc_lo)
                            u = pcg64_double(hi, lo)
                            yy = -np.log1p(-u)
                            if (yy + yy > xx * xx):
                                x = -(ziggurat_nor_r + xx) if ((rabs >> 8) & 0x1) else ziggurat_nor_r + xx
                                break
                        break
                    hi, lo = pcg64_step(hi, lo, inc_hi, inc_lo)
                    u = pcg64_double(hi, lo)
                    if ((fi_double[idx - 1] - fi_double[idx]) * u + fi_double[idx]) < np.exp(-0.5 * x * x):
                        break
                add[c, i, j] += np.float32(x) * extra[c]
    words[0], words[1] = hi, lo

