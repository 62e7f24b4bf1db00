"""Phase 4c end to end vs the lenstronomy kernel alone, in stamps per second per core.

End to end = what one executor core does for the job: read the manifest and host-cutout Parquet
(distinct real-DR10-based 101x101 hosts, one per row), join them on host_id, run
:func:`dhs_gen.injection.inject_batch` batch by batch (the production ``configs/phase4c.yaml``
settings: fast renderer, 3 bands, 64x64, supersampling 4; metrics, hard negative, Gen8 "mild"
artifacts) and write the stamps Parquet (the job's default codec). Baseline, same run:
the lenstronomy renderer alone, used well (one PSF-less ImageModel, one image per stamp, each
band's kernel by fftconvolve; see bench_injection_engine), on the same lenses, sources and PSFs
(no I/O, no products); and the CPU share of each stage of the pipeline (cProfile). Both
are timed in CPU seconds of this process (``time.process_time``), which is per core and robust to
other load on the machine; each side is the best of several passes (baseline 4, pipeline
:data:`PIPELINE_PASSES`; the pipeline's median pass is reported too). The full run also runs the Spark job body under ``local[1]`` (warm
session) and reports rows per CPU second of the whole process tree (driver, JVM, Python workers;
from /proc), steady-state and whole-pass (see :func:`_spark_rates`), and per wall second.

The I/O choices are measured too (:func:`_codec_costs`): CPU and bytes per stamp of the stamps
shards in each codec the job offers, and CPU per row of reading the host cutouts by address from
a cutout file with plain blobs (what :func:`dhs_gen.storage.write_parquet` writes, the input above)
and from one with zstd blobs (Spark's codec).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.timing import entry

ROWS_PER_BATCH = 256
PRODUCTION_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "phase4c.yaml"


def _production_config():
    """The production phase-4c config (partitions and batch size set for one core)."""
    from dhs_gen.config import load_config
    from jobs.phase4c_inject import Phase4cConfig

    cfg = load_config(Phase4cConfig, str(PRODUCTION_CONFIG), [])
    return cfg.model_copy(update={"partitions": 1, "rows_per_batch": ROWS_PER_BATCH})


def _inputs(n: int, root: Path, seed: int = 0):
    """Write n distinct host cutouts (real DR10 cutouts + independent sky noise) and a manifest."""
    from dhs_gen.data_files import DATA_DIR
    from dhs_gen.injection.manifest import ManifestConfig, build_manifest
    from dhs_gen.injection.metrics import outer_sigma
    from dhs_gen.io.stamps import decode_stamp_npz, encode_stamp
    from dhs_gen.schemas import conform
    from dhs_gen.storage import write_parquet

    real = [decode_stamp_npz(f).image for f in sorted((DATA_DIR / "dr10_cutouts").glob("*.npz"))]
    sigma = outer_sigma(np.stack(real))
    rng = np.random.default_rng(seed)
    ids = [f"host{i:06d}" for i in range(n)]
    ra, dec = rng.uniform(0, 360, n), rng.uniform(-20, 30, n)
    # each blob's header carries its galaxy's meta, as the cutouts job writes it (jobs/cutouts.py via
    # dhs_gen.survey.cutout_batch): every header differs, as in production
    blobs = [encode_stamp(real[i % len(real)] + (0.3 * sigma[i % len(real)])[:, None, None]
                          * rng.standard_normal((3, 101, 101)).astype(np.float32), "grz",
                          {"galaxy_id": ids[i], "ra": float(ra[i]), "dec": float(dec[i]), "provider": "mock"})
             for i in range(n)]
    cutouts = conform(pa.table({"galaxy_id": ids, "ra": ra, "dec": dec,
                                "cutout": blobs, "cutout_ok": [True] * n, "status": ["ok"] * n,
                                **{f"psfsize_{b}": rng.uniform(1.0, 1.6, n).astype(np.float32) for b in "grz"}}),
                      "cutout_index")
    write_parquet(cutouts, str(root / "cutouts" / "part-0.parquet"))
    hosts = cutouts.select(["galaxy_id", "ra", "dec"]).append_column("z_phot_median", pa.array(rng.uniform(0.3, 0.6, n)))
    manifest = build_manifest(hosts, ManifestConfig(variants=[{"artifact_profile": "mild"}],
                                                    host_redshift={"column": "z_phot_median"}))
    write_parquet(manifest, str(root / "manifest" / "part-0.parquet"))
    write_parquet(manifest.slice(0, n // 3), str(root / "manifest_third" / "part-0.parquet"))
    return manifest, cutouts


def _pipeline(root: Path, out: Path, limit: int | None = None) -> int:
    """What one executor core does in the job, without Spark: address the manifest rows' hosts in
    the cutout file, read them by address, inject and write Parquet shards, batch by batch, with
    the job's own functions; returns the rows written."""
    from dhs_gen.injection.inject import (
        CUTOUT_FILE,
        CUTOUT_ROW,
        attach_dataset_cutouts,
        cutout_reader,
        inject_batch,
    )
    from dhs_gen.io.parquet_shards import ShardWriter
    from dhs_gen.schemas import get_dataset

    manifest = pq.read_table(root / "manifest")
    manifest = manifest if limit is None else manifest.slice(0, limit)
    cutout_file = str(root / "cutouts" / "part-0.parquet")
    rows = pc.index_in(manifest.column("host_id"), value_set=pq.read_table(cutout_file, columns=["galaxy_id"])[0])
    addressed = manifest.append_column(CUTOUT_FILE, pa.array([cutout_file] * manifest.num_rows)) \
        .append_column(CUTOUT_ROW, rows.cast(pa.int64())).sort_by([(CUTOUT_ROW, "ascending")])
    cfg, reader = _production_config(), cutout_reader()
    writer = ShardWriter(str(out), 0, 0, get_dataset("stamps").schema, compression=cfg.compression,
                         rows_per_file=cfg.rows_per_file)
    for batch in addressed.to_batches(max_chunksize=ROWS_PER_BATCH):
        writer.write(inject_batch(attach_dataset_cutouts(pa.Table.from_batches([batch]), reader), cfg.inject))
    reader.close()
    return sum(r["rows"] for r in writer.close().to_pylist())


