"""Phase 4a: hosts × a design → the injection manifest (one row per injection, every parameter).

Rows are generated per host (a bounded count per host), never by a cross join of hosts and
configurations, unless the design asks for every cell on every host (``all_cells_per_host``).
A row's identity is ``task_id`` = SHA-256 hex of its design key
``"{experiment_id}|{seed}|{design}|{host_id}|{cell}|{replicate}"``; its seed is
``task_seed64 = stable_hash64(seed, task_id)``, and every random parameter is drawn from
``numpy.random.default_rng(task_seed64)``, so a row never depends on its partition.

Lens redshift: a row's ``z_l`` is its host's redshift (:func:`host_plan`: the photo-z of
:mod:`dhs_gen.survey.photoz` from the host's g, r, z, W1 fluxes, or a survey photo-z column named
in ``host_redshift``), with its error ``z_l_err`` and ``z_l_source``. A grid host is assigned the
z_l bin holding its redshift and draws its cells among that bin's θ_E × magnitude cells, so the
z_l axis of C(θ_E, z_l) is made of hosts at those redshifts (their light, size and colour); the
row records the cell's point (``z_l_requested``) and bin (``z_l_lo``, ``z_l_hi``). Hosts outside
every bin, or without a redshift, give no rows (:func:`host_plan` says why, per host).

Host roles: ``host_role`` = ``selection`` when stable_uniform(salt, host_id) < selection_fraction,
else ``train`` — a property of the host alone (not of the seed or the design), so a training
manifest (``draw: train``) and a selection grid (``draw: selection``) never share a host.
"""
from __future__ import annotations

import hashlib
import math
from typing import Any, Dict, List, Literal, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from dhs_gen.config import ConfigError, StrictModel
from dhs_gen.determinism import stable_hash64, stable_uniform
from dhs_gen.injection.mixer import VariantSpec, mix_variants
from dhs_gen.injection.priors import N_UNIFORMS, grid_spec, prior_spec, sample_parameters
from dhs_gen.schemas import STATUS_OK, conform
from dhs_gen.sources.priors import SOURCE_G_MINUS_R, SOURCE_R_MINUS_Z
from dhs_gen.survey.photoz import ESTIMATOR as PHOTOZ_ESTIMATOR
from dhs_gen.survey.photoz import photo_z_from_fluxes
from dhs_gen.units import psfdepth_ivar_to_mag5


class HostRedshiftSpec(StrictModel):
    """Where a host's redshift comes from. ``column`` None: the template photo-z
    (:mod:`dhs_gen.survey.photoz`) from ``flux_g/r/z/w1`` [nmgy] (and ``flux_ivar_*`` when present);
    else the survey's own photo-z column (e.g. DR10 ``z_phot_median``) and its 1σ ``err_column``.
    A ``random`` design on hosts with neither (z_l is then only a label, e.g. galleries) draws z_l
    from the prior and says so (``z_l_source`` = ``prior``); a ``grid`` design refuses them."""

    column: Optional[str] = None  # noqa: UP045 (pydantic on Python 3.9)
    err_column: Optional[str] = None  # noqa: UP045


class HostRoleSpec(StrictModel):
    """The explicit split of hosts between training and the selection function."""

    selection_fraction: float = Field(0.3, ge=0, le=1, description="share of hosts with role 'selection'")
    salt: str = Field("dhs-host-role-v1", min_length=1, description="hash salt; keep it fixed across manifests")
    draw: Literal["all", "train", "selection"] = Field("all", description="which hosts this manifest draws")


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
    host_redshift: HostRedshiftSpec = Field(default_factory=HostRedshiftSpec)
    host_roles: HostRoleSpec = Field(default_factory=HostRoleSpec)
    nonstandard_source_colours: bool = Field(
        False, description="allow source colours other than the project prior (a warning in the summary)")

    @model_validator(mode="after")
    def _check(self):
        prior = prior_spec(self.prior_preset, self.priors)
        if self.design == "grid":
            grid = grid_spec(self.grid_preset, self.grid)
            prior.check_z_l(float(grid.z_l_bin_edges[-1]))
        if source_colour_summary(self)["warning"] and not self.nonstandard_source_colours:
            raise ConfigError(f"source colours g-r {tuple(prior.src_g_minus_r)}, r-z {tuple(prior.src_r_minus_z)} "
                              f"differ from the project prior {SOURCE_G_MINUS_R}, {SOURCE_R_MINUS_Z} that training "
                              "uses; set nonstandard_source_colours: true to choose this explicitly")
        return self


