"""CoaddCutoutProvider: npz/FITS caches on local disk and on (loopback) S3, every legacy layout."""
from __future__ import annotations

import io

import numpy as np
import pytest

from dhs_gen.io.stamps import encode_stamp, encode_stamp_npz
from dhs_gen.storage import join_uri, write_bytes, write_parquet
from dhs_gen.survey import CoaddCutoutProvider, SurveyError, make_provider


def _image(seed, size=105):
    return np.random.default_rng(seed).normal(0, 0.01, (3, size, size)).astype(np.float32)


def _fits(image):
    from astropy.io import fits

    buf = io.BytesIO()
    fits.PrimaryHDU(image).writeto(buf)
    return buf.getvalue()


def _cutout_npz(image, ra, dec):
    buf = io.BytesIO()
    np.savez(buf, cutout=np.moveaxis(image, 0, -1), meta_ra=np.float64(ra), meta_dec=np.float64(dec))
    return buf.getvalue()


def test_reads_real_dr10_cutout_folder_by_id_and_by_position(project_data):
    root = str(project_data / "dr10_cutouts")
    prov = CoaddCutoutProvider(root)
    c = prov.get_cutout(0.10618843138217926, -3.9557716846466064, galaxy_id="0001m040_4091")
    assert c.image.shape == (3, 101, 101) and c.meta["provider"] == "coadd"
    by_pos = prov.get_cutout(0.10618843138217926, -3.9557716846466064)
    np.testing.assert_array_equal(by_pos.image, c.image)
    with pytest.raises(SurveyError, match="not_in_cache"):
        prov.get_cutout(10.0, 10.0)
    with pytest.raises(SurveyError, match="not_in_cache"):
        prov.get_cutout(10.0, 10.0, galaxy_id="nope")


def test_layouts_crop_and_errors(tmp_path):
    img = _image(0)
    files = {"a.npz": encode_stamp_npz(img), "b.npz": _cutout_npz(img, 1.0, 2.0), "c.fits": _fits(img),
             "d.npz": encode_stamp(img), "small.npz": encode_stamp_npz(img[:, :51, :51]),
             "r.npz": encode_stamp_npz(img[1:2], bands="r"), "bad.npz": b"PK\x03\x04broken"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    for name in ("a.npz", "b.npz", "c.fits", "d.npz"):
        prov = CoaddCutoutProvider(str(tmp_path), pattern=name)
        c = prov.get_cutout(1.0, 2.0, size=101)
        np.testing.assert_array_equal(c.image, img[:, 2:103, 2:103])   # centred crop of 105 -> 101
    for name, reason in (("small.npz", "too_small"), ("r.npz", "bad_bands"), ("bad.npz", "invalid_stamp")):
        with pytest.raises(SurveyError) as err:
            CoaddCutoutProvider(str(tmp_path), pattern=name).get_cutout(1.0, 2.0)
        assert err.value.reason == reason


def test_s3_cache_with_parquet_index(s3_bucket):
    import pyarrow as pa

    root = join_uri(s3_bucket, "cutouts")
    imgs = {}
    for i in range(3):
        imgs[i] = _image(i, 101)
        write_bytes(join_uri(root, f"g{i}.npz"), encode_stamp_npz(imgs[i]))
    write_parquet(pa.table({"path": [f"g{i}.npz" for i in range(3)], "ra": [10.0, 10.01, 10.02],
                            "dec": [0.0, 0.0, 0.0]}), join_uri(s3_bucket, "index.parquet"))
    prov = make_provider({"kind": "coadd", "coadd": {"root": root, "index": join_uri(s3_bucket, "index.parquet")}})
    np.testing.assert_array_equal(prov.get_cutout(10.01, 0.0).image, imgs[1])
    np.testing.assert_array_equal(prov.get_cutout(10.0, 0.0, galaxy_id="g2").image, imgs[2])
    assert prov.describe(10.02, 0.0).endswith("g2.npz")