STAGES = {  # stage -> (file, the function(s) whose cumulative CPU it is (cProfile)), in pipeline order
    "read host cutouts (by address)": ("inject.py", "attach_dataset_cutouts"),
    "decode hosts, noise sigma and autocovariance": ("inject.py", "__init__"),
    "artifact draws": ("inject.py", "_artifact_draws"),
    "render arcs (fast engine)": ("inject.py", "_render"),
    "arc metrics and image count": ("inject.py", "_metrics"),
    "products: noise, control, hard negative, artifacts, encode": ("inject.py", "_products"),
    "products' compiled pass alone (shuffle, artifacts, composition)": ("artifacts.py", "compose_injection"),
    "output table": ("inject.py", "_output_table"),
    "write Parquet shards": ("parquet_shards.py", "write", "close"),
}


def _cpu_breakdown(root: Path, out: Path) -> dict:
    """Share of the pipeline's CPU per stage (:data:`STAGES`), from cProfile cumulative times of
    one pass (profiling overhead is small: the stages are numpy calls)."""
    import cProfile
    import pstats

    profile = cProfile.Profile(time.process_time)
    profile.enable()
    _pipeline(root, out)
    profile.disable()
    stats = pstats.Stats(profile).stats
    total = max(v[3] for k, v in stats.items() if k[2] == "_pipeline")
    shares = {}
    for stage, (file, *funcs) in STAGES.items():
        cum = sum(v[3] for k, v in stats.items() if k[0].endswith(file) and k[2] in funcs)
        shares[stage] = cum / total
    return shares


def _best_cpu(fn, repeats: int = 2) -> float:
    """Fewest CPU seconds of ``repeats`` calls of ``fn``."""
    seconds = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        seconds.append(time.process_time() - t0)
    return min(seconds)


