"""Phase 4c: render lensed sources into real host cutouts, with paired controls, hard negatives
and metrics, for a whole Arrow batch at once.

Input rows: the injection manifest (``injection_manifest`` schema) plus the host cutout as a blob
column ``cutout`` (canonical or any legacy layout, float32 (3, S0, S0) nanomaggies, S0 ≥ the stamp
size, the host at the centre), optional ``cutout_psfsize_{g,r,z}`` [arcsec] (the PSF of those
pixels; preferred over the manifest's catalogue ``psfsize_*``) and optional ``cutout_status``. Output: the ``stamps`` schema, one row per input row with ``status``.

Geometry: products are centre crops of the host cutout; the lens sits on the host's centre
pixel (for an even crop of an odd cutout that is half a pixel off the stamp centre, and the lens
centre is shifted accordingly). The source position is the lens centre plus the manifest's
source-plane offset. PSF: Moffat (β = 3.5) whose NEA-FWHM is the host's ``psfsize`` per band
(:func:`dhs_gen.psf.psfsize_kernels`); ``x_ratio`` = θ_E / that psfsize (r).
Randomness (arc Poisson noise, artifacts, the shuffle) comes from generators seeded by
(task_seed64, stream), so a row's output never depends on its batch or partition.
"""
from __future__ import annotations

from typing import Dict, List, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from dhs_gen import PIXEL_SCALE_ARCSEC
from dhs_gen.config import StrictModel
from dhs_gen.injection.artifacts import ArtifactDraw, compose_injection, draw_batch, get_profile
from dhs_gen.injection.hardneg import seeded_sector_plan
from dhs_gen.injection.metric_kernels import crop_and_outer_pixels
from dhs_gen.injection.metrics import (
    NOISE_MAX_LAG,
    arc_metrics,
    count_images,
    noise_autocovariance,
    outer_pixel_index,
    outer_pixel_sigma,
)
from dhs_gen.injection.streams import generators
from dhs_gen.io.stamps import (
    CANONICAL_MAGIC,
    StampDecodeError,
    decode_canonical_image,
    decode_stamp_npz,
    encode_stamp,
    stamp_array,
)
from dhs_gen.schemas import STATUS_OK, conform, get_dataset

RENDER_CHUNK = 128
STREAM_POISSON, STREAM_ARTIFACTS, STREAM_SHUFFLE = 1, 2, 3
SOURCE_MODES = ("sersic", "cosmos", "sersic_clumps")
SOURCE_SEED = "phase4c-source"  # image-source draws: row_rng(SOURCE_SEED, task_id)


class InjectConfig(StrictModel):
    """Phase 4c rendering options."""

    stamp_size: int = Field(64, ge=8, description="output crop side [pixels]")
    supersampling: int = Field(4, ge=1)
    backend: Literal["fast", "lenstronomy"] = "fast"
    pixel_scale: float = PIXEL_SCALE_ARCSEC
    arc_poisson: bool = False
    gain_e_per_nmgy: float = Field(150.0, gt=0, description="electrons per nanomaggy for arc Poisson noise")
    max_central_bad_frac: float = Field(0.02, ge=0, le=1, description="cutout_ok: central half-side NaN fraction")


def _blob_views(column: pa.ChunkedArray) -> List[memoryview | None]:
    """The values of a binary column as zero-copy memoryviews of its Arrow buffers (None for
    nulls); each view keeps its buffer alive. ``to_pylist`` would copy every ~120 KB cutout."""
    views: List[memoryview | None] = []
    for chunk in column.chunks:
        if not len(chunk):
            continue
        if not (pa.types.is_binary(chunk.type) or pa.types.is_large_binary(chunk.type)):
            chunk = chunk.cast(pa.binary())  # e.g. a column of nulls
        _, offsets, data = chunk.buffers()
        width = 8 if pa.types.is_large_binary(chunk.type) else 4
        ends = np.frombuffer(offsets, f"<i{width}", len(chunk) + 1, chunk.offset * width).tolist()
        values = memoryview(data if data is not None else b"").cast("B")  # unsigned bytes, as in bytes
        valid = chunk.is_valid().to_pylist() if chunk.null_count else [True] * len(chunk)
        views.extend(values[a:b] if ok else None for a, b, ok in zip(ends[:-1], ends[1:], valid))
    return views