def source_colour_summary(cfg: ManifestConfig) -> dict:
    """The manifest's source-colour prior, whether it is the project's, and the warning when not."""
    prior = prior_spec(cfg.prior_preset, cfg.priors)
    g_r, r_z = tuple(prior.src_g_minus_r), tuple(prior.src_r_minus_z)
    standard = np.allclose(g_r, SOURCE_G_MINUS_R) and np.allclose(r_z, SOURCE_R_MINUS_Z)
    warning = None if standard else (
        f"source colours g-r ~ N{g_r}, r-z ~ N{r_z} [mag] differ from the project prior g-r ~ N{SOURCE_G_MINUS_R}, "
        f"r-z ~ N{SOURCE_R_MINUS_Z} used for training: completeness measured with these sources does not "
        "describe the population the model was trained and tuned on")
    return {"prior_preset": cfg.prior_preset, "g_minus_r": list(g_r), "r_minus_z": list(r_z),
            "standard": bool(standard), "warning": warning}


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


def host_roles(host_ids, spec: HostRoleSpec) -> np.ndarray:
    """``selection`` or ``train`` per host id: stable_uniform(salt, host_id) < selection_fraction."""
    u = stable_uniform(spec.salt, list(host_ids))
    return np.where(u < spec.selection_fraction, "selection", "train").astype(object)


def host_redshifts(hosts: pa.Table, spec: HostRedshiftSpec, design: str = "grid") -> tuple[np.ndarray, np.ndarray, str]:
    """(z, z_err, source label) of normalised hosts; NaN where a host has none (all NaN with label
    ``prior`` for a random design on hosts without photometry)."""
    cols = set(hosts.column_names)

    def values(name):
        return np.asarray(hosts.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)

    if spec.column:
        name, err = spec.column.lower(), (spec.err_column or "").lower()
        missing = [c for c in (name, err) if c and c not in cols]
        if missing:
            raise ConfigError(f"host_redshift: host table lacks {missing}; has {sorted(cols)[:30]}")
        z = values(name)
        return np.where(z > 0, z, np.nan), (values(err) if err else np.full(len(z), np.nan)), f"column:{name}"
    fluxes = [f"flux_{b}" for b in ("g", "r", "z", "w1")]
    missing = [c for c in fluxes if c not in cols]
    if missing and design == "random" and len(missing) == len(fluxes):
        return np.full(hosts.num_rows, np.nan), np.full(hosts.num_rows, np.nan), Z_L_FROM_PRIOR
    if missing:
        raise ConfigError(f"host table lacks {missing} for the photo-z of z_l (or name a redshift column in "
                          f"host_redshift.column); has {sorted(cols)[:30]}")
    ivars = [f"flux_ivar_{b}" for b in ("g", "r", "z", "w1")]
    ivar = [values(c) for c in ivars] if all(c in cols for c in ivars) else None
    z, err = photo_z_from_fluxes(*(values(c) for c in fluxes), ivars=ivar)
    return z, err, f"photoz:{PHOTOZ_ESTIMATOR}"


Z_L_FROM_PRIOR = "prior"
HOST_PLAN_STATUSES = ("ok", "not_drawn: host_fraction", "not_drawn: host_role", "no_redshift", "outside_z_l_bins")


