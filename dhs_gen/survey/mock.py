"""MockDR10: the embedded survey that behaves like DESI Legacy Surveys DR10 g/r/z cutouts.

A cutout at (ra, dec) shows the mock sky (:mod:`dhs_gen.survey.sky`: generated galaxies and
stars, the real DR10 LRGs, and the known lenses with their lensed arcs, :mod:`dhs_gen.survey.lenses`), under the real DR10 conditions of that brick
(:mod:`dhs_gen.survey.conditions`), with noise derived from the 5-sigma depth, and the defects
real cutouts have. If no catalogued object sits within half a pixel of the requested position a
host galaxy is placed there, copied (fluxes, type) from a real DR10 LRG chosen by the position.

Noise (see docs/survey.md): a 5-sigma point-source depth m5 means a PSF-flux error
sigma_flux = 10^((22.5 - m5)/2.5) / 5 nmgy. With white pixel noise sigma_pix the optimal
(PSF-weighted) flux of a point source has variance sigma_pix^2 * NEA, NEA = 1 / sum(P^2) the
noise-equivalent area of the pixelised PSF P, so sigma_pix = sigma_flux / sqrt(NEA). For a
Gaussian PSF NEA = 4 pi sigma_psf^2, which gives :func:`dhs_gen.units.pixel_sigma_from_depth`;
the mock's kernels have NEA-FWHM = psfsize (legacypipe's convention, :mod:`dhs_gen.psf`), so that
formula holds for them too; the mock uses the exact NEA of the kernel it draws with, so a PSF-fit
depth measured on mock pixels returns m5.
Real coadds resample exposures, which correlates neighbouring pixels (lag-1 correlation ~0.33 in
the packaged DR10 cutouts); ``correlated_noise`` smooths the white field with the unit-sum
kernel [a, 1, a] x [a, 1, a] / (1 + 2a)^2, a = 0.175, which keeps the large-scale noise power
(hence the PSF depth) and lowers the per-pixel sigma by the factor (1 + 2a^2) / (1 + 2a)^2 = 0.58.
Bright sources add Poisson noise at ``gain_e_per_nmgy`` x nobs electrons per nanomaggy.

Deterministic: the same (seed, ra, dec, size) gives bit-identical pixels.
"""
from __future__ import annotations

import numpy as np

from dhs_gen import BANDS, PIXEL_SCALE_ARCSEC
from dhs_gen.survey.base import Cutout, CutoutProvider, SurveyError
from dhs_gen.survey.bricks import brickname_of, cells_in_box
from dhs_gen.survey.conditions import conditions_at
from dhs_gen.survey.hashing import combine, position_key, seed_key, unit
from dhs_gen.survey.hosts import _lrg_frame
from dhs_gen.survey.lenses import LENSCAT, THETA_E_RANGE, arc_stamps, lens_systems, lenses_in_cells
from dhs_gen.survey.psfmodels import MoffatPSF, PSFExPSF
from dhs_gen.survey.render import render_scene, sky_to_pixel
from dhs_gen.survey.sky import (
    GALAXY_DENSITY,
    POP_HOST,
    POPULATIONS,
    PSF,
    SATELLITES_MAX,
    STAR_DENSITY,
    TYPES,
    concat_objects,
    lrg_core,
    satellites,
    sky_objects,
)
from dhs_gen.units import point_source_sigma_nmgy

NOISE_KERNEL_A = 0.175
DEFAULT_DEFECT_RATES = {"nan_patch": 0.005, "satellite_trail": 0.005, "missing_band": 0.002}
_HALO_RADIUS_ARCSEC = 60.0  # stars brighter than r ~ 16.3 (300 nmgy) are gathered this far out
_MARGIN_ARCSEC = 20.0


def correlate_noise(white: np.ndarray, a: float = NOISE_KERNEL_A) -> np.ndarray:
    """Smooth (C, H, W) white noise with the separable unit-sum kernel [a, 1, a] / (1 + 2a)."""
    out = white.copy()
    out[..., 1:, :] += a * white[..., :-1, :]
    out[..., :-1, :] += a * white[..., 1:, :]
    tmp = out.copy()
    out[..., :, 1:] += a * tmp[..., :, :-1]
    out[..., :, :-1] += a * tmp[..., :, 1:]
    return out / (1.0 + 2.0 * a) ** 2