def _codec_costs(root: Path, stamps: Path) -> list:
    """Stamps shards (the pass's own rows, written as the job writes them) in each codec the job
    offers: CPU ms per stamp to write and to read back, bytes per stamp; and the host cutouts
    read by address (as :func:`_pipeline`) from the input file (plain blobs) and from the same
    table with zstd blobs (pyarrow defaults: Spark's codec, dictionary attempted). Best of two."""
    from dhs_gen.injection.inject import CUTOUT_FILE, CUTOUT_ROW, attach_dataset_cutouts, cutout_reader
    from dhs_gen.io.parquet_shards import CODECS, ShardWriter
    from dhs_gen.schemas import get_dataset

    table, schema = pq.read_table(stamps), get_dataset("stamps").schema
    rows, written, results = table.num_rows, {}, []
    for codec in CODECS:
        out = root / f"codec_{codec}"

        def write(out=out, codec=codec):
            writer = ShardWriter(str(out), 0, 0, schema, compression=codec, rows_per_file=_production_config().rows_per_file)
            for batch in table.to_batches(max_chunksize=ROWS_PER_BATCH):
                writer.write(pa.Table.from_batches([batch]))
            writer.close()

        write_s, read_s = _best_cpu(write), _best_cpu(lambda out=out: pq.read_table(out))
        written[codec] = (write_s, read_s, sum(p.stat().st_size for p in out.glob("*.parquet")))
    for codec, (write_s, read_s, size) in written.items():
        results.append(entry(f"phase4c.stamps_codec.{codec}.write_ms_per_stamp", write_s / rows * 1e3, "ms CPU/stamp",
                             notes=f"ShardWriter, the pass's {rows} stamps rows; {size / rows / 1e3:.1f} kB/stamp on "
                                   f"disk ({size / written['none'][2]:.3f} x uncompressed); reading them back "
                                   f"(pq.read_table) {read_s / rows * 1e3:.3g} ms CPU/stamp"))
    cutouts = root / "cutouts" / "part-0.parquet"
    zstd = root / "cutouts_zstd" / "part-0.parquet"
    zstd.parent.mkdir()
    pq.write_table(pq.read_table(cutouts), zstd, compression="zstd",
                   row_group_size=pq.ParquetFile(cutouts).metadata.row_group(0).num_rows)
    manifest = pq.read_table(root / "manifest")
    for label, path in (("plain_blobs", cutouts), ("zstd_blobs", zstd)):
        index = pc.index_in(manifest.column("host_id"), value_set=pq.read_table(path, columns=["galaxy_id"])[0])
        addressed = manifest.append_column(CUTOUT_FILE, pa.array([str(path)] * manifest.num_rows)) \
            .append_column(CUTOUT_ROW, index.cast(pa.int64())).sort_by([(CUTOUT_ROW, "ascending")])

        def read(addressed=addressed):
            reader = cutout_reader()
            for batch in addressed.to_batches(max_chunksize=ROWS_PER_BATCH):
                attach_dataset_cutouts(pa.Table.from_batches([batch]), reader)
            reader.close()

        seconds = _best_cpu(read)
        results.append(entry(f"phase4c.cutout_read.{label}.ms_per_row", seconds / manifest.num_rows * 1e3, "ms CPU/row",
                             notes=f"attach_dataset_cutouts of {manifest.num_rows} rows in batches of {ROWS_PER_BATCH} "
                                   f"from a {path.stat().st_size / manifest.num_rows / 1e3:.1f} kB/row file"))
    return results


def _lenstronomy_rate(manifest: pa.Table, cutouts: pa.Table, n: int) -> float:
    """Stamps per CPU second of the lenstronomy renderer on the first ``n`` manifest rows, best of two."""
    from dhs_gen.lensing import render_lensed_sersic

    m = manifest.slice(0, n).to_pandas()
    psf_frame = cutouts.select(["galaxy_id", "psfsize_g", "psfsize_r", "psfsize_z"]).to_pandas().set_index("galaxy_id")
    psf = psf_frame.loc[m["host_id"]].to_numpy(np.float64)
    off = 0.131
    lens = {"theta_E": m.theta_e_arcsec.to_numpy(np.float64), "e1": m.lens_e1.to_numpy(np.float64),
            "e2": m.lens_e2.to_numpy(np.float64), "center_x": m.lens_center_x.to_numpy(np.float64) + off,
            "center_y": m.lens_center_y.to_numpy(np.float64) + off, "gamma1": m.shear_gamma1.to_numpy(np.float64),
            "gamma2": m.shear_gamma2.to_numpy(np.float64)}
    source = {"R_sersic": m.src_reff_arcsec.to_numpy(np.float64), "n_sersic": m.src_n_sersic.to_numpy(np.float64),
              "e1": m.src_e1.to_numpy(np.float64), "e2": m.src_e2.to_numpy(np.float64),
              "center_x": lens["center_x"] + m.src_x_arcsec.to_numpy(np.float64),
              "center_y": lens["center_y"] + m.src_y_arcsec.to_numpy(np.float64),
              **{f"flux_{b}": m[f"src_flux_{b}"].to_numpy(np.float64) for b in "grz"}}
    one = {k: v[:1] for k, v in lens.items()}, {k: v[:1] for k, v in source.items()}
    render_lensed_sersic(*one, psf[:1], backend="lenstronomy")  # imports and caches
    seconds = []
    for _ in range(2):  # best of two
        t0 = time.process_time()
        render_lensed_sersic(lens, source, psf, backend="lenstronomy")
        seconds.append(time.process_time() - t0)
    return n / min(seconds)


