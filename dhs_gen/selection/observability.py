"""The observability map: Einstein radius <-> velocity dispersion and enclosed mass.

For a singular isothermal sphere, and an SIE in the intermediate-axis normalisation used by
SLACS (Bolton et al. 2008) and lenstronomy,

    theta_E = 4 pi (sigma_v / c)^2 D_ls / D_s,       M(<theta_E) = (c^2 / 4G) (D_l D_s / D_ls) theta_E^2,

with angular-diameter distances from an astropy cosmology (Planck18 by default). Units:
theta_E in arcsec, sigma_v in km/s, masses in solar masses. For a flat cosmology the distances
come from a cubic spline of the comoving distance D_C(z) (D_A = D_C / (1+z), D_ls = (D_C(z_s) -
D_C(z_l)) / (1+z_s); relative error < 1e-9), so a whole injection set converts at once.

Each injection's own lens redshift is its host's redshift (phase 4a): :func:`injection_observables`
gives sigma_v and M(<theta_E) per row from (theta_E, host z_l, z_s), and
:func:`observability_by_bin` their medians per (theta_E, z_l) bin — the map of what a
C(theta_E, z_l) cell means physically, from the hosts that fill it.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa

ARCSEC_RAD = np.pi / (180.0 * 3600.0)
_SPLINE_DZ = 0.0025


def get_cosmology(name: str = "Planck18"):
    """An astropy realisation by name (Planck18, Planck15, WMAP9, ...)."""
    from astropy import cosmology

    if name not in cosmology.realizations.available:
        raise ValueError(f"unknown cosmology {name!r}; known: {sorted(cosmology.realizations.available)}")
    return getattr(cosmology, name)


@lru_cache(maxsize=16)
def _comoving_spline(cosmology: str, z_max: int):
    """Cubic spline of the comoving distance [Mpc] on z in [0, z_max] (step 0.0025)."""
    from scipy.interpolate import CubicSpline

    z = np.linspace(0.0, float(z_max), int(round(z_max / _SPLINE_DZ)) + 1)
    return CubicSpline(z, get_cosmology(cosmology).comoving_distance(z).to_value("Mpc"))


def distance_ratio(z_l, z_s, cosmology: str = "Planck18") -> tuple[np.ndarray, np.ndarray]:
    """(D_ls / D_s, D_l D_s / D_ls [Mpc]) per pair; NaN where z_s <= z_l."""
    cosmo = get_cosmology(cosmology)
    z_l, z_s = np.broadcast_arrays(np.asarray(z_l, dtype=np.float64), np.asarray(z_s, dtype=np.float64))
    ok = (z_s > z_l) & (z_l > 0) & np.isfinite(z_s)
    zl, zs = np.where(ok, z_l, 0.1), np.where(ok, z_s, 1.0)
    if cosmo.Ok0 == 0:
        d_c = _comoving_spline(cosmology, max(5, int(np.ceil(zs.max(initial=1.0)))))
        c_l, c_s = d_c(zl), d_c(zs)
        d_l, d_s, d_ls = c_l / (1.0 + zl), c_s / (1.0 + zs), (c_s - c_l) / (1.0 + zs)
    else:
        d_l = cosmo.angular_diameter_distance(zl).to_value("Mpc")
        d_s = cosmo.angular_diameter_distance(zs).to_value("Mpc")
        d_ls = cosmo.angular_diameter_distance_z1z2(zl, zs).to_value("Mpc")
    return np.where(ok, d_ls / d_s, np.nan), np.where(ok, d_l * d_s / d_ls, np.nan)


def sigma_from_theta_e(theta_e_arcsec, z_l, z_s, cosmology: str = "Planck18") -> np.ndarray:
    """SIS/SIE velocity dispersion [km/s] for an Einstein radius [arcsec]."""
    from astropy.constants import c

    ratio, _ = distance_ratio(z_l, z_s, cosmology)
    theta = np.asarray(theta_e_arcsec, dtype=np.float64) * ARCSEC_RAD
    return c.to_value("km/s") * np.sqrt(theta / (4.0 * np.pi * ratio))


def theta_e_from_sigma(sigma_kms, z_l, z_s, cosmology: str = "Planck18") -> np.ndarray:
    """SIS/SIE Einstein radius [arcsec] for a velocity dispersion [km/s]."""
    from astropy.constants import c

    ratio, _ = distance_ratio(z_l, z_s, cosmology)
    return 4.0 * np.pi * (np.asarray(sigma_kms, dtype=np.float64) / c.to_value("km/s")) ** 2 * ratio / ARCSEC_RAD


def mass_within_theta_e(theta_e_arcsec, z_l, z_s, cosmology: str = "Planck18") -> np.ndarray:
    """Projected mass inside the Einstein radius [M_sun] (independent of the profile)."""
    from astropy import units as u
    from astropy.constants import G, c

    _, dd = distance_ratio(z_l, z_s, cosmology)
    theta = np.asarray(theta_e_arcsec, dtype=np.float64) * ARCSEC_RAD
    factor = (c**2 / (4.0 * G) * u.Mpc).to_value("Msun")
    return factor * dd * theta**2


def observability_table(theta_e_arcsec, z_l, z_s: float, cosmology: str = "Planck18") -> pa.Table:
    """sigma_v [km/s] and log10 M(<theta_E) [M_sun] over the (theta_E, z_l) grid at fixed z_s."""
    t, z = np.meshgrid(np.asarray(theta_e_arcsec, dtype=np.float64), np.asarray(z_l, dtype=np.float64),
                       indexing="ij")
    t, z = t.ravel(), z.ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        return pa.table({
            "theta_e_arcsec": t, "z_l": z, "z_s": np.full(t.size, float(z_s)),
            "sigma_v_kms": sigma_from_theta_e(t, z, z_s, cosmology),
            "log10_mass_msun": np.log10(mass_within_theta_e(t, z, z_s, cosmology)),
            "cosmology": np.full(t.size, cosmology),
        })


def injection_observables(theta_e_arcsec, z_l, z_s, cosmology: str = "Planck18") -> dict[str, np.ndarray]:
    """Per injection: ``sigma_v_kms`` [km/s] and ``log10_mass_msun`` [M_sun] from its theta_E [arcsec],
    its own lens redshift (the host's) and source redshift; NaN where z_s <= z_l or z_l is missing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"sigma_v_kms": sigma_from_theta_e(theta_e_arcsec, z_l, z_s, cosmology),
                "log10_mass_msun": np.log10(mass_within_theta_e(theta_e_arcsec, z_l, z_s, cosmology))}


