"""Phase 4a: hosts × a design → the injection manifest (one row per injection, every parameter).

Rows are generated per host (a bounded count per host), never by a cross join of hosts and
configurations, unless the design asks for every cell on every host (``all_cells_per_host``).
A row's identity is ``task_id`` = SHA-256 hex of its design key
``"{experiment_id}|{seed}|{design}|{host_id}|{cell}|{replicate}"``; its seed is
``task_seed64 = stable_hash64(seed, task_id)``, and every random parameter is drawn from
``numpy.random.default_rng(task_seed64)``, so a row never depends on its partition.
"""
from __future__ import annotations

import hashlib
import math
from typing import Any, Dict, List, Literal, Optional

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from dhs_gen.config import ConfigError, StrictModel
from dhs_gen.determinism import stable_hash64, stable_uniform
from dhs_gen.injection.mixer import VariantSpec, mix_variants
from dhs_gen.injection.priors import N_UNIFORMS, grid_spec, prior_spec, sample_parameters
from dhs_gen.schemas import STATUS_OK, conform
from dhs_gen.units import psfdepth_ivar_to_mag5


class ManifestConfig(StrictModel):
    """The phase 4a design (see docs/injection_jobs.md)."""

    experiment_id: str = "demo"
    seed: int = 42
    design: Literal["grid", "random"] = "random"
    grid_preset: Optional[str] = None  # noqa: UP045 (pydantic on Python 3.9)
    grid: Optional[Dict[str, List[float]]] = None  # noqa: UP045
    prior_preset: str = "dr10_blue"
    priors: Dict[str, Any] = Field(default_factory=dict)
    host_fraction: float = Field(1.0, gt=0, le=1, description="keep hosts with stable_uniform(seed, host_id) < f")
    injections_per_host: int = Field(1, ge=1, description="random: rows per host; grid: cells per host")
    all_cells_per_host: bool = Field(False, description="grid: every host gets every cell (explicit cross)")
    lens_model: Literal["SIE", "SIS"] = "SIE"
    stamp_size: int = Field(64, ge=8)
    bandset: Literal["grz"] = "grz"
    variants: List[VariantSpec] = Field(default_factory=lambda: [VariantSpec()])

    @model_validator(mode="after")
    def _check(self):
        prior = prior_spec(self.prior_preset, self.priors)
        if self.design == "grid":
            prior.check_z_l(max(grid_spec(self.grid_preset, self.grid).z_l))
        return self


_HOST_COPY = ("ra", "dec", "brickname", "healpix_128", "ebv",
              *[f"psfsize_{b}" for b in "grz"], *[f"psfdepth_{b}_mag5" for b in "grz"])


def normalize_hosts(hosts: pa.Table) -> pa.Table:
    """Host table with ``host_id``, ra/dec [deg], ``healpix_128`` (NESTED), ``region_split`` and
    depth as 5σ mag. Missing pixels/splits come from dhs_gen.catalog.splits (the legacy scheme).

    ``host_id`` comes from ``host_id`` or ``galaxy_id`` (else ``J{ra:.6f}{dec:+.6f}``); the split
    from ``region_split`` or ``split``; depth from ``psfdepth_{b}_mag5`` or, converted,
    ``psfdepth_{b}_ivar`` [nmgy^-2]. A bare ``psfdepth_{b}`` is refused (its unit is ambiguous).
    """
    hosts = hosts.rename_columns([n.lower() for n in hosts.column_names])
    missing = [c for c in ("ra", "dec") if c not in hosts.column_names]
    if missing:
        raise ConfigError(f"host table lacks {missing}; has {hosts.column_names[:20]}")
    cols = set(hosts.column_names)
    if "host_id" not in cols:
        if "galaxy_id" in cols:
            hosts = hosts.append_column("host_id", hosts.column("galaxy_id").cast(pa.string()))
        else:
            ra, dec = hosts.column("ra").to_numpy(), hosts.column("dec").to_numpy()
            hosts = hosts.append_column("host_id", pa.array([f"J{a:.6f}{d:+.6f}" for a, d in zip(ra, dec)]))
    if "region_split" not in cols and "split" in cols:
        hosts = hosts.append_column("region_split", hosts.column("split").cast(pa.string()))
    if "healpix_128" not in cols:
        from dhs_gen.catalog.splits import healpix_index

        ra, dec = hosts.column("ra").to_numpy(), hosts.column("dec").to_numpy()
        hosts = hosts.append_column("healpix_128", pa.array(healpix_index(ra, dec, nside=128)))
    if "region_split" not in hosts.column_names:
        from dhs_gen.catalog.splits import split_from_pixel

        split = split_from_pixel(hosts.column("healpix_128").to_numpy())
        hosts = hosts.append_column("region_split", pa.array(split.tolist(), pa.string()))
    for b in "grz":
        if f"psfdepth_{b}_mag5" in cols:
            continue
        if f"psfdepth_{b}_ivar" in cols:
            mag5 = psfdepth_ivar_to_mag5(hosts.column(f"psfdepth_{b}_ivar").to_numpy(zero_copy_only=False))
            hosts = hosts.append_column(f"psfdepth_{b}_mag5", pa.array(np.asarray(mag5, np.float32)))
        elif f"psfdepth_{b}" in cols:
            raise ConfigError(f"host column psfdepth_{b} is ambiguous (5σ mag in phase-4 tables, ivar in "
                              f"sweeps): rename it psfdepth_{b}_mag5 or psfdepth_{b}_ivar")
    return hosts


