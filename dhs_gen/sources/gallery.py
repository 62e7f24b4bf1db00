"""Gallery figures and the faintness calibration of the source generators (docs/injection_physics.md).

``python -m dhs_gen.sources.gallery [--out docs/figures] [--n 2000]`` writes
``sources_<generator>.png`` (arc alone, real DR10 host = control, host + arc = positive, all in
the same asinh grz stretch, next to the real DR10 lens candidates) and prints, per generator, the
matched-filter r-band arc SNR and lensed r magnitude quantiles for DR10 depth/seeing drawn from
the brick table.

Matched-filter SNR (white noise): SNR = sqrt(sum_pixels (arc / sigma_pix)^2) with sigma_pix the
per-pixel noise that gives the brick's 5-sigma r-band PSF depth
(:func:`dhs_gen.units.pixel_sigma_from_depth`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from dhs_gen import PIXEL_SCALE_ARCSEC

CUTOUTS = ("0001m040_4091.npz", "0001m060_2396.npz", "0001m372_9677.npz", "0003m005_293.npz",
           "0006p270_2574.npz", "sample_cutout.npz")


def load_hosts(size: int = 64) -> np.ndarray:
    """The packaged real DR10 cutouts, centre-cropped: (N, 3, size, size) float32 nanomaggies."""
    from dhs_gen.data_files import data_path
    from dhs_gen.io.stamps import decode_stamp_npz

    out = []
    for name in CUTOUTS:
        img = decode_stamp_npz(str(data_path("dr10_cutouts", name)), bands="grz", nan_policy="report").image
        c, h = img.shape[-1] // 2, size // 2
        out.append(np.nan_to_num(img[:, c - h:c - h + size, c - h:c - h + size]))
    return np.stack(out).astype(np.float32)


def brick_conditions(n: int, rng: np.random.Generator):
    """(psf_fwhm (n, 3) arcsec, psfdepth_r (n,) AB mag) drawn from the DR10 brick table."""
    import pandas as pd

    from dhs_gen.data_files import data_path

    bricks = pd.read_csv(data_path("dr10_stats", "dr10_bricks_psfsize_psfdepth_grz_primary.csv.gz"))
    idx = rng.integers(0, len(bricks), n)
    psf = bricks[["psfsize_g", "psfsize_r", "psfsize_z"]].to_numpy()[idx]
    return psf, bricks["psfdepth_r"].to_numpy()[idx]


def random_lenses(rng: np.random.Generator, n: int) -> dict:
    """Injection-prior lenses: theta_E ~ U(0.5, 3)", q ~ U(0.5, 1), shear N(0, 0.05), centre N(0, 0.05")."""
    q = rng.uniform(0.5, 1.0, n)
    phi = rng.uniform(0, np.pi, n)
    e = (1 - q) / (1 + q)
    return dict(theta_E=rng.uniform(0.5, 3.0, n), e1=e * np.cos(2 * phi), e2=e * np.sin(2 * phi),
                center_x=rng.normal(0, 0.05, n), center_y=rng.normal(0, 0.05, n),
                gamma1=rng.normal(0, 0.05, n), gamma2=rng.normal(0, 0.05, n))


def calibration(name: str, n: int = 2000, seed: int = 0) -> dict:
    """Quantiles (10, 50, 90 %) of unlensed r, lensed r [AB mag] and matched-filter r SNR."""
    from dhs_gen.lensing import total_flux
    from dhs_gen.sources import get_source, render_lensed_source
    from dhs_gen.units import nmgy_to_mag, pixel_sigma_from_depth

    rng = np.random.default_rng(seed)
    lens = random_lenses(rng, n)
    psf, depth_r = brick_conditions(n, rng)
    batch = get_source(name).sample(rng, n, theta_E=lens["theta_E"], center_x=lens["center_x"],
                                    center_y=lens["center_y"])
    arcs = render_lensed_source(lens, batch, psf)
    sigma = pixel_sigma_from_depth(depth_r, psf[:, 1], PIXEL_SCALE_ARCSEC)
    snr = np.sqrt(((arcs[:, 1] / sigma[:, None, None]) ** 2).sum(axis=(1, 2)))
    q = (10, 50, 90)
    return {"generator": name, "mag_r": np.percentile(nmgy_to_mag(batch["flux_r"]), q),
            "lensed_mag_r": np.percentile(nmgy_to_mag(total_flux(arcs)[:, 1]), q),
            "snr_r": np.percentile(snr, q), "depth_r": np.percentile(depth_r, q),
            "frac_snr_gt_10": float((snr > 10).mean())}


def _rgb(images: np.ndarray, scale: float = 0.02) -> np.ndarray:
    """(3, H, W) g, r, z nanomaggies -> (H, W, 3) asinh RGB (z -> red, r -> green, g -> blue)."""
    z, r, g = images[2], images[1], images[0]
    rgb = np.stack([z * 1.0, r * 1.3, g * 2.0], axis=-1)
    return np.clip(np.arcsinh(rgb / scale) / np.arcsinh(1.0 / scale) * 2.2, 0, 1)


def gallery(name: str, out: Path, seed: int = 1) -> Path:
    """One figure: rows = examples; columns = arc alone, control (real host), positive (host + arc)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dhs_gen.lensing import total_flux
    from dhs_gen.sources import get_source, render_lensed_source
    from dhs_gen.units import nmgy_to_mag

    hosts = load_hosts()
    n = len(hosts)
    rng = np.random.default_rng(seed)
    lens = random_lenses(rng, n)
    lens["theta_E"] = np.linspace(1.0, 2.5, n)
    batch = get_source(name).sample(rng, n, theta_E=lens["theta_E"], center_x=lens["center_x"],
                                    center_y=lens["center_y"])
    psf = np.tile([1.45, 1.3, 1.2], (n, 1))
    arcs = render_lensed_source(lens, batch, psf)
    fig, axes = plt.subplots(n, 4, figsize=(8, 2.05 * n))
    titles = ("arc alone (noiseless)", "control: real DR10 host", "positive: host + arc", "positive, r band")
    for i in range(n):
        panels = (_rgb(arcs[i]), _rgb(hosts[i]), _rgb(hosts[i] + arcs[i]))
        for j, panel in enumerate(panels):
            axes[i, j].imshow(panel, origin="lower")
        pos_r = hosts[i, 1] + arcs[i, 1]
        lo, hi = np.percentile(pos_r, [1, 99.5])
        axes[i, 3].imshow(pos_r, origin="lower", cmap="gray", vmin=lo, vmax=hi)
        axes[i, 0].set_ylabel(f"θE={lens['theta_E'][i]:.1f}\"\nr_src={nmgy_to_mag(batch['flux_r'][i]):.1f}\n"
                              f"r_arc={nmgy_to_mag(total_flux(arcs[i:i + 1])[0, 1]):.1f}", fontsize=7)
        for j in range(4):
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(titles[j], fontsize=8)
    fig.suptitle(f"source generator '{name}': 64x64 stamps, 0.262\"/px, same asinh stretch", fontsize=9)
    fig.tight_layout()
    path = out / f"sources_{name}.png"
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    from dhs_gen.sources import list_sources

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/figures")
    parser.add_argument("--n", type=int, default=2000, help="stamps per generator for the calibration table")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("| generator | r unlensed (10/50/90%) | r lensed | r-band matched-filter SNR | depth_r | SNR > 10 |")
    print("|---|---|---|---|---|---|")
    for name in list_sources():
        c = calibration(name, n=args.n)

        def fmt(v):
            return " / ".join(f"{x:.1f}" for x in v)

        print(f"| {name} | {fmt(c['mag_r'])} | {fmt(c['lensed_mag_r'])} | {fmt(c['snr_r'])} | "
              f"{fmt(c['depth_r'])} | {c['frac_snr_gt_10']:.2f} |")
        print(f"wrote {gallery(name, out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
