"""Stamp codecs: every legacy layout decodes, canonical round-trips, bad input fails clearly."""
from __future__ import annotations

import gzip
import io
import pickle

import numpy as np
import pytest
from astropy.io import fits

from dhs_gen.io.stamps import (
    Stamp,
    StampDecodeError,
    decode_canonical_image,
    decode_stamp_npz,
    encode_stamp,
    encode_stamp_npz,
    stamp_array,
)


def _image(c=3, h=64, w=64, seed=0):
    return np.random.default_rng(seed).normal(0, 0.01, (c, h, w)).astype(np.float32)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def test_real_dr10_cutouts_decode(shared_data):
    files = sorted((shared_data / "dr10_lens_candidates_npz").glob("*.npz"))
    assert len(files) == 6
    for path in files:
        stamp = decode_stamp_npz(path, nan_policy="report")
        raw = np.load(path, allow_pickle=False)
        assert stamp.layout == "npz_cutout"
        assert stamp.bands == "grz"
        assert stamp.image.dtype == np.float32 and stamp.image.shape == (3, 101, 101)
        # channels-last g,r,z -> channels-first, exactly
        np.testing.assert_array_equal(stamp.image[1], raw["cutout"][:, :, 1])
        assert stamp.meta["size"] == 101 and abs(stamp.meta["pixel_scale"] - 0.262) < 1e-9
        assert stamp.nonfinite_count == raw["meta_nan_count_g"] + raw["meta_nan_count_r"] + raw["meta_nan_count_z"]


def test_canonical_round_trip_is_exact_and_fast_path_agrees():
    img = _image()
    blob = encode_stamp(img, "grz", {"task_id": "abc", "theta_e": np.float32(1.5)})
    stamp = decode_stamp_npz(blob)
    np.testing.assert_array_equal(stamp.image, img)
    assert stamp.meta == {"task_id": "abc", "theta_e": 1.5} and stamp.layout == "canonical"
    np.testing.assert_array_equal(decode_canonical_image(blob), img)


def test_phase4c_npz_image_bands_and_gzip_wrapped():
    img = _image()
    blob = encode_stamp_npz(img, "grz")
    np.testing.assert_array_equal(decode_stamp_npz(blob).image, img)
    wrapped = decode_stamp_npz(gzip.compress(blob))
    assert wrapped.layout == "gzip+npz_image_bands"
    np.testing.assert_array_equal(wrapped.image, img)


def test_single_band_bandset_r():
    img = _image(c=1)
    stamp = decode_stamp_npz(_npz(image_r=img[0]), bands="r")
    assert stamp.bands == "r" and stamp.image.shape == (1, 64, 64)
    with pytest.raises(StampDecodeError, match="expected bands 'grz'"):
        decode_stamp_npz(_npz(image_r=img[0]), bands="grz")


@pytest.mark.parametrize("layout", ["chw", "hwc"])
def test_img_key_either_channel_order(layout):
    img = _image()
    arr = img if layout == "chw" else np.moveaxis(img, 0, -1)
    stamp = decode_stamp_npz(_npz(img=arr))
    np.testing.assert_array_equal(stamp.image, img)


def test_float64_input_becomes_float32():
    img = _image().astype(np.float64)
    assert decode_stamp_npz(_npz(img=img)).image.dtype == np.float32


def test_fits_from_cutout_service(tmp_path):
    img = _image(h=101, w=101)
    hdu = fits.PrimaryHDU(img.astype(">f4"))
    for i, band in enumerate("grz"):
        hdu.header[f"BAND{i}"] = band
    path = tmp_path / "cutout.fits"
    hdu.writeto(path)
    stamp = decode_stamp_npz(str(path))
    assert stamp.layout == "fits" and stamp.bands == "grz"
    np.testing.assert_array_equal(stamp.image, img)
    with open(path, "rb") as fh:  # file-like source
        assert decode_stamp_npz(fh).image.shape == (3, 101, 101)


def test_nan_policy_raise_names_band_counts_and_report_counts():
    img = _image()
    img[1, 3, 4] = np.nan
    img[2, 0, 0] = np.inf
    blob = encode_stamp(img)
    with pytest.raises(StampDecodeError, match="r=1, z=1"):
        decode_stamp_npz(blob)
    stamp = decode_stamp_npz(blob, nan_policy="report")
    assert stamp.nonfinite_per_band == (0, 1, 1) and isinstance(stamp, Stamp)


