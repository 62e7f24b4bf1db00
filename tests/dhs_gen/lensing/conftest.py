"""Random lens / source / PSF configurations drawn from the injection priors."""
from __future__ import annotations

import numpy as np
import pytest


def random_configs(n: int, seed: int = 0, flux_r: float = 1.0):
    """(lens, source, psf_fwhm) batches: theta_E 0.5-3", q_lens 0.5-1, shear N(0, 0.05),
    R_e 0.1-0.6", n 0.5-4, q_src 0.3-1, source inside the caustic region, FWHM 0.8-2.0"."""
    rng = np.random.default_rng(seed)

    def ellipticity(qmin):
        q = rng.uniform(qmin, 1.0, n)
        phi = rng.uniform(0, np.pi, n)
        e = (1 - q) / (1 + q)
        return e * np.cos(2 * phi), e * np.sin(2 * phi)

    le1, le2 = ellipticity(0.5)
    se1, se2 = ellipticity(0.3)
    theta_e = rng.uniform(0.5, 3.0, n)
    beta = theta_e * np.sqrt(rng.uniform(0.01, 0.16, n))
    ang = rng.uniform(0, 2 * np.pi, n)
    lens = dict(theta_E=theta_e, e1=le1, e2=le2, center_x=rng.normal(0, 0.05, n), center_y=rng.normal(0, 0.05, n),
                gamma1=rng.normal(0, 0.05, n), gamma2=rng.normal(0, 0.05, n))
    colour = rng.uniform(0.3, 3.0, (n, 2))
    source = dict(R_sersic=rng.uniform(0.1, 0.6, n), n_sersic=rng.uniform(0.5, 4.0, n), e1=se1, e2=se2,
                  center_x=beta * np.cos(ang), center_y=beta * np.sin(ang),
                  flux_g=flux_r / colour[:, 0], flux_r=np.full(n, flux_r), flux_z=flux_r * colour[:, 1])
    psf = rng.uniform(0.8, 2.0, (n, 3))
    return lens, source, psf


@pytest.fixture(scope="session")
def configs():
    """The :func:`random_configs` factory."""
    return random_configs