def _decode(blob) -> np.ndarray:
    """float32 (C, H, W) image of a stamp blob (bytes or a memoryview): a read-only view of a
    canonical blob, any legacy layout decoded; StampDecodeError."""
    if blob[:8] == CANONICAL_MAGIC:
        return decode_canonical_image(blob)
    return decode_stamp_npz(blob, nan_policy="report").image


def _column(table: pa.Table, name: str, n: int, dtype=np.float64) -> np.ndarray:
    if name not in table.column_names:
        return np.full(n, np.nan, dtype=dtype)
    return table.column(name).to_numpy(zero_copy_only=False).astype(dtype)


def _decode_host(blob, size: int):
    """(float32 (3, S0, S0) image, None) of a host cutout blob, or (None, bad_cutout reason)."""
    try:
        img = _decode(blob)
    except StampDecodeError as exc:
        return None, f"bad_cutout: {exc}"
    if img.ndim != 3 or img.shape[0] != 3 or img.shape[1] != img.shape[2] or img.shape[1] < size:
        return None, f"bad_cutout: shape {img.shape}, need (3, S, S) with S >= {size}"
    return img, None


def _centre_crop(s0: int, size: int):
    """(first row and column of the centre crop of side ``size`` of an (S0, S0) cutout, offset
    [pixels] of the cutout centre from the crop centre)."""
    a = (s0 - size) // 2
    return a, (s0 - 1) / 2.0 - (a + (size - 1) / 2.0)


HOST_CHUNK = 16  # hosts measured per call (~2 MB of 101-px cutouts, about one core's L2: read while still cached)


class _Hosts:
    """Decoded, cropped host stamps of a batch with their noise, bad-pixel fractions and status.

    A host repeated in the batch (several injections per host) is decoded once; its noise σ is
    measured on the full cutout (:func:`outer_sigma`'s σ: the crop and the outer-annulus pixels
    are read in one pass, :func:`crop_and_outer_pixels`), and so is its r-band noise
    autocovariance (:func:`noise_autocovariance`, for the arc aperture S/N)."""

    def __init__(self, host_ids: List, blobs: List, size: int, max_central_bad: float, status: np.ndarray):
        n = len(blobs)
        self.images = np.empty((n, 3, size, size), dtype=np.float32)  # a measured crop or zeros (below)
        self.sigma = np.full((n, 3), np.nan)
        self.acov_r = np.full((n, 2 * NOISE_MAX_LAG + 1, 2 * NOISE_MAX_LAG + 1), np.nan)
        self.offset_pix = np.zeros(n)
        self.bad_frac = np.full(n, np.nan)
        self.ok = np.zeros(n, dtype=bool)
        first: Dict[object, int] = {}
        rep = np.arange(n)
        full: Dict[int, list] = {}
        for i, blob in enumerate(blobs):
            if status[i] != STATUS_OK:
                continue
            if blob is None:
                status[i] = "missing_cutout"
                continue
            rep[i] = first.setdefault((host_ids[i], len(blob)), i)
            if rep[i] != i:
                continue
            img, reason = _decode_host(blob, size)  # a view: no pixel read yet
            if img is None:
                status[i] = reason
                continue
            full.setdefault(img.shape[1], []).append((i, img))
        c = size // 4  # the central region: at least c pixels from every edge of the crop
        measured = np.zeros(n, dtype=bool)
        for s0, group in full.items():  # by cutout size, a few hosts at a time: each cutout is read while in cache
            rows = np.array([i for i, _ in group])
            bad = np.empty((len(group), 2), np.int64)  # (non-finite pixels of the crop, of its central region)
            a, offset = _centre_crop(s0, size)
            index, row_start = outer_pixel_index(s0)
            pix = np.empty((HOST_CHUNK, 3, len(index)), np.float32)  # outer-annulus pixels of a chunk
            for start in range(0, len(group), HOST_CHUNK):
                chunk = group[start:start + HOST_CHUNK]
                for k, (i, img) in enumerate(chunk):  # the crop (non-finite pixels as 0) and the outer pixels
                    bad[start + k] = crop_and_outer_pixels(img, a, size, c, index, row_start, self.images[i], pix[k])
                self.sigma[rows[start:start + HOST_CHUNK]] = outer_pixel_sigma(pix[:len(chunk)])
                self.acov_r[rows[start:start + HOST_CHUNK]] = noise_autocovariance([img[1] for _, img in chunk])
            measured[rows] = True
            self.offset_pix[rows] = offset  # one cutout size: one offset
            self.bad_frac[rows] = bad[:, 0] / (3 * size * size)
            self.ok[rows] = bad[:, 1] / (3 * (size - 2 * c) ** 2) < max_central_bad
            status[rows[~self.ok[rows]]] = "bad_cutout: central non-finite fraction too high"
        self.images[~measured] = 0.0  # (zeroing the whole batch's array had cost more than its crops)
        dup = np.flatnonzero(rep != np.arange(n))
        if len(dup):
            src = rep[dup]
            for name in ("images", "sigma", "acov_r", "offset_pix", "bad_frac", "ok"):
                getattr(self, name)[dup] = getattr(self, name)[src]
            status[dup] = status[src]


