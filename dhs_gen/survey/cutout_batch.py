"""The cutout job's batch function: manifest rows -> ``cutout_index`` rows (one per input row).

Per cutout: ``cutout_ok`` = all bands present (a band that is all zero or all non-finite has no
coverage) and no non-finite pixel in the central ``central_box`` x ``central_box`` region;
``has_nan``/``nan_pixel_count`` count non-finite pixels; ``bad_pixel_frac`` = (non-finite pixels
+ pixels of uncovered bands) / all pixels; per band the mean, std, median, MAD (raw, not
scaled), 1st and 99th percentiles over finite pixels [nanomaggies]. A provider failure gives
``status`` = its reason and no cutout; nothing is dropped.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from functools import lru_cache

import numpy as np
import pyarrow as pa

from dhs_gen import BANDS
from dhs_gen.schemas import DATASETS, STATUS_OK

SCHEMA = DATASETS["cutout_index"].schema
_STATS = ("mean", "std", "median", "mad", "p01", "p99")


def cutout_quality(image: np.ndarray, central_box: int = 50) -> dict:
    """Quality flags and per-band statistics of a (C, H, W) cutout (see module docstring)."""
    image = np.asarray(image, dtype=np.float32)
    c, h, w = image.shape
    finite = np.isfinite(image)
    covered = finite.any(axis=(1, 2)) & np.array([np.any(image[i][finite[i]] != 0) for i in range(c)])
    r0, c0 = (h - central_box) // 2, (w - central_box) // 2
    central_bad = ~finite[:, r0:r0 + central_box, c0:c0 + central_box]
    nan_count = int((~finite).sum())
    bad = (~finite) | ~covered[:, None, None]
    out = {"cutout_ok": bool(covered.all() and not central_bad.any()), "has_nan": nan_count > 0,
           "nan_pixel_count": nan_count, "bad_pixel_frac": float(bad.mean())}
    for i, b in enumerate(BANDS[:c]):
        vals = image[i][finite[i]].astype(np.float64)
        if vals.size == 0:
            out.update({f"{s}_{b}": np.nan for s in _STATS})
            continue
        p01, med, p99 = np.percentile(vals, [1.0, 50.0, 99.0])
        out.update({f"mean_{b}": vals.mean(), f"std_{b}": vals.std(), f"median_{b}": med,
                    f"mad_{b}": float(np.median(np.abs(vals - med))), f"p01_{b}": p01, f"p99_{b}": p99})
    return out


@lru_cache(maxsize=4)
def _provider(cfg_json: str):
    from dhs_gen.survey.providers import make_provider

    return make_provider(json.loads(cfg_json))


def provider_from_config(cfg) -> object:
    """A provider built once per process for a config (ProviderConfig or dict)."""
    from dhs_gen.survey.providers import ProviderConfig

    if isinstance(cfg, ProviderConfig):
        cfg = cfg.model_dump()
    return _provider(json.dumps(cfg, sort_keys=True))


def _manifest_value(columns: dict, name: str, i: int):
    col = columns.get(name)
    if col is None:
        return None
    value = col[i]
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _one(provider, ra, dec, galaxy_id, size: int, central_box: int) -> dict:
    from dhs_gen.io.stamps import encode_stamp
    from dhs_gen.survey.base import SurveyError

    row = {"provider": provider.kind, "fetched_at": datetime.now(timezone.utc)}
    if ra is None or dec is None or not (np.isfinite(ra) and np.isfinite(dec)):
        return {**row, "status": "bad_position", "cutout_ok": False}
    try:
        row["request_url"] = provider.describe(ra, dec, size)
        cut = provider.get_cutout(float(ra), float(dec), size, galaxy_id=galaxy_id)
    except SurveyError as exc:
        return {**row, "status": exc.reason, "cutout_ok": False}
    except Exception as exc:  # an unexpected provider bug must not lose the row
        return {**row, "status": f"error:{type(exc).__name__}", "cutout_ok": False}
    if cut.image.shape != (len(BANDS), size, size):
        return {**row, "status": "bad_shape", "cutout_ok": False}
    row.update(cutout_quality(cut.image, central_box))
    row.update(cutout=encode_stamp(cut.image, cut.bands, {"galaxy_id": galaxy_id, "ra": ra, "dec": dec,
                                                          "provider": provider.kind}),
               size=size, bands=cut.bands, status=STATUS_OK,
               request_url=cut.meta.get("request_url", row["request_url"]))
    for i, b in enumerate(BANDS):
        if np.isfinite(cut.psf_fwhm[i]):
            row[f"psfsize_{b}"] = float(cut.psf_fwhm[i])
        if np.isfinite(cut.psfdepth[i]):
            row[f"psfdepth_{b}_mag5"] = float(cut.psfdepth[i])
    if "ebv" in cut.meta:
        row["ebv"] = float(cut.meta["ebv"])
    return row


def fetch_batch(batch: pa.RecordBatch, provider_cfg, size: int = 101, central_box: int = 50,
                id_column: str = "galaxy_id") -> pa.RecordBatch:
    """Manifest batch (``galaxy_id``, ``ra``, ``dec`` [deg], optional ``psfsize_<b>``,
    ``psfdepth_<b>_mag5``, ``ebv`` used when the provider has none) -> cutout_index batch."""
    for name in (id_column, "ra", "dec"):
        if name not in batch.schema.names:
            raise ValueError(f"manifest lacks column {name!r} (has {batch.schema.names})")
    provider = provider_from_config(provider_cfg)
    columns = {name: batch.column(name).to_pylist() for name in batch.schema.names}
    ids, ras, decs = columns[id_column], columns["ra"], columns["dec"]

    def work(i):
        return _one(provider, ras[i], decs[i], ids[i], size, central_box)

    n = batch.num_rows
    workers = getattr(provider, "max_concurrency", 1)
    if workers > 1 and n > 1:
        with ThreadPoolExecutor(max_workers=min(workers, n)) as pool:
            rows = list(pool.map(work, range(n)))
    else:
        rows = [work(i) for i in range(n)]
    for i, row in enumerate(rows):
        row.update(galaxy_id=str(ids[i]), ra=np.nan if ras[i] is None else ras[i],
                   dec=np.nan if decs[i] is None else decs[i])
        for name in [f"psfsize_{b}" for b in BANDS] + [f"psfdepth_{b}_mag5" for b in BANDS] + ["ebv"]:
            if row.get(name) is None:
                row[name] = _manifest_value(columns, name, i)
    arrays = [pa.array([r.get(f.name) for r in rows], type=f.type) for f in SCHEMA]
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)
