"""Stamp codecs: decode every legacy stamp layout, encode the project's canonical form.

Layouts accepted by :func:`decode_stamp_npz` (path, bytes or file-like):

* canonical ``DHSSTMP1`` blob (written by :func:`encode_stamp` and :func:`stamp_array`): 8-byte
  magic, uint32 LE header length, UTF-8 JSON header ``{"shape", "bands", "meta"}`` (padded with
  spaces so the pixels start at a multiple of 4 bytes), raw little-endian float32 (C, H, W);
* npz with ``image_g``/``image_r``/``image_z`` (any subset, e.g. bandset "r" has ``image_r`` only);
* npz with ``img`` ((C, H, W), (H, W, C) or (H, W));
* npz with ``cutout`` (H, W, C) plus scalar ``meta_*`` keys (the cutout files);
* FITS, (C, H, W) or (H, W), as the Legacy Surveys cutout service returns it;
* any of the above wrapped in gzip (seen in old phase-4c tables).

Images come back as float32 (C, H, W), nanomaggies, channels in band order.
Every failure to decode (truncated, tiny or corrupt blobs included) raises
:class:`StampDecodeError`, never another exception type, so callers turn it into the row's status.
A blob that would inflate past :data:`MAX_DECODED_BYTES` (gzip wrapper or npz member) is refused
before it is inflated: the gzip trailer's size is checked first and inflation is bounded.
Pickled content is refused (``allow_pickle=False``). Non-finite pixels raise by default;
``nan_policy="report"`` returns them with their per-band count for the caller to decide.
"""
from __future__ import annotations

import copy
import io
import json
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import BinaryIO, Union

import numpy as np

CANONICAL_MAGIC = b"DHSSTMP1"
_HEADER_LEN = struct.Struct("<I")
_BAND_ORDER = "grz"
_MAX_SIDE = 4096
MAX_DECODED_BYTES = 64 * 2**20  # ~500x a 101x101 grz float32 stamp (122 KB); a decoded blob may not exceed it

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]


class StampDecodeError(ValueError):
    """A stamp could not be decoded; the message names the key or problem."""


@dataclass(frozen=True)
class Stamp:
    """A decoded stamp: float32 (C, H, W) image, band string, metadata, and provenance."""

    image: np.ndarray
    bands: str
    meta: dict = field(default_factory=dict)
    layout: str = "canonical"
    nonfinite_per_band: tuple = ()

    @property
    def nonfinite_count(self) -> int:
        """Total NaN/Inf pixels over all bands."""
        return int(sum(self.nonfinite_per_band))

    def band(self, name: str) -> np.ndarray:
        """The (H, W) image of one band."""
        if name not in self.bands:
            raise KeyError(f"band {name!r} not in stamp bands {self.bands!r}")
        return self.image[self.bands.index(name)]


# --------------------------------------------------------------------------------------------
# encoding

def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


_JSON = json.JSONEncoder(separators=(",", ":"))  # json.dumps(..., separators=...) builds one per call
_ESCAPE = json.encoder.encode_basestring_ascii  # a str as _JSON writes it (ensure_ascii)


def _header_start(shape, bands: str) -> str:
    """The JSON header of a canonical blob up to its meta."""
    return '{"shape":' + _JSON.encode([int(n) for n in shape]) + ',"bands":' + _JSON.encode(bands) + ',"meta":'


def _metas_json(metas: list) -> list:
    """Each meta dict (or None: {}) as JSON, keys as str and numpy values as Python values."""
    metas = [m or {} for m in metas]
    keys = {tuple(m) for m in metas}
    if len(keys) == 1 and {type(v) for m in metas for v in m.values()} | {type(k) for k in next(iter(keys))} == {str}:
        # all str, one set of keys (a batch of stamps): one template, values escaped as json does
        template = "{" + ",".join(_ESCAPE(k).replace("%", "%%") + ":%s" for k in next(iter(keys))) + "}"
        return [template % tuple(map(_ESCAPE, m.values())) for m in metas]
    if {type(k) for m in metas for k in m} <= {str}:
        try:  # plain values: as they are
            return [_JSON.encode(m) for m in metas]
        except TypeError:
            pass
    return [_JSON.encode({str(k): _jsonable(v) for k, v in m.items()}) for m in metas]