def observability_by_bin(injections: pa.Table, theta_edges, z_l_edges, cosmology: str = "Planck18") -> pa.Table:
    """Median sigma_v [km/s], log10 M(<theta_E) [M_sun] and host z_l per (theta_E, z_l) bin of an
    injection set (columns ``theta_e_arcsec``, ``z_l`` = the host's redshift, ``z_s``); bins are
    half-open [lo, hi), empty bins are left out."""
    theta, z_l, z_s = (injections[c].cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
                       for c in ("theta_e_arcsec", "z_l", "z_s"))
    obs = injection_observables(theta, z_l, z_s, cosmology)
    t_edges, z_edges = np.asarray(theta_edges, dtype=np.float64), np.asarray(z_l_edges, dtype=np.float64)
    i_t = np.searchsorted(t_edges, theta, side="right") - 1
    i_z = np.searchsorted(z_edges, np.nan_to_num(z_l, nan=-1.0), side="right") - 1
    ok = (i_t >= 0) & (i_t < len(t_edges) - 1) & (i_z >= 0) & (i_z < len(z_edges) - 1)
    rows = []
    for a, b in sorted(set(zip(i_t[ok].tolist(), i_z[ok].tolist()))):
        sel = ok & (i_t == a) & (i_z == b)
        rows.append({"theta_lo": t_edges[a], "theta_hi": t_edges[a + 1], "z_l_lo": z_edges[b], "z_l_hi": z_edges[b + 1],
                     "n": int(sel.sum()), "z_l_median": float(np.median(z_l[sel])),
                     "sigma_v_kms_median": float(np.nanmedian(obs["sigma_v_kms"][sel])),
                     "log10_mass_msun_median": float(np.nanmedian(obs["log10_mass_msun"][sel]))})
    names = ["theta_lo", "theta_hi", "z_l_lo", "z_l_hi", "n", "z_l_median", "sigma_v_kms_median",
             "log10_mass_msun_median"]
    return pa.Table.from_pylist(rows) if rows else pa.table({n: pa.array([], pa.float64()) for n in names})


def read_slacs(path=None) -> dict[str, np.ndarray]:
    """The packaged SLACS table (Auger et al. 2009/2010) as columns: name, zd, zs, theta_Ein
    [arcsec], veldisp and veldisp_err [km/s] (unit suffixes dropped from the names), ..."""
    import pandas as pd

    from dhs_gen.data_files import data_path

    path = path or data_path("slacs", "SLACS_table.cat")
    with open(path) as fh:
        header = [h.split("(")[0] for h in fh.readline().lstrip("#").split()]
    df = pd.read_csv(path, sep=r"\s+", comment="#", names=header)
    return {name: df[name].to_numpy() for name in header}


def slacs_check(cosmology: str = "Planck18", path=None) -> dict:
    """sigma_SIE from (theta_Ein, z_d, z_s) against the measured SLACS stellar dispersions.

    Returns the number of lenses, the median and mean of f = sigma_SIE / sigma_obs, its rms
    scatter, the scatter expected from the measurement errors alone, and the chi^2/dof of
    f = median given those errors.
    """
    t = read_slacs(path)
    sigma_sie = sigma_from_theta_e(t["theta_Ein"], t["zd"], t["zs"], cosmology)
    obs, err = t["veldisp"].astype(np.float64), t["veldisp_err"].astype(np.float64)
    ok = np.isfinite(sigma_sie) & (obs > 0)
    f, f_err = sigma_sie[ok] / obs[ok], sigma_sie[ok] * err[ok] / obs[ok] ** 2
    med = float(np.median(f))
    return {"cosmology": cosmology, "n": int(ok.sum()), "median_ratio": med, "mean_ratio": float(np.mean(f)),
            "rms_ratio": float(np.std(f, ddof=1)), "rms_expected_from_errors": float(np.sqrt(np.mean(f_err**2))),
            "chi2_dof": float(np.sum(((f - med) / f_err) ** 2) / (ok.sum() - 1)),
            "name": t["name"][ok].tolist(), "sigma_sie_kms": sigma_sie[ok].tolist(),
            "sigma_obs_kms": obs[ok].tolist(), "sigma_obs_err_kms": err[ok].tolist()}