def _source_batch(mode: str, source: Dict[str, np.ndarray], task_ids: np.ndarray, pick: np.ndarray) -> dict:
    """The source batch of rows ``pick``: the manifest's Sérsic parameters, or for an image
    generator (cosmos, sersic_clumps) its per-task draw with the manifest's position and fluxes."""
    sub = {k: v[pick] for k, v in source.items()}
    if mode == "sersic":
        return dict(sub, kind="sersic")
    from dhs_gen.sources import get_source

    batch = get_source(mode).sample_rows(SOURCE_SEED, task_ids[pick].tolist(), theta_E=sub.pop("theta_E"),
                                         center_x=sub["center_x"], center_y=sub["center_y"])
    batch.update({k: sub[k] for k in ("center_x", "center_y", "flux_g", "flux_r", "flux_z")})
    return batch


def _render(lens: Dict[str, np.ndarray], source: Dict[str, np.ndarray], psf: np.ndarray, cfg: InjectConfig,
            status: np.ndarray, rows: np.ndarray, modes: np.ndarray, task_ids: np.ndarray, arcs: np.ndarray,
            idents: np.ndarray) -> None:
    """Render the arcs of ``rows`` into ``arcs`` (B, 3, H, W) and the COSMOS catalogue IDENT of
    each row's template into ``idents`` (B,) (other generators leave it), by source mode in
    fixed-size chunks; a chunk that fails is redone row by row, and a row that fails is zero with
    status ``render_error: ...``. ``rows`` must be ascending and distinct (np.flatnonzero's): then a
    chunk whose first and last rows span its length is consecutive rows, rendered in place into
    their slice of ``arcs``; a chunk that fails after writing there is redone row by row, each
    row's render overwriting its whole stamp."""
    from dhs_gen.lensing import LensingInputError
    from dhs_gen.sources import SourceError, render_lensed_source

    kwargs = dict(stamp_size=cfg.stamp_size, pixel_scale=cfg.pixel_scale, supersampling=cfg.supersampling,
                  backend=cfg.backend)
    src = dict(source, theta_E=lens["theta_E"])

    def render(pick):
        batch = _source_batch(modes[pick[0]], src, task_ids, pick)
        run = pick[-1] - pick[0] + 1 == len(pick)  # consecutive rows: their slice of arcs is the output
        out = arcs[pick[0]:pick[-1] + 1] if run else None
        images = render_lensed_source({k: v[pick] for k, v in lens.items()}, batch, psf[pick], out=out, **kwargs)
        if not run:
            arcs[pick] = images
        if "cosmos_ident" in batch:
            idents[pick] = batch["cosmos_ident"]

    for mode in np.unique(modes[rows]):
        mine = rows[modes[rows] == mode]
        for start in range(0, len(mine), RENDER_CHUNK):
            pick = mine[start:start + RENDER_CHUNK]
            try:
                render(pick)
            except (LensingInputError, SourceError):
                for j in pick:
                    try:
                        render(np.array([j]))
                    except (LensingInputError, SourceError) as exc:
                        arcs[j] = 0.0
                        status[j] = f"render_error: {exc}"


