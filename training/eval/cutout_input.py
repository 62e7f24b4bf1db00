"""Users' own cutouts (FITS / npz files) as model input, by the frozen model's recorded input rule.

A frozen model records the stamps it was trained on (``model.json``): ``input_shape`` (C, H, W),
``input_size_pix`` (side [px]) and ``pixel_scale_arcsec``. A cutout is scored only if it matches them, or after a centre
crop by one explicit rule, recorded in every output row:

* **crop rule** (the survey cutouts' convention, as ``CoaddCutoutProvider`` crops larger
  stamps): the input's centre pixel ``(H // 2, W // 2)`` becomes the crop's centre pixel
  ``(S // 2, S // 2)``, i.e. rows ``H // 2 - S // 2 .. + S`` and likewise for columns. For odd H
  and odd S this is the symmetric crop; when H - S is odd (e.g. 101 -> 64) one more pixel is
  dropped on the low side (row/column 0), which keeps the galaxy on the pixel the model expects.
  Recorded as ``"101x101->64x64@(18,18)"`` (first kept row, column).
* ``on_size_mismatch="refuse"``: any other size gets status ``size_mismatch`` and no score.
* Cutouts smaller than the model input are never padded: status ``too_small``.

Other row statuses: ``ok``, ``missing_file``, ``decode_error`` (the message says why),
``bad_bands`` (the model needs g, r, z), ``nonfinite_pixels``, ``pixel_scale_mismatch`` (the
file states a pixel scale that differs from the model's by more than 0.5%; files that state none
are taken at the model's scale and their ``pixel_scale_arcsec`` is left empty).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from dhs_gen import BANDS
from dhs_gen.io.stamps import centre_crop_origin

CUTOUT_SUFFIXES = (".fits.gz", ".fits.fz", ".npz.gz", ".fits", ".fit", ".npz")
SIZE_RULES = ("crop", "refuse")
PIXEL_SCALE_RTOL = 0.005
_PIXEL_SCALE_KEYS = ("pixel_scale", "pixscale", "pixel_scale_arcsec")


@dataclass(frozen=True)
class ModelInput:
    """The stamps a frozen model takes: side [px], pixel scale [arcsec/px], bands, and where the
    side was read from (``model.json``, the preprocessing crop of an older bundle, or an override)."""

    size_pix: int
    pixel_scale_arcsec: float
    bands: str = BANDS
    source: str = "model.json"


def model_input(record: dict, size_override: int | None = None) -> ModelInput:
    """The input rule of a frozen model from its ``model.json`` record.

    Bundles written before ``input_size_pix`` existed fall back to their preprocessing crop (the
    network saw crop x crop stamps); with neither, ``size_override`` must be given, else ValueError.
    """
    from dhs_gen import PIXEL_SCALE_ARCSEC

    scale = float(record.get("pixel_scale_arcsec") or PIXEL_SCALE_ARCSEC)
    if size_override is not None:
        if int(size_override) < 1:
            raise ValueError(f"input size must be a positive number of pixels, got {size_override}")
        return ModelInput(int(size_override), scale, source="override")
    if record.get("input_size_pix"):
        channels = (record.get("input_shape") or [len(BANDS)])[0]
        if channels != len(BANDS):
            raise ValueError(f"the model takes {channels}-channel stamps; cutouts are read as {BANDS!r}")
        return ModelInput(int(record["input_size_pix"]), scale)
    crop = (record.get("preprocess") or {}).get("crop")
    if crop:
        return ModelInput(int(crop), scale, source="preprocess.crop")
    raise ValueError(f"frozen model {str(record.get('model_id', '?'))[:12]} records no input size (model.json "
                     "predates input_size_pix and has no preprocessing crop): give the side of its training "
                     "stamps with --input-size N")


def cutout_id(path: str) -> str:
    """The file name without its cutout suffix (``a/b/J0123.fits.gz`` -> ``J0123``)."""
    name = os.path.basename(path)
    for suffix in CUTOUT_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def list_cutouts(inputs: Iterable[str]) -> list[tuple[str, str]]:
    """(id, path) of every cutout named: files as given (any name; a missing one is kept and
    reported by :func:`read_cutout`), folders searched recursively for the cutout suffixes, sorted.
    Ids are file names without suffix; under a folder, the relative path without suffix. Two
    inputs with one id raise ValueError (the table would be ambiguous)."""
    found: list[tuple[str, str]] = []
    for item in inputs:
        if os.path.isdir(item):
            for root, _, files in sorted(os.walk(item)):
                for name in sorted(files):
                    if name.lower().endswith(CUTOUT_SUFFIXES):
                        path = os.path.join(root, name)
                        rel = os.path.relpath(path, item)
                        found.append((os.path.join(os.path.dirname(rel), cutout_id(rel)), path))
        else:
            found.append((cutout_id(item), item))
    seen: dict = {}
    for cid, path in found:
        if cid in seen:
            raise ValueError(f"two cutouts share the id {cid!r}: {seen[cid]} and {path}")
        seen[cid] = path
    return found


def _pixel_scale(meta: dict) -> float | None:
    for key in _PIXEL_SCALE_KEYS:
        try:
            value = float(meta[key])
        except (KeyError, TypeError, ValueError):
            continue
        if np.isfinite(value) and value > 0:
            return value
    return None


def read_cutout(path: str, spec: ModelInput, on_size_mismatch: str = "crop") -> tuple[np.ndarray | None, dict]:
    """Read one cutout file into the model's input: (float32 (C, S, S) nanomaggies or None, row).

    ``row``: status, message, height, width [px] as read, crop (the rule applied, "" when none),
    pixel_scale_arcsec (as the file states it, else None) and the file's metadata (``meta``).
    """
    from dhs_gen.io.stamps import StampDecodeError, decode_stamp_npz

    if on_size_mismatch not in SIZE_RULES:
        raise ValueError(f"on_size_mismatch must be one of {SIZE_RULES}, got {on_size_mismatch!r}")
    row = {"status": "ok", "message": "", "height": None, "width": None, "crop": "", "pixel_scale_arcsec": None,
           "meta": {}}

    def fail(status, message):
        row.update(status=status, message=message)
        return None, row

    if not os.path.isfile(path):
        return fail("missing_file", f"{path}: no such file")
    try:
        stamp = decode_stamp_npz(path, nan_policy="report")
    except (StampDecodeError, OSError, ValueError) as exc:
        return fail("decode_error", f"{path}: {exc}")
    image = stamp.image
    _, h, w = image.shape
    row.update(height=int(h), width=int(w), meta=dict(stamp.meta), pixel_scale_arcsec=_pixel_scale(stamp.meta))
    if stamp.bands != spec.bands:
        return fail("bad_bands", f"holds bands {stamp.bands!r}; the model takes {spec.bands!r}")
    scale = row["pixel_scale_arcsec"]
    if scale is not None and abs(scale / spec.pixel_scale_arcsec - 1.0) > PIXEL_SCALE_RTOL:
        return fail("pixel_scale_mismatch", f"pixel scale {scale:g} arcsec/px; the model was trained at "
                                            f"{spec.pixel_scale_arcsec:g} (resample the cutout first)")
    size = spec.size_pix
    if (h, w) != (size, size):
        if h < size or w < size:
            return fail("too_small", f"{h}x{w} px is smaller than the model input {size}x{size}")
        if on_size_mismatch == "refuse":
            return fail("size_mismatch", f"{h}x{w} px; the model takes {size}x{size} (on_size_mismatch=crop "
                                         "centre-crops by the survey rule)")
        r0, c0 = centre_crop_origin(h, w, size)
        image = image[:, r0:r0 + size, c0:c0 + size]
        row["crop"] = f"{h}x{w}->{size}x{size}@({r0},{c0})"
    if not np.all(np.isfinite(image)):
        return fail("nonfinite_pixels", f"{int((~np.isfinite(image)).sum())} NaN/Inf pixels in the scored region")
    return np.ascontiguousarray(image, dtype=np.float32), row
