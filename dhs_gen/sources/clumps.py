"""The "sersic_clumps" source (Gen7): a Sérsic disk plus bluer star-forming clumps, as templates.

Per row: a disk (Sérsic n ~ U(0.5, 1.5), R_e, q, colours from the one source-colour prior
(:func:`dhs_gen.sources.priors.source_colours`), r ~ U(23, 26))
and 1-5 Gaussian clumps (sigma ~ U(0.03, 0.08)", i.e. ~0.3-0.7 kpc at z ~ 1-2) placed inside the
disk's half-light ellipse x 1.5, carrying a fraction f ~ U(0.1, 0.4) of the r-band flux, split
by exponential weights, and bluer than the disk by dc ~ U(0.1, 0.4) mag in g-r (dc/2 in r-z).
Rendered on a 64 x 64 template (8 R_e across): the disk sampled on 3x3 sub-pixels with the
fast engine's lenstronomy-convention Sérsic, the clumps integrated exactly per pixel (erf).
Templates are flux per pixel, unit sum per band: (n, 3, 64, 64) float32.
"""
from __future__ import annotations

import numpy as np

from dhs_gen.lensing import fast
from dhs_gen.sources.priors import (
    COLOUR_LIMITS,
    SOURCE_G_MINUS_R,
    SOURCE_R_MINUS_Z,
    check_finite_batch,
    ellipticity_from_q_phi,
    source_colours,
    source_positions,
    uniform,
)
from dhs_gen.sources.registry import ParamSpec, SourceGenerator, register_source
from dhs_gen.units import mag_to_nmgy

MAX_CLUMPS = 5
TEMPLATE_SIZE = 64
FIELD_IN_RE = 8.0
_BASE = 12  # uniforms before the per-clump ones