def correlated_sigma_factor(a: float = NOISE_KERNEL_A) -> float:
    """Per-pixel sigma of :func:`correlate_noise` output per unit white sigma (interior pixels)."""
    return float((1.0 + 2.0 * a * a) / (1.0 + 2.0 * a) ** 2)


class MockDR10(CutoutProvider):
    """The mock DR10 survey. ``psf_model`` "moffat" (from psfsize) or "psfex" (real DECam PSFEx
    shapes rescaled to psfsize); densities per deg^2; ``defect_rates`` fractions of cutouts with
    a NaN patch, a satellite trail, a band without coverage; ``include_lenses`` paints the known
    lenses of ``lens_table`` (None: lenscat) into the sky (:mod:`dhs_gen.survey.lenses`),
    ``lens_arcs=False`` keeps their lens galaxies but leaves out the lensed arcs."""

    kind = "mock"

    def __init__(self, seed=0, psf_model: str = "moffat", moffat_beta: float = 3.5, kernel_size: int = 33,
                 galaxy_density: float = GALAXY_DENSITY, star_density: float = STAR_DENSITY,
                 noise: bool = True, correlated_noise: bool = True, gain_e_per_nmgy: float = 3000.0,
                 defect_rates: dict | None = None, saturation_nmgy: float = 800.0, include_lrgs: bool = True,
                 add_host: bool = True, include_lenses: bool = True, lens_table: str | None = None,
                 lens_arcs: bool = True):
        if psf_model not in ("moffat", "psfex"):
            raise ValueError(f"psf_model must be 'moffat' or 'psfex', got {psf_model!r}")
        rates = dict(DEFAULT_DEFECT_RATES)
        unknown = set(defect_rates or {}) - set(rates)
        if unknown:
            raise ValueError(f"unknown defect kinds {sorted(unknown)}; known: {sorted(rates)}")
        rates.update(defect_rates or {})
        self.seed = seed
        self.psf_model = psf_model
        self.moffat_beta = moffat_beta
        self.kernel_size = kernel_size
        self.galaxy_density = galaxy_density
        self.star_density = star_density
        self.noise = noise
        self.correlated_noise = correlated_noise
        self.gain_e_per_nmgy = gain_e_per_nmgy
        self.defect_rates = rates
        self.saturation_nmgy = saturation_nmgy
        self.include_lrgs = include_lrgs
        self.add_host = add_host
        self.include_lenses = include_lenses
        self.lens_table = lens_table
        self.lens_arcs = lens_arcs
        self.lenses = (lens_table or LENSCAT) if include_lenses else None
        self._seed_key = seed_key(seed)

    # ---------------------------------------------------------------- sky and conditions
    def conditions(self, ra, dec) -> dict:
        """Conditions at positions (see :func:`dhs_gen.survey.conditions.conditions_at`)."""
        return conditions_at(ra, dec, self.seed)

    def objects_near(self, ra: float, dec: float, half_arcsec: float) -> dict:
        """Sky objects (columns) in the square of half-side ``half_arcsec`` around (ra, dec)."""
        dra = half_arcsec / 3600.0 / max(np.cos(np.radians(dec)), 1e-3)
        ddec = half_arcsec / 3600.0
        iy, ix = cells_in_box(ra - dra, ra + dra, dec - ddec, dec + ddec)
        return sky_objects(iy, ix, self.seed, self.galaxy_density, self.star_density, self.include_lrgs,
                           lenses=self.lenses)

    def arcs_near(self, ra: float, dec: float, size: int) -> list:
        """Unconvolved arcs of the known lenses whose light can reach the cutout
        (:func:`dhs_gen.survey.lenses.arc_stamps`, pixel positions in this cutout)."""
        if not (self.lenses and self.lens_arcs):
            return []
        half = size * PIXEL_SCALE_ARCSEC / 2.0 + 2.0 * THETA_E_RANGE[1] + 3.0
        dra = half / 3600.0 / max(np.cos(np.radians(dec)), 1e-3)
        iy, ix = cells_in_box(ra - dra, ra + dra, dec - half / 3600.0, dec + half / 3600.0)
        index = lenses_in_cells(iy, ix, self.lenses)
        if not len(index):
            return []
        systems = lens_systems(index, self.seed, self.lenses)
        x, y = sky_to_pixel(systems["ra"], systems["dec"], ra, dec, size)
        return arc_stamps(systems, x, y, self.seed)

    def make_psf(self, fwhm_arcsec):
        """The per-band PSF object for FWHMs [arcsec]."""
        if self.psf_model == "psfex":
            return PSFExPSF(fwhm_arcsec, size=self.kernel_size)
        return MoffatPSF(fwhm_arcsec, beta=self.moffat_beta, size=self.kernel_size)

    def _host(self, ra: float, dec: float, pkey) -> dict:
        n = len(_lrg_frame())
        pick = int(min(unit(pkey, 7) * n, n - 1))
        host = lrg_core([pick], self.seed)[0]
        host.update(ra=np.array([ra]), dec=np.array([dec]), population=np.array([POP_HOST], np.int8),
                    objid=np.array([-1 - SATELLITES_MAX], np.int64))
        return concat_objects([host, satellites(host, np.array([pkey], dtype=np.uint64))])

    def scene_objects(self, ra: float, dec: float, size: int) -> tuple[dict, np.ndarray, np.ndarray]:
        """Objects that contribute light to the cutout and their (x, y) pixel positions."""
        half = size * PIXEL_SCALE_ARCSEC / 2.0 + _MARGIN_ARCSEC
        objs = self.objects_near(ra, dec, max(half, _HALO_RADIUS_ARCSEC))
        x, y = sky_to_pixel(objs["ra"], objs["dec"], ra, dec, size)
        c = size // 2
        lim = half / PIXEL_SCALE_ARCSEC
        keep = (np.abs(x - c) <= lim) & (np.abs(y - c) <= lim)
        keep |= (objs["type"] == PSF) & (objs["flux_r"] > 300.0)
        objs = {k: v[keep] for k, v in objs.items()}
        x, y = x[keep], y[keep]
        if self.add_host and not np.any((np.abs(x - c) < 0.5) & (np.abs(y - c) < 0.5)):
            pkey = combine(self._seed_key, position_key([ra], [dec]))[0]
            host = self._host(ra, dec, pkey)
            hx, hy = sky_to_pixel(host["ra"], host["dec"], ra, dec, size)
            objs = concat_objects([objs, host])
            x, y = np.append(x, hx), np.append(y, hy)
        return objs, x, y

    # ---------------------------------------------------------------- cutouts
    def get_cutout(self, ra: float, dec: float, size: int = 101, galaxy_id: str | None = None) -> Cutout:
        """The (3, size, size) float32 g/r/z cutout [nmgy/px] centred on (ra, dec) [deg]
        (``galaxy_id`` is accepted for interface uniformity; the sky is defined by position)."""
        ra, dec = float(ra), float(dec)
        if not (np.isfinite(ra) and np.isfinite(dec) and -90.0 <= dec <= 90.0):
            raise SurveyError("bad_position", f"ra={ra}, dec={dec}")
        if size < 3 or size % 2 == 0:
            raise SurveyError("bad_size", f"size must be odd and >= 3, got {size}")
        ra %= 360.0
        cond = self.conditions(ra, dec)
        fwhm = np.array([cond[f"psfsize_{b}"][0] for b in BANDS])
        mag5 = np.array([cond[f"psfdepth_{b}"][0] for b in BANDS])
        nobs = np.array([cond[f"nobs_{b}"][0] for b in BANDS], dtype=np.float64)
        psf = self.make_psf(fwhm)
        objs, x, y = self.scene_objects(ra, dec, size)
        arcs = self.arcs_near(ra, dec, size)
        scene = render_scene(objs, ra, dec, size, psf, arcs=arcs)
        pkey = combine(self._seed_key, position_key([ra], [dec]))[0]
        sigma = point_source_sigma_nmgy(mag5) * np.sqrt((psf.kernels.astype(np.float64) ** 2).sum(axis=(1, 2)))
        image = scene.copy()
        if self.noise:
            rng = np.random.default_rng(int(pkey))
            white = rng.standard_normal((3, size + 2, size + 2), dtype=np.float32)
            white = (correlate_noise(white) if self.correlated_noise else white)[:, 1:-1, 1:-1]
            var_src = np.clip(scene, 0.0, None) / np.float32(self.gain_e_per_nmgy) / nobs[:, None, None].astype(np.float32)
            shot = rng.standard_normal((3, size, size), dtype=np.float32) * np.sqrt(var_src)
            image += white * sigma[:, None, None].astype(np.float32) + shot
        defects = self._apply_defects(image, scene, objs, x, y, pkey, psf, sigma)
        missing = [BANDS[c] for c in range(3) if "missing_band" in defects and not np.any(image[c])]
        psf_out = np.where([b in missing for b in BANDS], np.nan, psf.fwhm_arcsec)
        depth_out = np.where([b in missing for b in BANDS], np.nan, mag5)
        centre = int(np.argmin((x - size // 2) ** 2 + (y - size // 2) ** 2)) if len(x) else None
        meta = {
            "provider": self.kind, "seed": self.seed, "psf_model": self.psf_model,
            "brickname": str(brickname_of(ra, dec)[0]), "in_real_brick": bool(cond["in_real_brick"][0]),
            "n_objects": int(len(x)), "defects": defects, "missing_bands": "".join(missing),
            "sigma_pix_white": [float(s) for s in sigma],
            "nobs": [int(n) for n in nobs], "ebv": float(cond["ebv"][0]),
            "request_url": self.describe(ra, dec, size),
        }
        central_arcs = [a for a in arcs if abs(a[0] - size // 2) <= 1 and abs(a[1] - size // 2) <= 1]
        if central_arcs:
            meta["lens"] = central_arcs[0][4]
        if centre is not None:
            meta.update(central_population=str(POPULATIONS[objs["population"][centre]]),
                        central_type=str(TYPES[objs["type"][centre]]),
                        central_objid=int(objs["objid"][centre]),
                        central_flux=[float(objs[f"flux_{b}"][centre]) for b in BANDS])
        return Cutout(image=image.astype(np.float32), bands=BANDS, psf_fwhm=psf_out, psfdepth=depth_out, meta=meta)

    def describe(self, ra: float, dec: float, size: int = 101) -> str:
        return f"mock://dr10?ra={ra:.8f}&dec={dec:.8f}&size={size}&seed={self.seed}&psf={self.psf_model}"

    def _apply_defects(self, image, scene, objs, x, y, pkey, psf, sigma) -> list:
        """Saturated bright-star cores (NaN + bleed columns), NaN patches, satellite trails, and
        missing band coverage (zeros, as the cutout service returns), in place."""
        size = image.shape[-1]
        defects = []
        sat = scene > self.saturation_nmgy
        if sat.any():
            defects.append("saturation")
            for i in np.flatnonzero((objs["type"] == PSF) & (objs["flux_r"] > 300.0)):
                xc, yc = int(round(x[i])), int(round(y[i]))
                if not (0 <= xc < size and 0 <= yc < size and sat[:, yc, xc].any()):
                    continue
                length = int(4 + 12 * np.log10(max(scene[:, yc, xc].max() / self.saturation_nmgy, 1.0)))
                sat[:, max(yc - length, 0):yc + length + 1, max(xc - 1, 0):xc + 2] = True
            image[sat] = np.nan
        u = [unit(pkey, 100 + i) for i in range(12)]
        if u[0] < self.defect_rates["nan_patch"]:
            h, w = int(3 + u[1] * 40), int(2 + u[2] * 12)
            r0, c0 = int(u[3] * (size - 1)), int(u[4] * (size - 1))
            image[:, r0:r0 + h, c0:c0 + w] = np.nan
            defects.append("nan_patch")
        if u[5] < self.defect_rates["satellite_trail"]:
            band = int(u[6] * 3)
            theta = np.pi * u[7]
            yy, xx = np.mgrid[0:size, 0:size]
            dist = (xx - u[8] * size) * np.sin(theta) - (yy - u[9] * size) * np.cos(theta)
            width = psf.fwhm_arcsec[band] / PIXEL_SCALE_ARCSEC / 2.3548
            image[band] += (2.0 + 6.0 * u[10]) * sigma[band] * np.exp(-0.5 * (dist / width) ** 2)
            defects.append("satellite_trail")
        if u[11] < self.defect_rates["missing_band"]:
            band = int(unit(pkey, 120) * 3)
            image[band] = 0.0
            defects.append("missing_band")
        return defects

    # ---------------------------------------------------------------- catalogue
    def catalog(self, n_rows: int, seed=None, **kwargs):
        """A Tractor/sweep-like catalogue of ``n_rows`` objects of this mock sky (pyarrow Table);
        see :func:`dhs_gen.survey.catalog.mock_catalog` for columns and options."""
        from dhs_gen.survey.catalog import mock_catalog

        return mock_catalog(n_rows, seed=self.seed if seed is None else seed, galaxy_density=self.galaxy_density,
                            star_density=self.star_density, include_lrgs=self.include_lrgs,
                            include_lenses=self.include_lenses, lens_table=self.lens_table, **kwargs)
