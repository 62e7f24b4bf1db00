"""render_lensed_image: agreement with lenstronomy INTERPOL, orientation, anti-aliasing, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from dhs_gen.lensing import LensingInputError, total_flux
from dhs_gen.lensing.image_source import _lit_pixels, block_sum, render_lensed_image
from dhs_gen.psf import kernel_centroid


def _asymmetric_templates(n, size=40, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.indices((size, size)) - (size - 1) / 2
    t = np.exp(-((xx - rng.normal(0, 3, (n, 1, 1))) ** 2 + (yy / 1.5) ** 2) / 50.0)
    return (t + 0.3 * (rng.random((n, size, size)) < 0.02)).astype(np.float32)


def _assert_matches_lenstronomy(*args, **kwargs):
    fast = render_lensed_image(*args, **kwargs)
    ref = render_lensed_image(*args, **kwargs, backend="lenstronomy")
    np.testing.assert_allclose(total_flux(fast), total_flux(ref), rtol=1e-4)
    rel = np.linalg.norm((fast - ref).reshape(len(fast) * 3, -1), axis=1) / \
        np.linalg.norm(ref.reshape(len(fast) * 3, -1), axis=1)
    assert rel.max() <= 1e-5


def test_fast_matches_lenstronomy_interpol(configs):
    lens, src, psf = configs(4, seed=9)
    fluxes = np.stack([src["flux_g"], src["flux_r"], src["flux_z"]], axis=1)
    _assert_matches_lenstronomy(lens, _asymmetric_templates(4), np.array([0.05, 0.07, 0.1, 0.066]), fluxes,
                                src["center_x"], src["center_y"], psf)


def test_sparse_footprint_and_general_lenses_match_lenstronomy(configs):
    """Templates whose light sits in two small blobs in opposite corners (most of the template box
    is 0, so most pixels are not supersampled), per-band templates (C = 3), supersampling 8, and
    the numpy ray-tracing path (EPL slope, multipoles) all agree with lenstronomy INTERPOL."""
    lens, src, psf = configs(3, seed=4)
    t = np.zeros((3, 3, 48, 48), dtype=np.float32)
    t[:, :, 2:6, 3:8] = 1.0
    t[:, :, 40:45, 41:44] = np.array([0.5, 1.0, 2.0], dtype=np.float32)[:, None, None]  # colour differs by blob
    fluxes = np.stack([src["flux_g"], src["flux_r"], src["flux_z"]], axis=1)
    args = (t, np.array([0.03, 0.05, 0.08]), fluxes, 0.3 * src["center_x"], 0.3 * src["center_y"], psf)
    _assert_matches_lenstronomy(lens, *args, supersampling=8)
    general = dict(lens, gamma=np.array([1.8, 2.0, 2.2]), a4=np.array([0.02, -0.01, 0.03]), phi4=np.array([0.3, 1., 2.]))
    _assert_matches_lenstronomy(general, *args)


def test_lit_pixels_cover_every_pixel_reading_the_template():
    """Under an affine lens map, a pixel whose interior reads the template (a single non-zero
    pixel) is always lit, and pixels whose corner box is beyond the margin are not: the sub-pixel
    selection loses no light and stays tight."""
    rng = np.random.default_rng(3)
    side, scale, margin = 16, 0.05, 0.5  # stamp pixels of 0.262", template pixels of 0.05", margin [template px]
    padded = np.zeros((1, 1, 14, 14), dtype=np.float32)
    padded[0, 0, 6, 9] = 1.0  # template pixel (5, 8) of a 12 x 12 template with its zero border
    frame = (np.array([0.1], np.float32), np.array([-0.2], np.float32), np.array([1 / scale], np.float32))
    matrix = np.array([[0.05, 0.5], [-0.6, 0.1]]) + rng.normal(0, 0.05, (2, 2))  # compresses ~0.262" -> ~0.15"
    shift = rng.normal(0, 0.1, 2)

    def lens_map(x, y):  # source-plane arcsec of image-plane arcsec
        return matrix[0, 0] * x + matrix[0, 1] * y + shift[0], matrix[1, 0] * x + matrix[1, 1] * y + shift[1]

    corners = (np.arange(side + 1) - side / 2) * 0.262
    bx, by = lens_map(*np.meshgrid(corners, corners))  # rows: y, columns: x
    lit = np.empty((1, side * side), dtype=np.bool_)
    _lit_pixels(padded, *frame, np.array([margin], np.float32), bx.astype(np.float32).reshape(1, -1),
                by.astype(np.float32).reshape(1, -1), lit)
    lit = lit.reshape(side, side)
    fine = (np.arange(32) + 0.5) / 32 - 0.5  # dense interior points of each pixel
    touched = np.zeros((side, side), dtype=bool)
    distance = np.zeros((side, side))
    for a in range(side):
        for b in range(side):
            x = ((b - (side - 1) / 2) + fine[None, :]) * 0.262 + 0 * fine[:, None]
            y = ((a - (side - 1) / 2) + fine[:, None]) * 0.262 + 0 * fine[None, :]
            sx, sy = lens_map(x, y)
            fx, fy = (sx - frame[0][0]) / scale + 6.5, (sy - frame[1][0]) / scale + 6.5  # padded-pixel units
            touched[a, b] = ((np.abs(fx - 9) < 1) & (np.abs(fy - 6) < 1)).any()
            distance[a, b] = max(np.abs(fx - 9).min(), np.abs(fy - 6).min())
    assert touched.sum() >= 2 and (lit | ~touched).all()
    assert not lit[distance > margin + 2].any() and (distance > margin + 2).sum() > 200


def test_block_sum_scales_rows_inside_a_zero_border():
    t = _asymmetric_templates(4, size=30)[:, None]
    rows, scale = np.array([3, 1]), np.array([[2.0], [0.5]])
    out, used = block_sum(t, 2, rows, scale, border=1)
    plain, _ = block_sum(t[rows], 2)
    assert used == 2 and out.shape == (2, 1, 17, 17)
    np.testing.assert_allclose(out[:, :, 1:-1, 1:-1], plain * scale[:, :, None, None].astype(np.float32), rtol=1e-6)
    assert not out[:, :, [0, -1]].any() and not out[:, :, :, [0, -1]].any()


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
    for value in (np.nan, np.inf, -np.inf):
        bad[1, 2, 2] = value
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


def test_per_row_supersampling_equals_separate_calls(configs):
    lens, src, psf = configs(4, seed=6)
    fluxes = np.stack([src["flux_g"], src["flux_r"], src["flux_z"]], axis=1)
    args = (_asymmetric_templates(4), np.array([0.03, 0.05, 0.03, 0.1]), fluxes, src["center_x"], src["center_y"])
    per_row = np.array([8, 4, 4, 8])
    mixed = render_lensed_image(lens, *args, psf, supersampling=per_row)
    for s in (4, 8):
        alone = render_lensed_image(lens, *args, psf, supersampling=s)
        np.testing.assert_array_equal(mixed[per_row == s], alone[per_row == s])
    with pytest.raises(LensingInputError, match=r"one per row \(4,\)"):
        render_lensed_image(lens, *args, psf, supersampling=per_row[:3])
    with pytest.raises(LensingInputError, match="supersampling must be an integer >= 1"):
        render_lensed_image(lens, *args, psf, supersampling=np.array([4, 0, 4, 4]))