def host_plan(hosts: pa.Table, cfg: ManifestConfig) -> pa.Table:
    """Normalised hosts with ``host_z``, ``host_z_err``, ``z_l_source``, ``host_role``, ``z_bin``
    (grid z_l bin, -1 for the random design), ``z_bin_prob`` (the probability that the host's true
    redshift lies in that bin, for a Gaussian error ``host_z_err``: the bin's expected purity) and
    ``host_status`` (one of ``HOST_PLAN_STATUSES``; only ``ok`` hosts get manifest rows)."""
    hosts = normalize_hosts(hosts)
    ids = hosts.column("host_id").to_pylist()
    z, z_err, source = host_redshifts(hosts, cfg.host_redshift, cfg.design)
    roles = host_roles(ids, cfg.host_roles)
    status = np.full(len(ids), "ok", dtype=object)
    prob = np.full(len(ids), np.nan)
    if cfg.design == "grid":
        from scipy.special import ndtr

        grid = grid_spec(cfg.grid_preset, cfg.grid)
        edges, z_bin = grid.z_l_bin_edges, grid.z_l_bin(z)
        status[z_bin < 0] = "outside_z_l_bins"
        inside = (z_bin >= 0) & (z_err > 0)
        b = z_bin[inside]
        prob[inside] = ndtr((edges[b + 1] - z[inside]) / z_err[inside]) - ndtr((edges[b] - z[inside]) / z_err[inside])
    else:
        z_bin = np.full(len(ids), -1, dtype=np.int64)
    if source != Z_L_FROM_PRIOR:
        status[~np.isfinite(z)] = "no_redshift"
    if cfg.host_roles.draw != "all":
        status[roles != cfg.host_roles.draw] = "not_drawn: host_role"
    if cfg.host_fraction < 1.0:
        status[stable_uniform(f"{cfg.seed}:hosts", ids) >= cfg.host_fraction] = "not_drawn: host_fraction"
    return (hosts.append_column("host_z", pa.array(z, pa.float64()))
            .append_column("host_z_err", pa.array(z_err, pa.float64(), mask=~np.isfinite(z_err)))
            .append_column("z_l_source", pa.array([source] * len(ids), pa.string()))
            .append_column("host_role", pa.array(roles.tolist(), pa.string()))
            .append_column("z_bin", pa.array(np.asarray(z_bin, np.int64)))
            .append_column("z_bin_prob", pa.array(prob, pa.float64(), mask=~np.isfinite(prob)))
            .append_column("host_status", pa.array(status.tolist(), pa.string())))


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
    hosts = host_plan(hosts, cfg)
    hosts = hosts.filter(pc.equal(hosts.column("host_status"), "ok"))
    n_hosts = hosts.num_rows
    host_ids = np.asarray(hosts.column("host_id").to_pylist(), dtype=object)
    z_host = hosts.column("host_z").to_numpy()
    prior = prior_spec(cfg.prior_preset, cfg.priors)
    grid = grid_spec(cfg.grid_preset, cfg.grid) if cfg.design == "grid" else None
    per_host = grid.n_sub_cells if (grid is not None and cfg.all_cells_per_host) else cfg.injections_per_host
    host_index = np.repeat(np.arange(n_hosts), per_host)
    replicate = np.tile(np.arange(per_host), n_hosts)
    if grid is None:
        cells = np.full(len(host_index), -1, dtype=np.int64)
    else:
        if cfg.all_cells_per_host:
            sub, replicate = replicate.copy(), np.zeros_like(replicate)
        else:
            n_sub = grid.n_sub_cells
            start = np.array([stable_hash64(f"{cfg.seed}:cell", h) % n_sub for h in host_ids], dtype=np.int64)
            sub = (start[host_index] + replicate * _coprime_stride(n_sub)) % n_sub
        cells = grid.cell_index(hosts.column("z_bin").to_numpy()[host_index], sub)
    task_ids = task_ids_for(cfg.experiment_id, cfg.seed, cfg.design, host_ids[host_index], cells, replicate)
    seeds = np.array([stable_hash64(cfg.seed, t) for t in task_ids], dtype=np.int64)
    u = _row_uniforms(seeds)
    n = len(task_ids)
    if grid is None:
        from_prior = n_hosts and hosts.column("z_l_source")[0].as_py() == Z_L_FROM_PRIOR
        params = sample_parameters(u, prior, z_l=None if from_prior else z_host[host_index])
        z_req = z_lo = z_hi = np.full(n, np.nan)
    else:
        cell = grid.cell(cells)
        params = sample_parameters(u, prior, theta_e=cell["theta_e_arcsec"], z_l=z_host[host_index],
                                   mag_range=(cell["mag_lo"], cell["mag_hi"]))
        z_req, z_lo, z_hi = cell["z_l"], cell["z_l_lo"], cell["z_l_hi"]
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
    take = pa.array(host_index)
    columns.update({
        "z_l_requested": pa.array(z_req, mask=~np.isfinite(z_req)), "z_l_lo": pa.array(z_lo, mask=~np.isfinite(z_lo)),
        "z_l_hi": pa.array(z_hi, mask=~np.isfinite(z_hi)),
        "z_l_err": hosts.column("host_z_err").take(take),
        "z_l_source": hosts.column("z_l_source").take(take), "host_role": hosts.column("host_role").take(take),
    })
    if cfg.lens_model == "SIS":
        columns["lens_e1"] = np.zeros(n)
        columns["lens_e2"] = np.zeros(n)
    table = pa.table({k: (v if isinstance(v, (pa.Array, pa.ChunkedArray)) else pa.array(v))
                      for k, v in columns.items()})
    table = mix_variants(table, cfg.variants, cfg.seed)
    return conform(table, "injection_manifest")