def _products(hosts: np.ndarray, arcs: np.ndarray, rows: np.ndarray, lens: Dict[str, np.ndarray],
              fwhm_pix: np.ndarray, seeds: np.ndarray, draws: List, task_ids: List, cfg: InjectConfig) -> dict:
    """Encoded positive, control and hard-negative stamps of ``rows`` (Arrow binary arrays, null
    elsewhere): optional arc Poisson noise, then each row's azimuthal shuffle and its artifact draw
    applied to all three in one compiled pass (compose_injection), the stamps written straight into
    the blobs."""
    pix, rows = cfg.pixel_scale, np.sort(rows)  # the stamps of stamp_array come in row order
    arc, arc_rows = arcs, rows
    if cfg.arc_poisson:  # (a copy)
        arc, arc_rows = arcs[rows], np.arange(len(rows))
        for r, rng in enumerate(generators(seeds[rows], STREAM_POISSON)):
            counts = np.clip(arc[r], 0.0, None).astype(np.float64) * cfg.gain_e_per_nmgy
            arc[r] = (rng.poisson(counts) / cfg.gain_e_per_nmgy).astype(np.float32)
    centers = np.stack([lens["center_x"][rows] / pix, lens["center_y"][rows] / pix], axis=1)
    plan = seeded_sector_plan(lens["theta_E"][rows] / pix, fwhm_pix[rows], seeds[rows], STREAM_SHUFFLE)
    out, images = {}, []
    picked = set(rows.tolist())
    for name, kind in (("stamp", "positive"), ("ctrl_stamp", "control"), ("hardneg_stamp", "hard_negative")):
        metas = [{"task_id": task_ids[i], "kind": kind} if i in picked else None for i in range(len(hosts))]
        out[name], stamps = stamp_array(hosts.shape[1:], "grz", metas)
        images.append(stamps)
    compose_injection(hosts, rows, arc, arc_rows, centers, plan, [draws[i] for i in rows], images)
    return out


def attach_provider_cutouts(table: pa.Table, provider, size: int = 101) -> pa.Table:
    """``table`` plus ``cutout`` (canonical blob) and ``cutout_psfsize_{g,r,z}`` [arcsec] fetched from
    a CutoutProvider (each distinct host once); a failed fetch leaves a null cutout and its reason
    in ``cutout_status``."""
    from dhs_gen.survey import SurveyError

    host_ids = table.column("host_id").to_pylist()
    ra, dec = table.column("ra").to_pylist(), table.column("dec").to_pylist()
    fetched: Dict[str, tuple] = {}
    for h, a, d in zip(host_ids, ra, dec):
        if h in fetched:
            continue
        try:
            cut = provider.get_cutout(a, d, size=size, galaxy_id=h)
            fetched[h] = (encode_stamp(cut.image, cut.bands), np.asarray(cut.psf_fwhm, np.float64), STATUS_OK)
        except SurveyError as exc:
            fetched[h] = (None, np.full(3, np.nan), f"cutout_error: {exc.reason}")
    rows = [fetched[h] for h in host_ids]
    table = table.append_column("cutout", pa.array([r[0] for r in rows], pa.binary()))
    table = table.append_column("cutout_status", pa.array([r[2] for r in rows], pa.string()))
    psf = np.array([r[1] for r in rows]).reshape(len(rows), 3)
    for j, b in enumerate("grz"):
        table = table.append_column(f"cutout_psfsize_{b}", pa.array(psf[:, j]))
    return table


