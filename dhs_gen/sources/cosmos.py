"""The COSMOS bank ("Gen5/Gen6 deep source bank"): real HST galaxies as lensing source templates.

Built from GalSim RealGalaxy catalogues (ACS F814W, 0.03"/pixel; the packaged
``cosmos_hst/btk_26_extension`` (100 galaxies, HSC g r i z y photometry, photo-z) and
``cosmos_hst/paltas_23.5_n1`` (10 brighter ones)). Cleaning, per galaxy:

1. background: the sigma-clipped median of a 3-pixel border is subtracted;
2. segmentation: pixels of the 3x3-smoothed image above 1.5 sigma (sigma = the catalogue
   NOISE_VARIANCE^0.5, or the border MAD) are labelled; only the component containing the centre
   (or nearest to it) is kept, dilated by 3 pixels — neighbours and sky noise are set to 0;
3. inside the footprint the pixels keep their values, negative noise included (clipping them to 0
   turned the footprint's sky noise into a positive halo of ~3.5% of the flux; only the total
   must be positive); the stamp is cropped symmetrically about the centre to the kept footprint
   and, when wider than ``size`` pixels, resampled (bilinear, then renormalised) to ``size`` x
   ``size`` at a coarser per-galaxy pixel scale (0.03" x crop / size);
4. stored float32 in **flux per pixel, normalised to unit sum** with its pixel scale [arcsec].

Rendering: templates with a half-light radius below ``SMALL_HLR_ARCSEC`` (0.15") are ray-traced
with at least ``SMALL_SUPERSAMPLING`` (8) sub-pixels per side (:func:`template_supersampling`):
at the default 4 the sub-pixel (0.066") is twice the template pixel and their lensed flux was off
by up to 8.5% (3.2% at 8; measured against 32, docs/injection_physics.md).

Convert to surface brightness only via
:func:`dhs_gen.lensing.image_source.template_to_surface_brightness` (template * flux_nmgy /
pixel_scale**2). The templates keep the HST PSF (FWHM ~0.1", negligible next to DECam's ~1.2").
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dhs_gen.sources.priors import (
    COLOUR_LIMITS,
    SOURCE_G_MINUS_R,
    SOURCE_R_MINUS_Z,
    check_finite_batch,
    source_colours,
    source_positions,
    uniform,
)
from dhs_gen.sources.registry import ParamSpec, SourceError, SourceGenerator, register_source
from dhs_gen.sources.sersic import colour_fluxes

HST_PIXEL_SCALE = 0.03
SMALL_HLR_ARCSEC = 0.15  # templates smaller than this [arcsec, half-light radius] ...
SMALL_SUPERSAMPLING = 8  # ... are rendered with at least this many sub-pixels per side
CATALOGUES = (
    ("btk_26_extension", "real_galaxy_catalog_26_extension_example.fits",
     "real_galaxy_catalog_26_extension_example_fits.fits"),
    ("paltas_23.5_n1", "real_galaxy_catalog_23.5.fits", "real_galaxy_catalog_23.5_fits.fits"),
)
BANK_ARRAYS = ("templates", "pixel_scale", "ident", "mag_f814w", "mag_g", "mag_r", "mag_z", "zphot", "hlr_arcsec")


@dataclass
class CosmosBank:
    """Cleaned source templates: ``templates`` (K, S, S) float32 unit-sum flux per pixel,
    ``pixel_scale`` (K,) arcsec/pixel, ``ident`` COSMOS ids, ``mag_f814w`` and HSC ``mag_g/r/z``
    [AB mag, NaN when unknown], ``zphot``, ``hlr_arcsec`` (circular half-light radius)."""

    templates: np.ndarray
    pixel_scale: np.ndarray
    ident: np.ndarray
    mag_f814w: np.ndarray
    mag_g: np.ndarray
    mag_r: np.ndarray
    mag_z: np.ndarray
    zphot: np.ndarray
    hlr_arcsec: np.ndarray

    def __len__(self) -> int:
        return len(self.templates)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, **{k: getattr(self, k) for k in BANK_ARRAYS})
        return buf.getvalue()

    def save(self, uri: str) -> None:
        """Write the bank as an npz (atomic; file:// or s3://)."""
        from dhs_gen.storage import write_bytes

        write_bytes(uri, self.to_bytes())

    @classmethod
    def load(cls, uri: str) -> CosmosBank:
        """Read a bank written by :meth:`save`; checks arrays, dtypes and finiteness."""
        from dhs_gen.storage import read_bytes

        with np.load(io.BytesIO(read_bytes(uri)), allow_pickle=False) as z:
            missing = [k for k in BANK_ARRAYS if k not in z.files]
            if missing:
                raise SourceError(f"{uri}: not a COSMOS bank, missing arrays {missing}")
            bank = cls(**{k: z[k] for k in BANK_ARRAYS})
        if bank.templates.dtype != np.float32 or bank.templates.ndim != 3:
            raise SourceError(f"{uri}: templates must be float32 (K, S, S), got {bank.templates.dtype} "
                              f"{bank.templates.shape}")
        if not np.isfinite(bank.templates).all() or not np.all(bank.pixel_scale > 0):
            raise SourceError(f"{uri}: non-finite templates or non-positive pixel scales")
        return bank


def half_light_radius(template: np.ndarray, pixel_scale: float) -> float:
    """Circular half-light radius [arcsec] about the template centre."""
    h, w = template.shape
    yy, xx = np.indices(template.shape)
    r = np.hypot(xx - (w - 1) / 2, yy - (h - 1) / 2).ravel()
    order = np.argsort(r)
    cum = np.cumsum(template.ravel()[order], dtype=np.float64)
    return float(r[order][np.searchsorted(cum, 0.5 * cum[-1])] * pixel_scale)


def clean_galaxy(image: np.ndarray, noise_sigma: float | None = None, size: int = 64,
                 pixel_scale: float = HST_PIXEL_SCALE, threshold: float = 1.5):
    """Background-subtract, isolate the central galaxy, crop/resample: (template (S, S) float32
    unit sum, pixel scale [arcsec]). Raises SourceError if nothing remains."""
    from scipy import ndimage

    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2 or min(img.shape) < 8 or not np.isfinite(img).all():
        raise SourceError(f"galaxy image must be finite 2-D, at least 8x8, got {img.shape}")
    border = np.concatenate([img[:3].ravel(), img[-3:].ravel(), img[3:-3, :3].ravel(), img[3:-3, -3:].ravel()])
    med = np.median(border)
    for _ in range(3):  # sigma-clipped background
        mad = 1.4826 * np.median(np.abs(border - med))
        border = border[np.abs(border - med) < 3 * max(mad, 1e-12)]
        med = np.median(border)
    img = img - med
    sigma = noise_sigma if noise_sigma and noise_sigma > 0 else 1.4826 * np.median(np.abs(border - med))
    labels, nlab = ndimage.label(ndimage.uniform_filter(img, 3) > threshold * sigma)
    if nlab == 0:
        raise SourceError("no pixels above the detection threshold")
    cy, cx = (img.shape[0] - 1) / 2, (img.shape[1] - 1) / 2
    keep = labels[int(round(cy)), int(round(cx))]
    if keep == 0:  # nearest labelled pixel to the centre
        ys, xs = np.nonzero(labels)
        keep = labels[ys, xs][np.argmin(np.hypot(ys - cy, xs - cx))]
    mask = ndimage.binary_dilation(labels == keep, iterations=3)
    img = np.where(mask, img, 0.0)  # negative noise kept: clipping it biases the flux (a halo)
    ys, xs = np.nonzero(mask)
    half = int(np.ceil(max(np.abs(ys - cy).max(), np.abs(xs - cx).max()))) + 2
    padded = np.pad(img, half)  # symmetric crop about the centre, padding where needed
    y0, x0 = int(round(cy)) + half, int(round(cx)) + half
    crop = padded[y0 - half:y0 + half + 1, x0 - half:x0 + half + 1]
    n = crop.shape[0]
    if n > size:
        crop = ndimage.zoom(crop, size / n, order=1, grid_mode=True, mode="grid-constant")[:size, :size]
        scale = pixel_scale * n / crop.shape[0]
    else:
        pad = size - n
        crop = np.pad(crop, ((pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2)))
        scale = pixel_scale
    total = crop.sum()
    if not total > 0:
        raise SourceError("the cleaned galaxy has no flux")
    return (crop / total).astype(np.float32), float(scale)


def template_supersampling(hlr_arcsec, supersampling: int) -> np.ndarray:
    """(B,) ray-tracing sub-pixels per side for templates of half-light radius ``hlr_arcsec`` (B,)
    [arcsec]: ``supersampling``, raised to ``SMALL_SUPERSAMPLING`` below ``SMALL_HLR_ARCSEC``."""
    hlr = np.asarray(hlr_arcsec, dtype=np.float64)
    return np.where(hlr < SMALL_HLR_ARCSEC, max(int(supersampling), SMALL_SUPERSAMPLING), int(supersampling))


def _catalogue_mag(table, row, column: str) -> float:
    """A magnitude from a catalogue row, NaN when the row or column is missing or the value is a
    placeholder (<= 0 or >= 40, e.g. 99)."""
    if row is None or column not in table.columns.names:
        return np.nan
    value = float(table[column][row])
    return value if 0 < value < 40 else np.nan


def build_cosmos_bank(root: str | None = None, size: int = 64) -> CosmosBank:
    """Clean every galaxy of the RealGalaxy catalogues under ``root`` (default: the packaged
    ``dhs_gen/data/cosmos_hst``) into a :class:`CosmosBank` of ``size`` x ``size`` templates."""
    from astropy.io import fits

    from dhs_gen.data_files import data_path
    from dhs_gen.storage import join_uri, read_bytes

    root = str(root) if root is not None else str(data_path("cosmos_hst"))
    rows = {k: [] for k in BANK_ARRAYS}
    for folder, catalogue, fits_catalogue in CATALOGUES:
        def read(name, folder=folder):
            return fits.open(io.BytesIO(read_bytes(join_uri(root, folder, name))), memmap=False)

        cat = read(catalogue)[1].data
        extra = read(fits_catalogue)[1].data
        extra_by_id = {int(i): j for j, i in enumerate(extra["IDENT"])}
        images = {}
        for j in range(len(cat)):
            fname = str(cat["GAL_FILENAME"][j]).strip()
            if fname not in images:
                images[fname] = read(fname)
            image = images[fname][int(cat["GAL_HDU"][j])].data
            template, scale = clean_galaxy(image, float(np.sqrt(cat["NOISE_VARIANCE"][j])), size=size)
            k = extra_by_id.get(int(cat["IDENT"][j]))
            names = extra.columns.names

            rows["templates"].append(template)
            rows["pixel_scale"].append(scale)
            rows["ident"].append(int(cat["IDENT"][j]))
            rows["mag_f814w"].append(float(cat["MAG"][j]))
            rows["mag_g"].append(_catalogue_mag(extra, k, "HSC_g"))
            rows["mag_r"].append(_catalogue_mag(extra, k, "HSC_r"))
            rows["mag_z"].append(_catalogue_mag(extra, k, "HSC_z"))
            zcol = "ZPHOT" if "ZPHOT" in names else "zphot"
            rows["zphot"].append(float(extra[zcol][k]) if k is not None else np.nan)
            rows["hlr_arcsec"].append(half_light_radius(template, scale))
    arrays = {k: np.asarray(v) for k, v in rows.items()}
    arrays["templates"] = arrays["templates"].astype(np.float32)
    arrays["ident"] = arrays["ident"].astype(np.int64)
    return CosmosBank(**arrays)


@lru_cache(maxsize=4)
def _cached_bank(uri: str | None, size: int) -> CosmosBank:
    return CosmosBank.load(uri) if uri else build_cosmos_bank(size=size)


class CosmosSource(SourceGenerator):
    """Real COSMOS galaxies from a :class:`CosmosBank` (built from the packaged catalogues unless
    ``bank_uri`` names a saved bank). Brightness r ~ U(mag_r); colours g-r, r-z are the galaxy's
    own HSC colours when known, else the one source-colour prior
    (:func:`dhs_gen.sources.priors.source_colours`). Each draw applies a random multiple of 90
    degrees rotation and flip (flux preserving)."""

    name = "cosmos"
    kind = "image"
    n_uniforms = 8

    def __init__(self, bank_uri: str | None = None, mag_r=(23.0, 26.0), g_r=SOURCE_G_MINUS_R, r_z=SOURCE_R_MINUS_Z,
                 beta_frac=(0.1, 0.4), size: int = 64):
        self.bank = _cached_bank(bank_uri, int(size))
        self.mag_r = tuple(float(v) for v in mag_r)
        self.g_r = tuple(float(v) for v in g_r)
        self.r_z = tuple(float(v) for v in r_z)
        self.beta_frac = tuple(float(v) for v in beta_frac)

    def params(self):
        return (
            ParamSpec("galaxy", "bank index", 0, len(self.bank) - 1, "uniform over the bank"),
            ParamSpec("mag_r", "AB mag (unlensed)", *self.mag_r, "uniform"),
            ParamSpec("g_r", "mag", *COLOUR_LIMITS, f"galaxy HSC colour, else normal{self.g_r} truncated"),
            ParamSpec("r_z", "mag", *COLOUR_LIMITS, f"galaxy HSC colour, else normal{self.r_z} truncated"),
            ParamSpec("orientation", "k x 90 deg (+ flip)", 0, 7, "uniform"),
            ParamSpec("beta_frac", "source offset / theta_E", *self.beta_frac, "area-weighted, uniform angle"),
        )

    def from_uniforms(self, u, theta_E=None, center_x=0.0, center_y=0.0):
        u = np.asarray(u, dtype=np.float64)
        bank = self.bank
        idx = np.minimum((u[:, 0] * len(bank)).astype(np.int64), len(bank) - 1)
        mag_r = uniform(u[:, 1], *self.mag_r)
        prior_g_r, prior_r_z = source_colours(u[:, 2], u[:, 3], self.g_r, self.r_z)
        own_g_r, own_r_z = bank.mag_g[idx] - bank.mag_r[idx], bank.mag_r[idx] - bank.mag_z[idx]
        g_r = np.clip(np.where(np.isfinite(own_g_r), own_g_r, prior_g_r), *COLOUR_LIMITS)
        r_z = np.clip(np.where(np.isfinite(own_r_z), own_r_z, prior_r_z), *COLOUR_LIMITS)
        orient = np.minimum((u[:, 4] * 8).astype(np.int64), 7)
        templates = np.empty((len(idx),) + bank.templates.shape[1:], dtype=np.float32)
        for i, (j, o) in enumerate(zip(idx, orient)):
            t = np.rot90(bank.templates[j], k=int(o % 4))
            templates[i] = t[:, ::-1] if o >= 4 else t
        cx, cy = source_positions(u[:, 5], u[:, 6], theta_E, self.beta_frac, center_x, center_y)
        batch = {"templates": templates, "template_pixel_scale": bank.pixel_scale[idx].astype(np.float64),
                 "center_x": cx, "center_y": cy, **colour_fluxes(mag_r, g_r, r_z), "mag_r": mag_r,
                 "g_r": g_r, "r_z": r_z, "cosmos_ident": bank.ident[idx], "hlr_arcsec": bank.hlr_arcsec[idx]}
        return dict(check_finite_batch(batch, self.name), kind=self.kind)


register_source("cosmos", CosmosSource)