def _prefix(header: bytes, length: int = 0) -> bytes:
    """Magic, header length and ``header`` padded with spaces to at least ``length`` bytes and so
    that the pixels after it start at a multiple of 4 bytes."""
    length = max(length, len(header))
    length += -(len(CANONICAL_MAGIC) + _HEADER_LEN.size + length) % 4
    return CANONICAL_MAGIC + _HEADER_LEN.pack(length) + header.ljust(length)


def encode_stamp(image: np.ndarray, bands: str = "grz", meta: dict | None = None) -> bytes:
    """Encode a (C, H, W) image (cast to float32) as the canonical ``DHSSTMP1`` blob."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[None]
    _check_shape(image, bands, key="image")
    header = (_header_start(image.shape, bands) + _metas_json([meta])[0] + "}").encode("utf-8")
    return b"".join((_prefix(header), np.ascontiguousarray(image, dtype="<f4")))


def stamp_array(shape, bands: str, metas: list):
    """Canonical blobs for ``len(metas)`` stamps of ``shape`` (C, H, W) as one Arrow binary array
    (null where ``metas[i]`` is None) and the float32 (V, C, H, W) array of the V valid stamps'
    pixels, in order, which IS the blobs' pixel data: the caller writes the images into it (before
    the Arrow array is used), so no blob is copied. Headers as :func:`encode_stamp`'s, padded to
    one length; a blob decodes to what :func:`encode_stamp` of the same image and meta gives."""
    import pyarrow as pa

    shape = tuple(int(n) for n in shape)
    _check_shape(np.empty((shape[0], 1, 1), np.float32), bands, key="image")
    valid = np.array([m is not None for m in metas], dtype=bool)
    start = _header_start(shape, bands)
    headers = [(start + m + "}").encode("utf-8") for m in _metas_json([m for m in metas if m is not None])]
    lead = len(_prefix(max(headers, key=len))) if headers else 0
    pad = lead - len(CANONICAL_MAGIC) - _HEADER_LEN.size  # every header padded to the longest
    prefixes = [_prefix(h, pad) for h in headers]
    pixels = int(np.prod(shape)) * 4
    blob = lead + pixels
    if blob * len(headers) >= 2**31:
        raise ValueError(f"{len(headers)} stamps of {blob} bytes exceed one Arrow binary array")
    buffer = pa.allocate_buffer(blob * len(headers))  # Arrow's pool keeps its pages: no page faults per batch
    data = np.frombuffer(buffer, np.uint8).reshape(len(headers), blob)
    if headers:
        data[:, :lead] = np.frombuffer(b"".join(prefixes), np.uint8).reshape(len(headers), lead)
    offsets = np.zeros(len(metas) + 1, np.int32)
    np.cumsum(np.where(valid, blob, 0), out=offsets[1:])
    array = pa.BinaryArray.from_buffers(pa.binary(), len(metas), [
        pa.py_buffer(np.packbits(valid, bitorder="little")) if not valid.all() else None,
        pa.py_buffer(offsets), buffer], null_count=int((~valid).sum()))
    images = data[:, lead:].view("<f4").reshape((len(headers),) + shape)
    return array, images


def encode_stamp_npz(image: np.ndarray, bands: str = "grz", meta: dict | None = None,
                     compressed: bool = True) -> bytes:
    """Encode in the legacy phase-4c layout (``image_<band>`` keys, ``meta_*`` scalars) as npz bytes."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[None]
    _check_shape(image, bands, key="image")
    arrays = {f"image_{b}": image[i] for i, b in enumerate(bands)}
    arrays.update({f"meta_{k}": np.asarray(_jsonable(v)) for k, v in (meta or {}).items()})
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _canonical_header(blob) -> tuple[tuple, str, dict, int]:
    """(shape, bands, meta, data offset) of a canonical blob, its length checked; StampDecodeError.
    ``meta`` is the parse cache's own dict: callers that hand it out copy it."""
    if bytes(blob[:8]) != CANONICAL_MAGIC:
        raise StampDecodeError("not a canonical DHSSTMP1 stamp (bad magic)")
    if len(blob) < 12:
        raise StampDecodeError(f"canonical stamp truncated in its header ({len(blob)} bytes)")
    (hlen,) = _HEADER_LEN.unpack_from(blob, 8)
    if 12 + hlen > len(blob):
        raise StampDecodeError(f"canonical stamp truncated: header of {hlen} bytes, blob of {len(blob)}")
    shape, bands, meta = _parse_canonical_header(bytes(blob[12:12 + hlen]))
    need = math.prod(shape) * 4
    if len(blob) - 12 - hlen != need:
        raise StampDecodeError(f"canonical stamp truncated: {len(blob) - 12 - hlen} of {need} data bytes")
    return shape, bands, meta, 12 + hlen