def task_ids_for(experiment_id: str, seed: int, design: str, host_ids, cells, replicates) -> List[str]:
    """SHA-256 hex of each row's design key (see module docstring)."""
    return [hashlib.sha256(f"{experiment_id}|{seed}|{design}|{h}|{c}|{r}".encode()).hexdigest()
            for h, c, r in zip(host_ids, cells, replicates)]


def _coprime_stride(n: int) -> int:
    """A stride near 0.618·n coprime with n, so a host's cells spread over the grid."""
    stride = max(1, int(round(0.6180339887 * n)))
    while math.gcd(stride, n) != 1:
        stride += 1
    return stride


def _row_uniforms(seeds: np.ndarray) -> np.ndarray:
    """(n, N_UNIFORMS) uniforms, row i from ``default_rng(seeds[i])``; a longer draw keeps its prefix."""
    return np.stack([np.random.default_rng(int(s)).random(N_UNIFORMS) for s in seeds]) if len(seeds) \
        else np.zeros((0, N_UNIFORMS))


def build_manifest(hosts: pa.Table, cfg: ManifestConfig) -> pa.Table:
    """Expand a batch of hosts into manifest rows (``injection_manifest`` schema)."""
    hosts = normalize_hosts(hosts)
    if cfg.host_fraction < 1.0:
        keep = stable_uniform(f"{cfg.seed}:hosts", hosts.column("host_id").to_pylist()) < cfg.host_fraction
        hosts = hosts.filter(pa.array(keep))
    n_hosts = hosts.num_rows
    host_ids = np.asarray(hosts.column("host_id").to_pylist(), dtype=object)
    prior = prior_spec(cfg.prior_preset, cfg.priors)
    grid = grid_spec(cfg.grid_preset, cfg.grid) if cfg.design == "grid" else None
    per_host = grid.n_cells if (grid is not None and cfg.all_cells_per_host) else cfg.injections_per_host
    host_index = np.repeat(np.arange(n_hosts), per_host)
    replicate = np.tile(np.arange(per_host), n_hosts)
    if grid is None:
        cells = np.full(len(host_index), -1, dtype=np.int64)
    elif cfg.all_cells_per_host:
        cells, replicate = replicate.copy(), np.zeros_like(replicate)
    else:
        start = np.array([stable_hash64(f"{cfg.seed}:cell", h) % grid.n_cells for h in host_ids], dtype=np.int64)
        cells = (start[host_index] + replicate * _coprime_stride(grid.n_cells)) % grid.n_cells
    task_ids = task_ids_for(cfg.experiment_id, cfg.seed, cfg.design, host_ids[host_index], cells, replicate)
    seeds = np.array([stable_hash64(cfg.seed, t) for t in task_ids], dtype=np.int64)
    u = _row_uniforms(seeds)
    if grid is None:
        params = sample_parameters(u, prior)
    else:
        cell = grid.cell(cells)
        params = sample_parameters(u, prior, theta_e=cell["theta_e_arcsec"], z_l=cell["z_l"],
                                   mag_range=(cell["mag_lo"], cell["mag_hi"]))
    n = len(task_ids)
    columns: Dict[str, Any] = {
        "task_id": task_ids, "experiment_id": [cfg.experiment_id] * n, "design": [cfg.design] * n,
        "host_id": host_ids[host_index].tolist(), "task_seed64": seeds,
        "lens_model": [cfg.lens_model] * n, "stamp_size": np.full(n, cfg.stamp_size, np.int32),
        "bandset": [cfg.bandset] * n, "status": [STATUS_OK] * n,
    }
    for name in ("region_split", *_HOST_COPY):
        if name in hosts.column_names:
            columns[name] = hosts.column(name).take(pa.array(host_index))
    columns.update(params)
    if cfg.lens_model == "SIS":
        columns["lens_e1"] = np.zeros(n)
        columns["lens_e2"] = np.zeros(n)
    table = pa.table({k: (v if isinstance(v, (pa.Array, pa.ChunkedArray)) else pa.array(v))
                      for k, v in columns.items()})
    table = mix_variants(table, cfg.variants, cfg.seed)
    return conform(table, "injection_manifest")

