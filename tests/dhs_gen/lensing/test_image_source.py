"""render_lensed_image: agreement with lenstronomy INTERPOL, orientation, anti-aliasing, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from dhs_gen.lensing import LensingInputError, total_flux
from dhs_gen.lensing.image_source import block_sum, render_lensed_image
from dhs_gen.psf import kernel_centroid


def _asymmetric_templates(n, size=40, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.indices((size, size)) - (size - 1) / 2
    t = np.exp(-((xx - rng.normal(0, 3, (n, 1, 1))) ** 2 + (yy / 1.5) ** 2) / 50.0)
    return (t + 0.3 * (rng.random((n, size, size)) < 0.02)).astype(np.float32)


def test_fast_matches_lenstronomy_interpol(configs):
    lens, src, psf = configs(4, seed=9)
    fluxes = np.stack([src["flux_g"], src["flux_r"], src["flux_z"]], axis=1)
    args = (lens, _asymmetric_templates(4), np.array([0.05, 0.07, 0.1, 0.066]), fluxes, src["center_x"],
            src["center_y"], psf)
    fast = render_lensed_image(*args)
    ref = render_lensed_image(*args, backend="lenstronomy")
    np.testing.assert_allclose(total_flux(fast), total_flux(ref), rtol=1e-4)
    rel = np.linalg.norm((fast - ref).reshape(12, -1), axis=1) / np.linalg.norm(ref.reshape(12, -1), axis=1)
    assert rel.max() <= 1e-5


def test_template_orientation_follows_pixel_convention():
    # one bright template pixel right of and above (larger row) the centre lands there in the stamp
    t = np.zeros((1, 21, 21), dtype=np.float32)
    t[0, 10 + 5, 10 + 8] = 1.0  # row +5, col +8 template pixels of 0.262"
    zero = np.zeros(1)
    lens = dict(theta_E=np.full(1, 1e-4), e1=zero, e2=zero, center_x=zero, center_y=zero, gamma1=zero, gamma2=zero)
    img = render_lensed_image(lens, t, np.full(1, 0.262), np.ones((1, 3)), zero, zero, np.full((1, 3), 1.0),
                              stamp_size=33)
    row, col = kernel_centroid(img[0, 1])
    assert abs(row - (16 + 5)) < 0.05 and abs(col - (16 + 8)) < 0.05


def test_block_sum_conserves_flux_and_centre():
    t = _asymmetric_templates(3, size=64)[:, None]
    yy, xx = np.indices((64, 64)) - 31.5
    centred = np.exp(-(xx**2 + 0.5 * yy**2) / 40.0)[None, None].astype(np.float32)  # symmetric about the centre
    for factor in (2, 3, 5):
        out, used = block_sum(t, factor)
        np.testing.assert_allclose(out.sum(axis=(2, 3)), t.sum(axis=(2, 3)), rtol=1e-5)
        sym, _ = block_sum(centred, factor)
        row, col = kernel_centroid(sym[0, 0])
        assert abs(row - (sym.shape[-1] - 1) / 2) < 1e-4 and abs(col - (sym.shape[-1] - 1) / 2) < 1e-4


def test_bad_templates_raise():
    zero = np.zeros(2)
    lens = dict(theta_E=np.ones(2), e1=zero, e2=zero, center_x=zero, center_y=zero, gamma1=zero, gamma2=zero)
    good = np.ones((2, 8, 8), dtype=np.float32)
    psf = np.ones((2, 3))
    bad = good.copy()
    bad[1, 2, 2] = np.nan
    with pytest.raises(LensingInputError, match="non-finite pixels in row 1"):
        render_lensed_image(lens, bad, np.full(2, 0.05), np.ones((2, 3)), zero, zero, psf)
    with pytest.raises(LensingInputError, match="non-positive total in row 0"):
        render_lensed_image(lens, good * np.array([0, 1])[:, None, None], np.full(2, 0.05), np.ones((2, 3)), zero,
                            zero, psf)
    with pytest.raises(LensingInputError, match="square"):
        render_lensed_image(lens, np.ones((2, 8, 6)), np.full(2, 0.05), np.ones((2, 3)), zero, zero, psf)
    with pytest.raises(LensingInputError, match="template_pixel_scale row 1"):
        render_lensed_image(lens, good, np.array([0.05, 0.0]), np.ones((2, 3)), zero, zero, psf)
    with pytest.raises(LensingInputError, match="fluxes"):
        render_lensed_image(lens, good, np.full(2, 0.05), -np.ones((2, 3)), zero, zero, psf)


def test_image_render_does_not_depend_on_batching(configs):
    lens, src, psf = configs(5, seed=11)
    fluxes = np.stack([src["flux_g"], src["flux_r"], src["flux_z"]], axis=1)
    templates = _asymmetric_templates(5)
    scales = np.array([0.02, 0.05, 0.1, 0.03, 0.07])  # different anti-aliasing groups
    full = render_lensed_image(lens, templates, scales, fluxes, src["center_x"], src["center_y"], psf)
    for i in (0, 3, 4):
        one = render_lensed_image({k: v[i:i + 1] for k, v in lens.items()}, templates[i:i + 1], scales[i:i + 1],
                                  fluxes[i:i + 1], src["center_x"][i:i + 1], src["center_y"][i:i + 1], psf[i:i + 1])
        np.testing.assert_array_equal(one[0], full[i])