@lru_cache(maxsize=1024)
def _parse_canonical_header(text: bytes) -> tuple[tuple, str, dict]:
    """(shape, bands, meta) of a canonical blob's JSON header ``text``; StampDecodeError. Cached by
    the header bytes (a batch's hosts mostly share one header): the cached meta is never handed out,
    only copies of it (:func:`_decode_canonical`)."""
    try:
        header = json.loads(text)
        shape = tuple(int(s) for s in header["shape"])
        bands = str(header["bands"])
        meta = dict(header.get("meta", {}))
    except (ValueError, KeyError, TypeError) as exc:
        raise StampDecodeError(f"canonical stamp header unreadable: {exc}") from None
    if len(shape) != 3 or any(n < 1 for n in shape):
        raise StampDecodeError(f"canonical stamp header: bad shape {list(shape)}")
    return shape, bands, meta


def decode_canonical_image(blob: bytes) -> np.ndarray:
    """Fast path: the float32 (C, H, W) array of a canonical blob (a read-only view, no copy).
    Raises StampDecodeError for anything that is not a whole canonical blob."""
    shape, _, _, offset = _canonical_header(blob)
    return np.frombuffer(blob, dtype="<f4", count=math.prod(shape), offset=offset).reshape(shape)


def centre_crop_origin(height: int, width: int, size: int) -> tuple[int, int]:
    """First kept (row, column) of the survey's centre crop of a (height, width) cutout to
    ``size`` x ``size`` [px]: the cutout's centre pixel (H // 2, W // 2) becomes the crop's centre
    pixel (S // 2, S // 2). ValueError when the cutout is smaller than the crop."""
    if height < size or width < size:
        raise ValueError(f"{height}x{width} is smaller than {size}x{size}")
    return height // 2 - size // 2, width // 2 - size // 2


def majority_shape(shapes) -> tuple | None:
    """The most common of ``shapes`` (ties: the one with more pixels, then the larger tuple): the
    reference shape of a batch whose size nobody declared. Never simply the first row's shape, so
    one odd stamp cannot make every good one a mismatch. None for no shapes."""
    from collections import Counter

    counts = Counter(tuple(s) for s in shapes)
    if not counts:
        return None
    return max(counts, key=lambda s: (counts[s], int(np.prod([n for n in s if isinstance(n, int)])), s))


# --------------------------------------------------------------------------------------------
# decoding

