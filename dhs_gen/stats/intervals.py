"""Binomial confidence intervals: the Wilson score interval, from ``astropy.stats``."""
from __future__ import annotations

import numpy as np
from astropy.stats import binom_conf_interval
from scipy.special import erf


def wilson_interval(k, n, z: float = 1.96):
    """Wilson score interval for ``k`` successes in ``n`` trials (vectorised, broadcasting).

    ``z`` is the normal quantile (1.96: 95%); computed by ``astropy.stats.binom_conf_interval``
    (``interval="wilson"``) at confidence level erf(z / sqrt 2). Returns (lower, upper) as float64
    arrays clipped to [0, 1]; NaN where ``n == 0`` (astropy refuses n = 0).
    """
    k, n = np.broadcast_arrays(np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64))
    lower = np.full(k.shape, np.nan)
    upper = np.full(k.shape, np.nan)
    filled = n > 0
    if np.any(filled):
        lo, hi = binom_conf_interval(k[filled], n[filled], confidence_level=float(erf(z / np.sqrt(2.0))),
                                     interval="wilson")
        lower[filled] = np.clip(lo, 0.0, 1.0)
        upper[filled] = np.clip(hi, 0.0, 1.0)
    return lower, upper
