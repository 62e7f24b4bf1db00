"""Users' own cutouts: the model's recorded input size, the centre-crop rule, refusals as statuses."""
from __future__ import annotations

import glob
import hashlib
import json
import os

import numpy as np
import pytest

from dhs_gen.data_files import data_path
from dhs_gen.io.stamps import centre_crop_origin, decode_stamp_npz, encode_stamp_npz
from training.eval.cutout_input import ModelInput, cutout_id, list_cutouts, model_input, read_cutout

SPEC64 = ModelInput(64, 0.262)


def _dr10():
    """A packaged real DR10 cutout (101 x 101 px, 0.262"/px, g, r, z)."""
    return sorted(glob.glob(os.path.join(data_path("dr10_cutouts"), "*.npz")))[0]


def _fits(path, image, pixscale=None):
    from astropy.io import fits

    hdu = fits.PrimaryHDU(image.astype(np.float32))
    for i, b in enumerate("grz"[:len(image)]):
        hdu.header[f"BAND{i}"] = b
    if pixscale is not None:
        hdu.header["PIXSCALE"] = pixscale
    hdu.writeto(path)
    return str(path)


def test_model_input_from_record_old_bundles_and_override():
    assert model_input({"input_size_pix": 64, "pixel_scale_arcsec": 0.262}) == ModelInput(64, 0.262)
    old_with_crop = model_input({"model_id": "abc", "preprocess": {"crop": 48}})
    assert old_with_crop.size_pix == 48 and old_with_crop.source == "preprocess.crop"
    with pytest.raises(ValueError, match="records no input size.*--input-size"):
        model_input({"model_id": "abc", "preprocess": {"crop": None}})
    assert model_input({"preprocess": {}}, size_override=64).source == "override"


def test_real_dr10_cutout_is_centre_cropped_by_the_survey_rule():
    path = _dr10()
    raw = decode_stamp_npz(path, nan_policy="report").image
    assert raw.shape == (3, 101, 101)
    image, row = read_cutout(path, SPEC64)
    assert row["status"] == "ok" and row["crop"] == "101x101->64x64@(18,18)"
    assert row["height"] == row["width"] == 101 and row["pixel_scale_arcsec"] == pytest.approx(0.262)
    np.testing.assert_array_equal(image, raw[:, 18:82, 18:82])
    assert image[:, 32, 32].tolist() == raw[:, 50, 50].tolist()  # the galaxy's pixel is the model's centre pixel


def test_size_mismatch_refused_when_asked_and_too_small_always():
    image, row = read_cutout(_dr10(), SPEC64, on_size_mismatch="refuse")
    assert image is None and row["status"] == "size_mismatch" and "64x64" in row["message"]
    image, row = read_cutout(_dr10(), ModelInput(128, 0.262))
    assert image is None and row["status"] == "too_small"
    with pytest.raises(ValueError, match="on_size_mismatch"):
        read_cutout(_dr10(), SPEC64, on_size_mismatch="pad")


@pytest.mark.parametrize("h,size", [(100, 64), (100, 63), (101, 63), (65, 64), (64, 64)])
def test_crop_keeps_the_input_centre_pixel_on_the_crop_centre_pixel(h, size):
    r0, c0 = centre_crop_origin(h, h + 2, size)
    assert h // 2 - r0 == size // 2 and (h + 2) // 2 - c0 == size // 2
    assert 0 <= r0 and r0 + size <= h


def test_bad_files_become_statuses(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.normal(0, 0.01, (3, 64, 64)).astype(np.float32)
    (tmp_path / "junk.fits").write_bytes(b"SIMPLE  = not really a fits file")
    cases = {
        "missing_file": str(tmp_path / "nope.fits"),
        "decode_error": str(tmp_path / "junk.fits"),
        "bad_bands": _write(tmp_path / "r_only.npz", encode_stamp_npz(img[1:2], bands="r")),
        "pixel_scale_mismatch": _fits(tmp_path / "hsc.fits", img, pixscale=0.168),
        "nonfinite_pixels": _write(tmp_path / "nan.npz", encode_stamp_npz(np.where(img > 0.02, np.nan, img))),
        "ok": _fits(tmp_path / "good.fits", img, pixscale=0.262),
    }
    for status, path in cases.items():
        image, row = read_cutout(path, SPEC64)
        assert row["status"] == status, (status, row["message"])
        assert (image is None) == (status != "ok")
        assert status == "ok" or row["message"]


def _write(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_listing_ids_and_duplicates(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "J1.fits.gz").write_bytes(b"")
    (tmp_path / "a" / "notes.txt").write_text("x")
    (tmp_path / "J2.npz").write_bytes(b"")
    assert cutout_id("x/y/J0123+0456.fits.gz") == "J0123+0456"
    listed = list_cutouts([str(tmp_path)])
    assert [i for i, _ in listed] == ["J2", "a/J1"]
    with pytest.raises(ValueError, match="share the id"):
        list_cutouts([str(tmp_path / "J2.npz"), str(tmp_path / "J2.npz")])


def test_frozen_model_records_input_and_old_bundles_still_load(tmp_path):
    import torch

    from training.export import export_frozen_model, load_frozen_model
    from training.models import build_model

    torch.manual_seed(0)
    path = str(tmp_path / "m")
    export_frozen_model(build_model("small_cnn", in_chans=3), {"seed": 0}, path, data_manifest_hash="t",
                        preprocess={"norm": "outer_mad"}, input_shape=(3, 64, 64))
    record = json.loads(open(os.path.join(path, "model.json")).read())
    assert record["input_shape"] == [3, 64, 64] and record["input_size_pix"] == 64
    assert record["pixel_scale_arcsec"] == pytest.approx(0.262)
    assert model_input(load_frozen_model(path).record) == ModelInput(64, 0.262)
    # the input fields are part of the content address: changing them is detected
    record["input_size_pix"] = 101
    open(os.path.join(path, "model.json"), "w").write(json.dumps(record))
    with pytest.raises(ValueError, match="model_id"):
        load_frozen_model(path)
    # a bundle written before the fields existed (hashed without them) still loads, and has no input size
    for key in ("input_shape", "input_size_pix", "pixel_scale_arcsec"):
        record.pop(key)
    weights = open(os.path.join(path, "weights.pt"), "rb").read()
    digest = hashlib.sha256(weights)
    digest.update(json.dumps({k: record[k] for k in ("build_spec", "preprocess", "config")}, sort_keys=True,
                             separators=(",", ":"), default=str).encode())
    record["model_id"] = digest.hexdigest()
    open(os.path.join(path, "model.json"), "w").write(json.dumps(record))
    old = load_frozen_model(path)
    with pytest.raises(ValueError, match="records no input size"):
        model_input(old.record)