def _read_source(source: Source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        from dhs_gen.storage import read_bytes

        try:
            return read_bytes(os.fspath(source))
        except FileNotFoundError:
            raise StampDecodeError(f"stamp file not found: {source}") from None
    if hasattr(source, "read"):
        return source.read()
    raise StampDecodeError(f"cannot read a stamp from {type(source).__name__}")


def _check_shape(image: np.ndarray, bands: str, key: str) -> None:
    if image.ndim != 3:
        raise StampDecodeError(f"{key}: expected a (C, H, W) image, got shape {image.shape}")
    c, h, w = image.shape
    if c != len(bands):
        raise StampDecodeError(f"{key}: {c} channels but bands {bands!r}")
    if not (1 <= h <= _MAX_SIDE and 1 <= w <= _MAX_SIDE):
        raise StampDecodeError(f"{key}: implausible stamp size {h}x{w}")
    if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise StampDecodeError(f"{key}: non-numeric dtype {image.dtype}")


def _channels_first(arr: np.ndarray, key: str, nbands_hint: int | None) -> np.ndarray:
    if arr.ndim == 2:
        return arr[None]
    if arr.ndim != 3:
        raise StampDecodeError(f"{key}: expected 2-D or 3-D array, got shape {arr.shape}")
    small = (1, 2, 3, 4, 5)
    if arr.shape[0] in small and arr.shape[-1] not in small:
        return arr
    if arr.shape[-1] in small and arr.shape[0] not in small:
        return np.moveaxis(arr, -1, 0)
    if nbands_hint is not None and arr.shape[0] == nbands_hint:
        return arr
    raise StampDecodeError(f"{key}: cannot tell the channel axis of shape {arr.shape}")


def _scalar(value: np.ndarray):
    if value.ndim != 0:
        return value.tolist()
    item = value.item()
    return item


def _check_npz_size(data: bytes) -> None:
    """Refuse an npz whose members would inflate past MAX_DECODED_BYTES (sizes from the zip
    directory, before anything is inflated)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            total = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise StampDecodeError(f"corrupt or truncated npz: {exc}") from None
    if total > MAX_DECODED_BYTES:
        raise StampDecodeError(f"npz would inflate to {total} bytes (> {MAX_DECODED_BYTES}); refused")


def _gunzip(data: bytes) -> bytes:
    """Inflate a gzip wrapper, refusing one that would exceed MAX_DECODED_BYTES: the trailer's
    ISIZE is checked first, then inflation stops at the cap (the trailer can lie)."""
    if len(data) < 18:
        raise StampDecodeError(f"corrupt or truncated gzip wrapper ({len(data)} bytes)")
    (declared,) = struct.unpack_from("<I", data, len(data) - 4)
    if declared > MAX_DECODED_BYTES:
        raise StampDecodeError(f"gzip stamp declares {declared} inflated bytes (> {MAX_DECODED_BYTES}); refused")
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, MAX_DECODED_BYTES + 1)
    except zlib.error as exc:
        raise StampDecodeError(f"corrupt or truncated gzip wrapper: {exc}") from None
    if len(out) > MAX_DECODED_BYTES:
        raise StampDecodeError(f"gzip stamp inflates past {MAX_DECODED_BYTES} bytes; refused")
    if not inflater.eof:
        raise StampDecodeError("corrupt or truncated gzip wrapper: stream ends early")
    return out


def _decode_npz(data: bytes, bands: str | None) -> tuple[np.ndarray, str, dict, str]:
    _check_npz_size(data)
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise StampDecodeError(f"corrupt or truncated npz: {exc}") from None
    try:
        keys = set(npz.files)
        arrays = {}
        for key in keys:
            try:
                arrays[key] = npz[key]
            except ValueError as exc:
                if "pickle" in str(exc).lower():
                    raise StampDecodeError(f"npz key {key!r} holds pickled objects; refused") from None
                raise StampDecodeError(f"npz key {key!r}: {exc}") from None
            except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
                raise StampDecodeError(f"npz key {key!r} corrupt or truncated: {exc}") from None
    finally:
        npz.close()

    meta = {k[5:]: _scalar(v) for k, v in arrays.items() if k.startswith("meta_")}
    band_keys = [b for b in _BAND_ORDER if f"image_{b}" in keys]
    if band_keys:
        planes = []
        for b in band_keys:
            plane = arrays[f"image_{b}"]
            if plane.ndim != 2:
                raise StampDecodeError(f"image_{b}: expected a 2-D plane, got shape {plane.shape}")
            planes.append(plane)
        shapes = {p.shape for p in planes}
        if len(shapes) != 1:
            raise StampDecodeError(f"band planes differ in shape: {sorted(shapes)}")
        found = "".join(band_keys)
        if bands is not None and bands != found:
            raise StampDecodeError(f"expected bands {bands!r}, npz holds {found!r}")
        return np.stack(planes), found, meta, "npz_image_bands"
    for key, layout in (("cutout", "npz_cutout"), ("img", "npz_img"), ("image", "npz_image")):
        if key in keys:
            hint = len(bands) if bands else None
            image = _channels_first(arrays[key], key, hint)
            found = bands or (_BAND_ORDER if image.shape[0] == 3 else meta.get("bandset", "r"))
            if image.shape[0] != len(found):
                raise StampDecodeError(f"{key}: {image.shape[0]} channels but bands {found!r}")
            return image, str(found), meta, layout
    raise StampDecodeError(f"npz has no stamp key (image_g/r/z, img, cutout); keys: {sorted(keys)}")


def _decode_fits(data: bytes, bands: str | None) -> tuple[np.ndarray, str, dict, str]:
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(data), memmap=False) as hdul:
            hdu = next((h for h in hdul if getattr(h, "data", None) is not None), None)
            if hdu is None:
                raise StampDecodeError("FITS holds no image data")
            image = np.array(hdu.data)
            header = hdu.header
    except (OSError, TypeError, ValueError) as exc:
        if isinstance(exc, StampDecodeError):
            raise
        raise StampDecodeError(f"corrupt or truncated FITS: {exc}") from None
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise StampDecodeError(f"FITS image: expected (C, H, W), got shape {image.shape}")
    header_bands = "".join(str(header.get(f"BAND{i}", "")).strip() for i in range(image.shape[0]))
    found = bands or (header_bands if len(header_bands) == image.shape[0] else None)
    if found is None:
        found = _BAND_ORDER if image.shape[0] == 3 else "r"
    if len(found) != image.shape[0]:
        raise StampDecodeError(f"FITS image: {image.shape[0]} planes but bands {found!r}")
    meta = {k.lower(): header[k] for k in ("RA", "DEC", "PIXSCALE", "SURVEY", "VERSION") if k in header}
    return image.astype(image.dtype.newbyteorder("=")), found, meta, "fits"


def _decode_canonical(data: bytes) -> tuple[np.ndarray, str, dict, str]:
    shape, bands, meta, offset = _canonical_header(data)
    return (np.frombuffer(data, dtype="<f4", offset=offset).reshape(shape), bands,
            copy.deepcopy(meta) if meta else {}, "canonical")


def decode_stamp_npz(source: Source, bands: str | None = None, *, nan_policy: str = "raise",
                     expected_size: int | None = None) -> Stamp:
    """Decode a stamp in any supported layout (see module docstring).

    bands: expected band string (e.g. "grz" or bandset "r"); None accepts what the data holds.
    nan_policy: "raise" (default) or "report" (non-finite counts in ``nonfinite_per_band``).
    expected_size: if given, require H == W == expected_size.
    """
    if nan_policy not in ("raise", "report"):
        raise ValueError(f"nan_policy must be 'raise' or 'report', not {nan_policy!r}")
    data = _read_source(source)
    try:
        return _decode(data, bands, nan_policy, expected_size)
    except StampDecodeError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, struct.error, OverflowError, EOFError, OSError) as exc:
        # anything else a malformed blob provokes inside numpy/astropy/zipfile is still a decode failure
        raise StampDecodeError(f"undecodable stamp ({type(exc).__name__}: {str(exc)[:120]})") from None


def _decode(data: bytes, bands: str | None, nan_policy: str, expected_size: int | None) -> Stamp:
    layout_prefix = ""
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data)
        layout_prefix = "gzip+"
    if not data:
        raise StampDecodeError("empty stamp")
    if data[:8] == CANONICAL_MAGIC:
        image, found, meta, layout = _decode_canonical(data)
    elif data[:4] == b"PK\x03\x04":
        image, found, meta, layout = _decode_npz(data, bands)
    elif data[:6] == b"SIMPLE":
        image, found, meta, layout = _decode_fits(data, bands)
    elif data[:1] == b"\x80":
        raise StampDecodeError("pickled data is refused (only npz/FITS/canonical stamps are read)")
    elif data[:6] == b"\x93NUMPY":
        raise StampDecodeError("bare .npy arrays carry no band names; store stamps as npz or canonical")
    else:
        raise StampDecodeError(f"unrecognised stamp format (first bytes {data[:8]!r})")

    if bands is not None and found != bands:
        raise StampDecodeError(f"expected bands {bands!r}, stamp holds {found!r}")
    _check_shape(image, found, key=layout)
    if expected_size is not None and image.shape[1:] != (expected_size, expected_size):
        raise StampDecodeError(f"{layout}: expected {expected_size}x{expected_size}, got {image.shape[1:]}")
    image = np.asarray(image, dtype=np.float32)
    finite = np.isfinite(image)
    nonfinite = tuple(int(n) for n in (~finite).reshape(image.shape[0], -1).sum(axis=1))
    if sum(nonfinite) and nan_policy == "raise":
        detail = ", ".join(f"{b}={n}" for b, n in zip(found, nonfinite) if n)
        raise StampDecodeError(f"{layout}: non-finite pixels (NaN/Inf) per band: {detail}")
    return Stamp(image=image, bands=found, meta=meta, layout=layout_prefix + layout,
                 nonfinite_per_band=nonfinite)