@pytest.mark.parametrize("blob, message", [
    (b"", "empty stamp"),
    (b"garbage bytes here", "unrecognised stamp format"),
    (pickle.dumps({"image_r": np.zeros((4, 4))}), "pickled data is refused"),
    (gzip.compress(b"abc")[:-6], "gzip"),
])
def test_corrupt_inputs_raise_clear_errors(blob, message):
    with pytest.raises(StampDecodeError, match=message):
        decode_stamp_npz(blob)


def test_truncated_npz_and_canonical():
    blob = encode_stamp_npz(_image())
    with pytest.raises(StampDecodeError, match="corrupt or truncated"):
        decode_stamp_npz(blob[: len(blob) // 2])
    canon = encode_stamp(_image())
    with pytest.raises(StampDecodeError, match="truncated"):
        decode_stamp_npz(canon[:-10])


def test_object_array_npz_is_refused():
    buf = io.BytesIO()
    np.savez(buf, img=np.array([{"a": 1}], dtype=object))
    with pytest.raises(StampDecodeError, match="pickled objects"):
        decode_stamp_npz(buf.getvalue())


def test_wrong_shapes_name_the_key():
    with pytest.raises(StampDecodeError, match="image_g: expected a 2-D plane"):
        decode_stamp_npz(_npz(image_g=np.zeros((2, 4, 4), np.float32)))
    with pytest.raises(StampDecodeError, match="differ in shape"):
        decode_stamp_npz(_npz(image_g=np.zeros((4, 4)), image_r=np.zeros((5, 5))))
    with pytest.raises(StampDecodeError, match="no stamp key"):
        decode_stamp_npz(_npz(other=np.zeros((4, 4))))
    with pytest.raises(StampDecodeError, match="expected 64x64"):
        decode_stamp_npz(encode_stamp(_image(h=32, w=32)), expected_size=64)
    with pytest.raises(StampDecodeError, match="channels but bands"):
        encode_stamp(_image(), bands="gr")


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(StampDecodeError, match="not found"):
        decode_stamp_npz(str(tmp_path / "nope.npz"))


# --------------------------------------------------------------------------- issue 20 (item 4)

def test_truncated_and_tiny_blobs_raise_only_stamp_decode_errors():
    import numpy as np

    from dhs_gen.io.stamps import StampDecodeError, decode_canonical_image, decode_stamp_npz, encode_stamp

    blob = encode_stamp(np.ones((3, 16, 16), np.float32))
    for bad in (blob[:-5], blob[:10], blob[:8], blob[:40], blob + b"xx"):
        with pytest.raises(StampDecodeError):
            decode_canonical_image(bad)
        with pytest.raises(StampDecodeError):
            decode_stamp_npz(bad)
    with pytest.raises(StampDecodeError):
        decode_stamp_npz(b"PK\x03\x04" + b"\x00" * 6)


def test_a_canonical_header_whose_size_overflows_int64_is_a_decode_error():
    """A shape whose pixel count wraps to 0 in int64 must not pass the length check (it did with
    np.prod and then failed outside StampDecodeError in the fast path)."""
    import json
    import struct

    header = json.dumps({"shape": [2**32, 2**32, 2**32], "bands": "grz", "meta": {}}).encode()
    blob = b"DHSSTMP1" + struct.pack("<I", len(header)) + header
    for decode in (decode_canonical_image, decode_stamp_npz):
        with pytest.raises(StampDecodeError, match="truncated"):
            decode(blob)
    view = memoryview(encode_stamp(np.arange(12, dtype=np.float32).reshape(3, 2, 2)))
    assert decode_canonical_image(view).tolist() == np.arange(12).reshape(3, 2, 2).tolist()  # views decode too


def test_a_gzip_bomb_is_refused_before_inflating(monkeypatch):
    import gzip
    import struct
    import zlib

    from dhs_gen.io import stamps

    bomb = gzip.compress(b"\x00" * (200 * 2**20))  # ~200 KB that would inflate 1000x
    calls = []
    real = zlib.decompressobj
    monkeypatch.setattr(stamps.zlib, "decompressobj", lambda *a, **k: calls.append(1) or real(*a, **k))
    with pytest.raises(stamps.StampDecodeError, match="declares .* inflated bytes"):
        stamps.decode_stamp_npz(bomb)
    assert not calls  # refused from the gzip trailer, nothing inflated
    lying = bomb[:-4] + struct.pack("<I", 1000)  # a trailer that lies: inflation stops at the cap
    with pytest.raises(stamps.StampDecodeError, match="inflates past"):
        stamps.decode_stamp_npz(lying)


def test_an_npz_bomb_is_refused_from_its_directory():
    import io
    import zipfile

    from dhs_gen.io.stamps import MAX_DECODED_BYTES, StampDecodeError, decode_stamp_npz

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("image_r.npy", b"\x00" * (MAX_DECODED_BYTES + 1))
    with pytest.raises(StampDecodeError, match="would inflate"):
        decode_stamp_npz(buf.getvalue())


def test_stamp_array_blobs_are_encode_stamp_blobs():
    """Blobs written in place into one Arrow array decode exactly as encode_stamp's of the same
    image and meta (nulls where meta is None); pixels start 4-byte aligned, so the fast decoder's
    views are aligned float32."""
    metas = [{"task_id": "a" * (i % 5), "kind": "positive", "i": np.int64(i)} if i % 3 else None for i in range(10)]
    array, images = stamp_array((3, 20, 16), "grz", metas)
    assert images.shape == (6, 3, 20, 16) and images.dtype == np.float32
    truth = np.stack([_image(3, 20, 16, seed=i) for i in range(6)])
    images[...] = truth
    blobs = array.to_pylist()
    assert [b is None for b in blobs] == [m is None for m in metas] and array.null_count == 4
    for image, blob, meta in zip(truth, [b for b in blobs if b is not None], [m for m in metas if m is not None]):
        stamp = decode_stamp_npz(blob)
        single = decode_stamp_npz(encode_stamp(image, "grz", meta))
        assert stamp.meta == single.meta == {"task_id": meta["task_id"], "kind": "positive", "i": int(meta["i"])}
        np.testing.assert_array_equal(stamp.image, image)
        np.testing.assert_array_equal(single.image, image)
        assert decode_canonical_image(blob).flags.aligned
        assert int.from_bytes(blob[8:12], "little") % 4 == 0
    empty, none = stamp_array((3, 4, 4), "grz", [None, None])
    assert empty.to_pylist() == [None, None] and none.shape == (0, 3, 4, 4)
    with pytest.raises(StampDecodeError, match="channels"):
        stamp_array((2, 4, 4), "grz", [{}])


def test_stamp_array_headers_are_encode_stamp_headers():
    """The batch header path (one template for same-key str metas) writes the bytes json writes:
    escapes, non-ASCII, '%' in keys and values; only the space padding differs."""
    metas = [{"task_id": "a\"b\\c%s", "k%d": "é\n"}, {"task_id": "x", "k%d": "%%"}]
    array, images = stamp_array((1, 2, 2), "r", metas)
    images[...] = 0.5
    for blob, meta in zip(array.to_pylist(), metas):
        single = encode_stamp(np.full((1, 2, 2), 0.5, np.float32), "r", meta)
        length, single_length = int.from_bytes(blob[8:12], "little"), int.from_bytes(single[8:12], "little")
        assert blob[12:12 + length].rstrip(b" ") == single[12:12 + single_length].rstrip(b" ")
        assert blob[12 + length:] == single[12 + single_length:]


def test_canonical_headers_parsed_once_hand_out_independent_meta():
    """Header parses are cached by the header bytes: equal headers decode to equal, independent
    meta (changing one decoded meta, nested values included, changes no later decode), and a bad
    header still fails every time."""
    from dhs_gen.io.stamps import _parse_canonical_header

    img = np.ones((3, 4, 4), np.float32)
    blob = encode_stamp(img, meta={"task_id": "abc", "tags": ["a"]})
    _parse_canonical_header.cache_clear()
    first = decode_stamp_npz(blob)
    first.meta["tags"].append("b")
    first.meta["task_id"] = "changed"
    second = decode_stamp_npz(blob)
    assert second.meta == {"task_id": "abc", "tags": ["a"]}
    assert _parse_canonical_header.cache_info().hits >= 1
    np.testing.assert_array_equal(decode_canonical_image(blob), img)
    bad = blob.replace(b'"shape"', b'"shap_"')
    for _ in range(2):
        with pytest.raises(StampDecodeError, match="unreadable"):
            decode_stamp_npz(bad)


def test_only_a_decode_that_hands_out_meta_copies_it(monkeypatch):
    """decode_canonical_image (pixels only) copies no meta; decode_stamp_npz hands out its own copy."""
    import copy

    copies = []
    deepcopy = copy.deepcopy
    monkeypatch.setattr(copy, "deepcopy", lambda value, *args: copies.append(value) or deepcopy(value, *args))
    img = np.arange(48, dtype=np.float32).reshape(3, 4, 4)
    blob = encode_stamp(img, meta={"ra": 150.1, "tags": ["a"]})
    np.testing.assert_array_equal(decode_canonical_image(blob), img)
    assert copies == []
    assert decode_stamp_npz(blob).meta == {"ra": 150.1, "tags": ["a"]} and len(copies) == 1