def _tree_cpu_seconds(root_pid: int) -> float | None:
    """CPU seconds (user + system, incl. reaped children) of a process and all its descendants,
    from /proc (Linux); None elsewhere."""
    if not os.path.isdir("/proc"):
        return None
    parent, cpu = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(name)] = int(fields[1])
        cpu[int(name)] = sum(int(v) for v in fields[11:15])
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, pp in parent.items() if pp == pid and p not in tree]
        tree.update(kids)
        frontier.extend(kids)
    return sum(cpu.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")


def _spark_rates(root: Path, out: Path) -> dict:
    """Phase 4c job body under local[1] in a warm session (an untimed pass of each size first: JVM
    start-up, Python workers, imports, JIT), then a third of the manifest and all of it,
    alternating; best of :data:`SPARK_PASSES` of each. Rates per wall second and per CPU second of the whole
    process tree (driver, JVM, Python workers):

    * ``cpu`` (whole pass): rows / CPU of the full pass. Each pass also pays its Spark queries'
      planning, code generation and the JIT compilation of the generated classes (~1.5 s of JVM
      compiler-thread CPU here, whatever the size);
    * ``cpu_steady``: the extra rows of the full pass over the third / the extra CPU — the per-row
      cost once those fixed costs are paid, i.e. the rate of a production pass of millions of rows.
    """
    from argparse import Namespace

    from dhs_gen.spark import build_spark_session
    from jobs.phase4c_inject import _body

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run this interpreter
    spark = build_spark_session("dhs-bench-phase4c", master="local[1]")
    try:
        cfg = _production_config()

        def timed(manifest: str, name: str) -> tuple:
            args = Namespace(output=str(out / name), manifest=str(root / manifest), cutouts=str(root / "cutouts"))
            cpu0, t0 = _tree_cpu_seconds(os.getpid()), time.perf_counter()
            rows = _body(spark, cfg, args)["rows_out"]
            wall, cpu1 = time.perf_counter() - t0, _tree_cpu_seconds(os.getpid())
            return rows, wall, (cpu1 - cpu0 if cpu0 is not None else None)

        timed("manifest", "warm")
        timed("manifest_third", "warm_third")  # the first pass of each size still carries warm-up costs
        thirds, fulls = [], []
        for k in range(SPARK_PASSES):  # best of each, alternating
            thirds.append(timed("manifest_third", f"third{k}"))
            fulls.append(timed("manifest", f"full{k}"))
        rows_third, rows = thirds[0][0], fulls[0][0]
        rates = {"wall": rows / min(f[1] for f in fulls)}
        if fulls[0][2] is not None:
            cpu_third, cpu = min(t[2] for t in thirds), min(f[2] for f in fulls)
            rates.update(cpu=rows / cpu, cpu_steady=(rows - rows_third) / (cpu - cpu_third))
        return rates
    finally:
        spark.stop()


PIPELINE_PASSES = 5
SPARK_PASSES = 3  # of each size: the steady rate is a difference of two CPU totals, each with the JVM's noise


def _pipeline_rates(root: Path, passes: int) -> tuple:
    """(rows, stamps per CPU second of each pass) over ``passes`` pipeline passes, each into a
    fresh output folder (the previous pass's removed). The headline is the best pass, like the
    baseline's best of four; the median pass is reported beside it (the two differ by the load on
    this shared machine; before the shards were written around the page cache, also by the
    kernel's page-cache reclaim: the same write at 0.1 and at 0.7 CPU s)."""
    rates = []
    for _ in range(passes):
        out = root / "stamps"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.process_time()
        rows = _pipeline(root, out)
        rates.append(rows / (time.process_time() - t0))
    return rows, rates


def run(quick: bool = False) -> list:
    n, n_ref = (96, 4) if quick else (2304, 96)
    with tempfile.TemporaryDirectory(prefix="dhs-bench-4c-") as tmp:
        root = Path(tmp)
        manifest, cutouts = _inputs(n, root)
        _pipeline(root, root / "warm", limit=8)  # imports and caches, untimed
        # the baseline just before and just after the pipeline pass, the best of both: a load
        # change on the machine during the run cannot flatter the ratio
        ref = _lenstronomy_rate(manifest, cutouts, n_ref)
        passes = 1 if quick else PIPELINE_PASSES
        rows, rates = _pipeline_rates(root, passes)
        rate = max(rates)
        ref = max(ref, _lenstronomy_rate(manifest, cutouts, n_ref))
        results = [entry("phase4c.end_to_end_stamps_per_s_core", rate, "stamps/s/core",
                         baseline_name="lenstronomy kernel alone, used well (same stamps)", baseline_value=ref,
                         target=">= 5x",
                         notes=f"{rows} rows, the job's per-core work without Spark: read cutouts by address + "
                               "inject (pos, ctrl, hard neg, metrics, mild artifacts) + write Parquet shards "
                               f"({_production_config().compression}); "
                               f"CPU seconds; lenstronomy (one PSF-less ImageModel, fftconvolve per band) on "
                               f"{n_ref} of them, best of four passes (two before, two after the pipeline); "
                               f"pipeline: best of {passes} passes")]
        results.append(entry("phase4c.end_to_end_stamps_per_s_core_median_pass", float(np.median(rates)),
                             "stamps/s/core", baseline_name="lenstronomy kernel alone, used well (same stamps)",
                             baseline_value=ref,
                             notes=f"the median of the same {passes} pipeline passes (each pass: "
                                   + ", ".join(f"{r:.0f}" for r in rates) + " stamps/s/core)"))
        for stage, share in _cpu_breakdown(root, root / "profiled").items():
            results.append(entry(f"phase4c.cpu_share.{stage}", share, "fraction of CPU",
                                 notes=f"cProfile of one {rows}-row pass of the per-core pipeline; "
                                       f"{share / rate * 1e3:.3g} ms CPU per stamp"))
        results.extend(_codec_costs(root, root / "stamps"))
        if not quick:
            spark = _spark_rates(root, root / "spark_stamps")
            kernel = {"baseline_name": "lenstronomy kernel alone, used well (same stamps)", "baseline_value": ref}
            if "cpu" in spark:
                results.append(entry("phase4c.spark_local1_stamps_per_cpu_s_steady", spark["cpu_steady"],
                                     "stamps/s/core",
                                     notes=f"jobs/phase4c_inject body under local[1] (warm session): extra rows / "
                                           f"extra CPU seconds (driver + JVM + Python workers) of a {n}-row pass "
                                           f"over a {n // 3}-row pass (per-pass fixed costs excluded); a difference "
                                           "of two CPU totals whose JVM part varies by ~0.3 s from pass to pass, so "
                                           "this row moves by tens of percent between runs of one tree (the per-core "
                                           "row above is the target's measure)", **kernel))
                results.append(entry("phase4c.spark_local1_stamps_per_cpu_s", spark["cpu"], "stamps/s/core",
                                     notes=f"same job, whole {n}-row pass incl. its fixed query/JIT costs (~1.5 s "
                                           "of JVM compilation per pass whatever its size; the steady-state row is "
                                           "the rate of a production pass)", **kernel))
            results.append(entry("phase4c.spark_local1_stamps_per_wall_s", spark["wall"], "stamps/s",
                                 notes="same run, wall clock (depends on other load on the machine)"))
        return results
