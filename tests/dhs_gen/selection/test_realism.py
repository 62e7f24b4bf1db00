"""Realism probe: AUC ~ 0.5 for indistinguishable sets, ~1 for obviously fake injections."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dhs_gen.psf import convolve_same, moffat_kernel
from dhs_gen.selection.realism import (
    aperture_flux,
    brightness_match,
    pixel_features,
    probe_auc,
    realism_audit,
)

SIZE = 33


def _galaxies(n, rng, ring_sigma_pix=None):
    """Host-like blobs plus an Einstein ring; ring_sigma_pix sets its width (unresolved = sharp)."""
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    r = np.hypot(x, y)
    out = np.empty((n, 3, SIZE, SIZE), dtype=np.float32)
    kernel = moffat_kernel(4.5, size=15)
    for i in range(n):
        flux = 10 ** rng.uniform(0.5, 1.5)
        host = flux * np.exp(-r / rng.uniform(2, 4))
        ring = 0.3 * flux * np.exp(-0.5 * ((r - rng.uniform(4, 7)) / (ring_sigma_pix or 1.5)) ** 2)
        for b, colour in enumerate((0.6, 1.0, 1.3)):
            img = colour * host + (1.5 - colour) * ring
            out[i, b] = convolve_same(img.astype(np.float32), kernel) + rng.normal(0, 0.05, (SIZE, SIZE))
    return out


def test_features_and_matching_shapes():
    rng = np.random.default_rng(0)
    imgs = _galaxies(6, rng)
    f = pixel_features(imgs)
    assert f.shape[0] == 6 and np.all(np.isfinite(f))
    assert aperture_flux(imgs).shape == (6,)
    idx = brightness_match(np.array([1.0, 10.0, 3.0]), np.array([9.0, 1.1, 100.0, 2.9, 0.5]))
    assert idx.tolist() == [1, 0, 3] and len(set(idx)) == 3
    with pytest.raises(ValueError, match="needs >= 3"):
        brightness_match(np.ones(3), np.ones(2))


def test_same_distribution_gives_chance_auc():
    rng = np.random.default_rng(1)
    r = probe_auc(pixel_features(_galaxies(80, rng)), pixel_features(_galaxies(80, rng)), seed=3, n_boot=300)
    assert r["ci_lo"] < 0.5 < r["ci_hi"] and abs(r["auc"] - 0.5) < 0.15


def test_sharp_fake_rings_are_caught():
    rng = np.random.default_rng(2)
    real = _galaxies(60, rng, ring_sigma_pix=1.5)
    fake = _galaxies(120, rng, ring_sigma_pix=0.3)
    fake = fake + rng.normal(0, 0.2, fake.shape).astype(np.float32)  # too noisy as well
    out = realism_audit(real, fake, seed=4, n_boot=300)
    assert out["pixel_stats"]["auc"] > 0.9 and out["pixel_stats"]["ci_lo"] > 0.8
    assert out["pixel_stats"]["n_real"] == out["pixel_stats"]["n_injected"] == 60
    assert out["flux_match_median_dex"] < 0.05


def test_probe_is_reproducible():
    rng = np.random.default_rng(5)
    a, b = pixel_features(_galaxies(30, rng)), pixel_features(_galaxies(30, rng))
    assert probe_auc(a, b, seed=1, n_boot=100) == probe_auc(a, b, seed=1, n_boot=100)


def test_real_lens_sets_packaged_folder_with_catalogue_and_table(tmp_path):
    from astropy.io import fits

    from dhs_gen.io.stamps import encode_stamp
    from dhs_gen.selection.real_lenses import PACKAGED, PACKAGED_NAME, load_real_lenses
    from dhs_gen.storage import write_parquet

    packaged = load_real_lenses(PACKAGED)
    assert packaged.name == PACKAGED_NAME and len(packaged.images) == 6 and not packaged.failed
    assert all(im.shape == (3, 101, 101) and im.dtype == np.float32 for im in packaged.images)
    # a user's folder: two npz (legacy layout), one FITS cube, one broken file, a catalogue naming
    # three of them and one absent file; unlisted files are left out
    folder = tmp_path / "candidates"
    folder.mkdir()
    rng = np.random.default_rng(0)
    cube = rng.normal(0, 0.01, (3, 64, 64)).astype(np.float32)
    np.savez(folder / "a.npz", cutout=np.moveaxis(cube, 0, -1))
    np.savez(folder / "b.npz", cutout=np.moveaxis(cube + 1, 0, -1))
    fits.PrimaryHDU(cube).writeto(folder / "c.fits")
    (folder / "d.npz").write_bytes(b"not a cutout")
    (tmp_path / "cat.csv").write_text("name,ra,dec\na,1.0,2.0\nc,3.0,4.0\nd,5.0,6.0\nzz,7.0,8.0\n")
    real = load_real_lenses(str(folder), str(tmp_path / "cat.csv"), name="my list", source="Paper et al.")
    assert real.ids == ["a", "c"] and real.summary()["n"] == 2 and real.summary()["name"] == "my list"
    reasons = dict(real.failed)
    assert set(reasons) == {"d", "zz"} and "no cutout file" in reasons["zz"]
    np.testing.assert_allclose(real.images[1], cube)
    assert load_real_lenses(str(folder)).ids == ["a", "b", "c"]  # no catalogue: every decodable file
    # a cutout table (the layout `dhs cutouts` writes)
    uri = str(tmp_path / "table.parquet")
    write_parquet(pa.table({"galaxy_id": ["x", "y", "z"], "cutout_ok": [True, False, True],
                            "cutout": pa.array([encode_stamp(cube), encode_stamp(cube), None], pa.binary())}), uri)
    table = load_real_lenses(uri)
    assert table.ids == ["x"] and dict(table.failed) == {"y": "cutout_ok is false", "z": "no cutout blob"}
    with pytest.raises(ValueError, match="neither a folder"):
        load_real_lenses(uri, column="image")