CUTOUT_FILE, CUTOUT_ROW = "_cutout_file", "_cutout_row"  # a host cutout's address in a cutout_index dataset
CUTOUT_COLUMNS = ["galaxy_id", "cutout", "status", "psfsize_g", "psfsize_r", "psfsize_z"]


def cutout_reader():
    """A :class:`dhs_gen.io.parquet_rows.ParquetRowReader` of a ``cutout_index`` dataset's
    :data:`CUTOUT_COLUMNS` (``galaxy_id`` and ``cutout`` required) for :func:`attach_dataset_cutouts`."""
    from dhs_gen.io.parquet_rows import ParquetRowReader

    return ParquetRowReader(CUTOUT_COLUMNS, required=("galaxy_id", "cutout"))


def attach_dataset_cutouts(table: pa.Table, reader) -> pa.Table:
    """``table`` (with the address columns CUTOUT_FILE, CUTOUT_ROW of each host's row in a
    ``cutout_index`` dataset; null where the host has none) plus ``cutout``, ``cutout_status`` and
    ``cutout_psfsize_{g,r,z}`` [arcsec] read by ``reader`` (:func:`cutout_reader`)."""
    rows = table.column(CUTOUT_ROW).fill_null(0).to_numpy(zero_copy_only=False)
    hosts, found = reader.take(table.column(CUTOUT_FILE).to_pylist(), rows)
    ids, wanted = np.asarray(hosts.column("galaxy_id").to_pylist(), object), table.column("host_id").to_pylist()
    wrong = np.flatnonzero(found & (ids != np.asarray(wanted, object)))
    if len(wrong):
        raise ValueError(f"cutout address of host {wanted[wrong[0]]} points at {ids[wrong[0]]}: "
                         "the cutout dataset changed while the job ran")
    def column(name, dtype):  # optional columns (status, psfsize_*) may be absent from the dataset
        return hosts.column(name).cast(dtype) if name in hosts.column_names else pa.nulls(len(hosts), dtype)

    table = table.drop_columns([CUTOUT_FILE, CUTOUT_ROW])
    table = table.append_column("cutout", column("cutout", pa.binary()))
    table = table.append_column("cutout_status", column("status", pa.string()))
    for b in "grz":
        table = table.append_column(f"cutout_psfsize_{b}", column(f"psfsize_{b}", pa.float64()))
    return table