class SersicClumpsSource(SourceGenerator):
    """Gen7 hybrid: Sérsic disk + star-forming clumps (image kind, per-band templates)."""

    name = "sersic_clumps"
    kind = "image"
    n_uniforms = _BASE + 4 * MAX_CLUMPS

    def __init__(self, mag_r=(23.0, 26.0), r_sersic=(0.15, 0.5), n_sersic=(0.5, 1.5), q=(0.3, 1.0),
                 g_r=SOURCE_G_MINUS_R, r_z=SOURCE_R_MINUS_Z, clump_fraction=(0.1, 0.4), clump_sigma=(0.03, 0.08),
                 clump_bluer=(0.1, 0.4), beta_frac=(0.1, 0.4)):
        self.mag_r, self.r_sersic, self.n_sersic, self.q = mag_r, r_sersic, n_sersic, q
        self.g_r, self.r_z, self.beta_frac = g_r, r_z, beta_frac
        self.clump_fraction, self.clump_sigma, self.clump_bluer = clump_fraction, clump_sigma, clump_bluer

    def params(self):
        return (
            ParamSpec("mag_r", "AB mag (unlensed, disk + clumps)", *self.mag_r, "uniform"),
            ParamSpec("R_sersic", "arcsec (disk)", *self.r_sersic, "uniform"),
            ParamSpec("n_sersic", "dimensionless (disk)", *self.n_sersic, "uniform"),
            ParamSpec("q", "axis ratio (disk)", *self.q, "uniform"),
            ParamSpec("g_r", "mag (disk)", *COLOUR_LIMITS, f"normal{tuple(self.g_r)} truncated"),
            ParamSpec("r_z", "mag (disk)", *COLOUR_LIMITS, f"normal{tuple(self.r_z)} truncated"),
            ParamSpec("n_clumps", "count", 1, MAX_CLUMPS, "uniform integer"),
            ParamSpec("clump_fraction", "fraction of r flux", *self.clump_fraction, "uniform"),
            ParamSpec("clump_sigma", "arcsec (Gaussian sigma)", *self.clump_sigma, "uniform"),
            ParamSpec("clump_bluer", "mag bluer in g-r than the disk", *self.clump_bluer, "uniform"),
            ParamSpec("beta_frac", "source offset / theta_E", *self.beta_frac, "area-weighted, uniform angle"),
        )

    def from_uniforms(self, u, theta_E=None, center_x=0.0, center_y=0.0):
        u = np.asarray(u, dtype=np.float64)
        n = len(u)
        mag_r = uniform(u[:, 0], *self.mag_r)
        r_e = uniform(u[:, 1], *self.r_sersic)
        n_s = uniform(u[:, 2], *self.n_sersic)
        q = uniform(u[:, 3], *self.q)
        phi = np.pi * u[:, 4]
        g_r, r_z = source_colours(u[:, 5], u[:, 6], self.g_r, self.r_z)
        n_clumps = 1 + np.minimum((u[:, 7] * MAX_CLUMPS).astype(np.int64), MAX_CLUMPS - 1)
        frac = uniform(u[:, 8], *self.clump_fraction)
        bluer = uniform(u[:, 9], *self.clump_bluer)
        scale = FIELD_IN_RE * r_e / TEMPLATE_SIZE  # arcsec per template pixel
        e1, e2 = ellipticity_from_q_phi(q, phi)
        disk = self._disk(r_e, n_s, e1, e2, scale)
        cu = u[:, _BASE:].reshape(n, MAX_CLUMPS, 4)
        # clump centres uniform in area inside 1.5 x the half-light ellipse (major axis a = R_e / sqrt(q))
        rad = 1.5 * np.sqrt(cu[..., 0])
        ang = 2 * np.pi * cu[..., 1]
        a, b = (r_e / np.sqrt(q))[:, None], (r_e * np.sqrt(q))[:, None]
        xr, yr = rad * a * np.cos(ang), rad * b * np.sin(ang)
        cp, sp = np.cos(phi)[:, None], np.sin(phi)[:, None]
        cx_k, cy_k = xr * cp - yr * sp, xr * sp + yr * cp
        sigma = uniform(cu[..., 2], *self.clump_sigma)
        weight = -np.log(np.clip(cu[..., 3], 1e-12, 1.0)) * (np.arange(MAX_CLUMPS)[None] < n_clumps[:, None])
        weight /= weight.sum(axis=1, keepdims=True)
        clumps = self._clumps(cx_k, cy_k, sigma, weight, scale)
        # per-band disk and clump fluxes [nmgy]
        f_r = mag_to_nmgy(mag_r)
        disk_flux = ((1 - frac) * f_r)[:, None] * np.stack([10 ** (-0.4 * g_r), np.ones(n), 10 ** (0.4 * r_z)], axis=1)
        gr_c, rz_c = g_r - bluer, r_z - bluer / 2
        clump_flux = (frac * f_r)[:, None] * np.stack([10 ** (-0.4 * gr_c), np.ones(n), 10 ** (0.4 * rz_c)], axis=1)
        total = disk_flux + clump_flux
        templates = (disk[:, None] * (disk_flux / total)[:, :, None, None]
                     + clumps[:, None] * (clump_flux / total)[:, :, None, None]).astype(np.float32)
        cx, cy = source_positions(u[:, 10], u[:, 11], theta_E, self.beta_frac, center_x, center_y)
        batch = {"templates": templates, "template_pixel_scale": scale, "center_x": cx, "center_y": cy,
                 "flux_g": total[:, 0], "flux_r": total[:, 1], "flux_z": total[:, 2], "mag_r": mag_r,
                 "R_sersic": r_e, "n_clumps": n_clumps.astype(np.float64), "clump_fraction": frac}
        return dict(check_finite_batch(batch, self.name), kind=self.kind)

    @staticmethod
    def _disk(r_e, n_s, e1, e2, scale):
        """(n, S, S) unit-sum Sérsic disk templates sampled on 3x3 sub-pixels."""
        n = len(r_e)
        x, y = fast.subpixel_grid(TEMPLATE_SIZE, 1.0, 3)
        s = scale[:, None].astype(np.float32)
        src = {"R_sersic": r_e, "n_sersic": n_s, "e1": e1, "e2": e2, "center_x": np.zeros(n), "center_y": np.zeros(n)}
        prof = fast.sersic_profile(x[None] * s, y[None] * s, src)
        disk = fast.bin_pixels(prof, TEMPLATE_SIZE, 3).astype(np.float64)
        return disk / disk.sum(axis=(1, 2), keepdims=True)

    @staticmethod
    def _clumps(cx, cy, sigma, weight, scale):
        """(n, S, S) unit-sum sums of pixel-integrated Gaussians (exact erf integrals)."""
        from scipy.special import erf

        edges = (np.arange(TEMPLATE_SIZE + 1) - TEMPLATE_SIZE / 2.0)[None, None, :] * scale[:, None, None]
        s2 = (np.sqrt(2.0) * sigma)[..., None]
        px = np.diff(0.5 * erf((edges - cx[..., None]) / s2), axis=-1)  # (n, K, S)
        py = np.diff(0.5 * erf((edges - cy[..., None]) / s2), axis=-1)
        img = np.einsum("nk,nky,nkx->nyx", weight, py, px)
        return img / img.sum(axis=(1, 2), keepdims=True)


register_source("sersic_clumps", SersicClumpsSource)
