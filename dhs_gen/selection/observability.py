"""The observability map: Einstein radius <-> velocity dispersion and enclosed mass.

For a singular isothermal sphere, and an SIE in the intermediate-axis normalisation used by
SLACS (Bolton et al. 2008) and lenstronomy,

    theta_E = 4 pi (sigma_v / c)^2 D_ls / D_s,       M(<theta_E) = (c^2 / 4G) (D_l D_s / D_ls) theta_E^2,

with angular-diameter distances from an astropy cosmology (Planck18 by default). Units:
theta_E in arcsec, sigma_v in km/s, masses in solar masses.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

ARCSEC_RAD = np.pi / (180.0 * 3600.0)


def get_cosmology(name: str = "Planck18"):
    """An astropy realisation by name (Planck18, Planck15, WMAP9, ...)."""
    from astropy import cosmology

    if name not in cosmology.realizations.available:
        raise ValueError(f"unknown cosmology {name!r}; known: {sorted(cosmology.realizations.available)}")
    return getattr(cosmology, name)


def distance_ratio(z_l, z_s, cosmology: str = "Planck18") -> tuple[np.ndarray, np.ndarray]:
    """(D_ls / D_s, D_l D_s / D_ls [Mpc]) per pair; NaN where z_s <= z_l."""
    cosmo = get_cosmology(cosmology)
    z_l, z_s = np.broadcast_arrays(np.asarray(z_l, dtype=np.float64), np.asarray(z_s, dtype=np.float64))
    ok = (z_s > z_l) & (z_l > 0)
    d_l = cosmo.angular_diameter_distance(np.where(ok, z_l, 0.1)).to_value("Mpc")
    d_s = cosmo.angular_diameter_distance(np.where(ok, z_s, 1.0)).to_value("Mpc")
    d_ls = cosmo.angular_diameter_distance_z1z2(np.where(ok, z_l, 0.1), np.where(ok, z_s, 1.0)).to_value("Mpc")
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
