"""Multipole amplitudes: arcsec in lenstronomy's convention, drawn relative to θ_E."""
from __future__ import annotations

import numpy as np
import pytest

from dhs_gen.lensing import render_lensed_sersic
from dhs_gen.lensing.fast import _multipole_deflection
from dhs_gen.lensing.params import LensingInputError, multipoles_from_fractions


def _convergence(m, a_m, phi_m, x, y, h=1e-4):
    """κ = ½ ∇·α of the m-th multipole at (x, y) [arcsec], by central differences."""
    def alpha(px, py):
        ax, ay = _multipole_deflection(m, np.array([a_m]), np.array([phi_m]), np.array([[px]]), np.array([[py]]),
                                       lambda v: np.asarray(v, dtype=np.float64).reshape(-1, 1))
        return float(ax[0, 0]), float(ay[0, 0])
    dax = (alpha(x + h, y)[0] - alpha(x - h, y)[0]) / (2 * h)
    day = (alpha(x, y + h)[1] - alpha(x, y - h)[1]) / (2 * h)
    return 0.5 * (dax + day)


@pytest.mark.parametrize("m", [3, 4])
def test_multipole_amplitude_is_in_arcsec(m):
    """κ_m = a_m / (2 r) cos(m (φ − φ_m)): at r = θ_E the fractional perturbation of the SIE's
    κ = θ_E / (2 r) is a_m / θ_E, whatever θ_E."""
    for theta_e in (0.8, 2.4):
        lens = multipoles_from_fractions([theta_e], **{f"a{m}_frac": [0.02], f"phi{m}": [0.3]})
        a_m = lens[f"a{m}"][0]
        assert a_m == pytest.approx(0.02 * theta_e)
        for phi in (0.3, 1.1, 2.0):
            x, y = theta_e * np.cos(phi), theta_e * np.sin(phi)
            kappa = _convergence(m, a_m, 0.3, x, y)
            sie = 0.5  # θ_E / (2 r) at r = θ_E
            assert kappa / sie == pytest.approx(0.02 * np.cos(m * (phi - 0.3)), abs=2e-4)


def test_fractional_multipoles_make_the_lens_scale_free():
    """Doubling every length (θ_E, source, PSF, pixel) with a_m = frac × θ_E gives the same image;
    a fixed a_m in arcsec does not."""
    def image(scale, a4):
        lens = {"theta_E": [1.2 * scale], "e1": [0.1], "e2": [-0.05], "center_x": [0.0], "center_y": [0.0],
                "gamma1": [0.02], "gamma2": [0.01], "a4": [a4], "phi4": [0.4], "a3": [0.0], "phi3": [0.0]}
        source = {"R_sersic": [0.2 * scale], "n_sersic": [1.0], "e1": [0.0], "e2": [0.1],
                  "center_x": [0.1 * scale], "center_y": [0.05 * scale], "flux_g": [1.0], "flux_r": [1.0], "flux_z": [1.0]}
        return render_lensed_sersic(lens, source, [[1.3 * scale] * 3], pixel_scale=0.262 * scale)[0]

    frac = 0.1
    one = image(1.0, multipoles_from_fractions([1.2], a4_frac=[frac], phi4=[0.4])["a4"][0])
    two = image(2.0, multipoles_from_fractions([2.4], a4_frac=[frac], phi4=[0.4])["a4"][0])
    np.testing.assert_allclose(two, one, atol=1e-4 * one.max())
    # the same amplitude in arcsec at twice the size is half the perturbation
    plain = image(2.0, 0.0)
    effect = np.linalg.norm(two - plain)
    assert effect > 0.01 * np.linalg.norm(plain)
    assert np.linalg.norm(image(2.0, frac * 1.2) - plain) / effect == pytest.approx(0.5, abs=0.1)


def test_multipole_fraction_needs_its_angle():
    with pytest.raises(LensingInputError, match="phi4"):
        multipoles_from_fractions([1.0], a4_frac=[0.01])
    assert multipoles_from_fractions([1.0, 2.0]) == {}