def _input_status(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(status, source mode) per row before any pixel is read: the manifest's status (prefixed),
    an unknown ``source_mode``, or the cutout provider's ``cutout_status``."""
    n = table.num_rows
    status = np.array([s if s == STATUS_OK else f"manifest: {s}" for s in table.column("status").to_pylist()],
                      dtype=object)
    modes = np.array([m or "sersic" for m in table.column("source_mode").to_pylist()] if "source_mode" in
                     table.column_names else ["sersic"] * n, dtype=object)
    for i in np.flatnonzero(~np.isin(modes, SOURCE_MODES)):
        if status[i] == STATUS_OK:
            status[i] = f"unknown source_mode: {modes[i]}"
    if "cutout_status" in table.column_names:
        for i, reason in enumerate(table.column("cutout_status").to_pylist()):
            if status[i] == STATUS_OK and reason not in (None, STATUS_OK):
                status[i] = reason
    return status, modes


def _host_psf(table: pa.Table, status: np.ndarray) -> np.ndarray:
    """(B, 3) PSF FWHM [arcsec]: the cutout's own ``cutout_psfsize_*``, else the manifest's
    catalogue ``psfsize_*``; rows with neither get status ``missing_psf``."""
    n = table.num_rows
    psf = np.stack([_column(table, f"cutout_psfsize_{b}", n) for b in "grz"], axis=1)
    fallback = np.stack([_column(table, f"psfsize_{b}", n) for b in "grz"], axis=1)
    psf = np.where(np.isfinite(psf) & (psf > 0), psf, fallback)
    status[(status == STATUS_OK) & ~(np.isfinite(psf) & (psf > 0)).all(axis=1)] = "missing_psf"
    return psf


def _artifact_draws(table: pa.Table, status: np.ndarray, sigma: np.ndarray, psf: np.ndarray, size: int):
    """(per-row Gen8 artifact draw or None, (B, 3) PSF FWHM used [arcsec] = psf x the draw's PSF
    scale; NaN for rows not rendered)."""
    n = table.num_rows
    seeds = table.column("task_seed64").to_numpy(zero_copy_only=False)
    profiles = table.column("artifact_profile").to_pylist() if "artifact_profile" in table.column_names \
        else [None] * n
    draws: List[ArtifactDraw | None] = [None] * n
    psf_used = np.full((n, 3), np.nan)
    rows = np.flatnonzero(status == STATUS_OK)
    for i, draw in zip(rows, draw_batch([get_profile(profiles[i] or "none") for i in rows],
                                        generators(seeds[rows], STREAM_ARTIFACTS), sigma[rows], (3, size, size))):
        draws[i] = draw
    if len(rows):
        psf_used[rows] = psf[rows] * np.stack([draws[i].psf_scale for i in rows])
    return draws, psf_used


def _lens_and_source(table: pa.Table, offset_arcsec: np.ndarray):
    """(lens, source) parameter dicts [arcsec, nanomaggies] from the manifest columns, the lens
    moved onto the host's centre pixel (``offset_arcsec``) and the source placed relative to it."""
    n = table.num_rows
    lens = {"theta_E": _column(table, "theta_e_arcsec", n),
            "e1": np.nan_to_num(_column(table, "lens_e1", n)), "e2": np.nan_to_num(_column(table, "lens_e2", n)),
            "center_x": np.nan_to_num(_column(table, "lens_center_x", n)) + offset_arcsec,
            "center_y": np.nan_to_num(_column(table, "lens_center_y", n)) + offset_arcsec,
            "gamma1": np.nan_to_num(_column(table, "shear_gamma1", n)),
            "gamma2": np.nan_to_num(_column(table, "shear_gamma2", n))}
    source = {"R_sersic": _column(table, "src_reff_arcsec", n), "n_sersic": _column(table, "src_n_sersic", n),
              "e1": _column(table, "src_e1", n), "e2": _column(table, "src_e2", n),
              "center_x": lens["center_x"] + _column(table, "src_x_arcsec", n),
              "center_y": lens["center_y"] + _column(table, "src_y_arcsec", n),
              **{f"flux_{b}": _column(table, f"src_flux_{b}", n) for b in "grz"}}
    return lens, source


METRIC_COLUMNS = ("arc_snr_sum", "arc_snr_max", "magnification", "lensed_hlr_arcsec", "lensed_mag_g", "lensed_mag_r",
                  "lensed_mag_z")


def _metrics(arcs: np.ndarray, rows: np.ndarray, hosts: _Hosts, lens: dict, source: dict, pix: float):
    """(arc metrics {column: (B,) float, NaN where not rendered}, image count (B,) int, -1 where
    not rendered) of the rendered ``rows``."""
    n = len(arcs)
    metrics = {k: np.full(n, np.nan) for k in METRIC_COLUMNS}
    n_images = np.full(n, -1, dtype=np.int64)
    if len(rows):
        rendered = arcs if len(rows) == n else arcs[rows]  # rows are sorted and distinct: all rows = no copy
        for key, values in arc_metrics(rendered, hosts.sigma[rows, 1], source["flux_r"][rows], pix,
                                       noise_acov_r=hosts.acov_r[rows]).items():
            metrics[key][rows] = values
        n_images[rows] = count_images({k: v[rows] for k, v in lens.items()}, source["center_x"][rows],
                                      source["center_y"][rows])
    return metrics, n_images


def _output_table(table: pa.Table, cfg: InjectConfig, status: np.ndarray, hosts: _Hosts, lens: dict,
                  psf_used: np.ndarray, cosmos_ident: np.ndarray, products: dict, metrics: dict,
                  n_images: np.ndarray) -> pa.Table:
    """The ``stamps`` table: the manifest's design columns, the products and every per-row value."""
    n = table.num_rows
    design = set(get_dataset("injection_manifest").schema.names) - {"status"}
    out = {name: table.column(name) for name in table.column_names if name in design}
    out.update({
        "stamp_size": pa.array(np.full(n, cfg.stamp_size, np.int32)),
        "cosmos_index": pa.array(cosmos_ident.astype(np.int32), mask=cosmos_ident < 0),
        **products,  # Arrow binary arrays from stamp_array
        "cutout_ok": pa.array(hosts.ok), "n_images": pa.array(np.where(n_images >= 0, n_images, 0).astype(np.int8),
                                                              mask=n_images < 0),
        "x_ratio": pa.array(lens["theta_E"] / psf_used[:, 1], mask=~np.isfinite(psf_used[:, 1])),
        "bad_pixel_frac": pa.array(hosts.bad_frac, mask=~np.isfinite(hosts.bad_frac)),
        "status": pa.array(status.tolist(), pa.string()),
    })
    for key, values in metrics.items():
        out[key] = pa.array(values, mask=~np.isfinite(values))
    for j, b in enumerate("grz"):
        out[f"psf_fwhm_used_{b}"] = pa.array(psf_used[:, j], mask=~np.isfinite(psf_used[:, j]))
    return conform(pa.table(out), "stamps")


def inject_batch(batch, cfg: InjectConfig) -> pa.Table:
    """Stamps and metrics (``stamps`` schema) for a batch of manifest rows with host cutouts:
    status checks, host decoding, PSF (with fallback), artifact draws, rendering, metrics, the
    three products, output table — one helper each."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    n, size, pix = table.num_rows, cfg.stamp_size, cfg.pixel_scale
    status, modes = _input_status(table)
    blobs = _blob_views(table.column("cutout")) if "cutout" in table.column_names else [None] * n
    hosts = _Hosts(table.column("host_id").to_pylist(), blobs, size, cfg.max_central_bad_frac, status)
    psf = _host_psf(table, status)
    draws, psf_used = _artifact_draws(table, status, hosts.sigma, psf, size)
    lens, source = _lens_and_source(table, hosts.offset_pix * pix)

    rows = np.flatnonzero(status == STATUS_OK)
    arcs = np.empty((n, 3, size, size), dtype=np.float32)
    arcs[status != STATUS_OK] = 0.0  # rows not rendered stay empty
    cosmos_ident = np.full(n, -1, dtype=np.int64)
    task_ids = table.column("task_id").to_pylist()
    _render(lens, source, psf_used, cfg, status, rows, modes, np.asarray(task_ids, dtype=object), arcs, cosmos_ident)
    rows = np.flatnonzero(status == STATUS_OK)  # render errors are out
    metrics, n_images = _metrics(arcs, rows, hosts, lens, source, pix)
    seeds = table.column("task_seed64").to_numpy(zero_copy_only=False)
    products = _products(hosts.images, arcs, rows, lens, psf_used[:, 1] / pix, seeds, draws, task_ids, cfg)
    return _output_table(table, cfg, status, hosts, lens, psf_used, cosmos_ident, products, metrics, n_images)
