"""Renderers write into a caller's array (``out=``) with the same pixels as a fresh render."""
import numpy as np
import pytest

from dhs_gen.lensing import LensingInputError, render_lensed_sersic
from dhs_gen.lensing.image_source import render_lensed_image

LENS = {"theta_E": np.array([1.2, 0.8]), "e1": np.array([0.1, -0.05]), "e2": np.array([0.0, 0.08]),
        "center_x": np.array([0.01, -0.03]), "center_y": np.array([0.0, 0.02]),
        "gamma1": np.array([0.02, 0.0]), "gamma2": np.array([-0.01, 0.03])}
SOURCE = {"R_sersic": np.array([0.3, 0.2]), "n_sersic": np.array([1.0, 2.5]), "e1": np.array([0.1, 0.0]),
          "e2": np.array([0.05, -0.1]), "center_x": np.array([0.1, -0.05]), "center_y": np.array([0.05, 0.1]),
          "flux_g": np.array([1.0, 2.0]), "flux_r": np.array([2.0, 3.0]), "flux_z": np.array([3.0, 4.0])}
PSF = np.array([[1.3, 1.2, 1.1], [1.5, 1.4, 1.3]])


def test_sersic_render_into_out_equals_a_fresh_render():
    fresh = render_lensed_sersic(LENS, SOURCE, PSF, stamp_size=32)
    out = np.full((2, 3, 32, 32), np.nan, np.float32)
    assert render_lensed_sersic(LENS, SOURCE, PSF, stamp_size=32, out=out) is out
    np.testing.assert_array_equal(out, fresh)


def test_image_render_into_out_equals_a_fresh_render():
    templates = np.random.default_rng(1).random((2, 24, 24)).astype(np.float32)
    args = (LENS, templates, np.array([0.03, 0.03]), np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 2.0]]),
            SOURCE["center_x"], SOURCE["center_y"], PSF)
    fresh = render_lensed_image(*args, stamp_size=32)
    out = np.full((2, 3, 32, 32), np.nan, np.float32)
    assert render_lensed_image(*args, stamp_size=32, out=out) is out
    np.testing.assert_array_equal(out, fresh)


@pytest.mark.parametrize("bad", [np.zeros((2, 3, 32, 32)), np.zeros((1, 3, 32, 32), np.float32),
                                 np.zeros((2, 3, 32, 64), np.float32)[..., ::2]])
def test_an_out_array_of_the_wrong_kind_is_refused(bad):
    with pytest.raises(LensingInputError, match="out must be"):
        render_lensed_sersic(LENS, SOURCE, PSF, stamp_size=32, out=bad)
