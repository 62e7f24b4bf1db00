"""Gallery of phase 4c products: positive, paired control, hard negative and the injected light,
for each source generator, in real DR10 hosts at the default (faint, realistic) source priors.

``python -m dhs_gen.injection.gallery docs/figures/injection_gallery.png`` writes the PNG.
"""
from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa

SOURCE_MODES = ("sersic", "cosmos", "sersic_clumps")


def gallery_stamps(per_mode: int = 2, seed: int = 3) -> pa.Table:
    """Stamps (``stamps`` schema) of ``per_mode`` injections per source generator in the real
    DR10 cutouts, θ_E in 1.0-2.5", everything else at the default priors; the same lens and host
    for each generator, no arc Poisson noise (so the last column shows the arc itself)."""
    from dhs_gen.injection.inject import InjectConfig, inject_batch
    from dhs_gen.injection.manifest import ManifestConfig, build_manifest
    from dhs_gen.io.stamps import encode_stamp
    from dhs_gen.survey.gallery import real_cutouts

    reals = real_cutouts()
    hosts = pa.table({"galaxy_id": [n for n, _ in reals], "ra": np.linspace(10, 20, len(reals)),
                      "dec": np.zeros(len(reals)), **{f"psfsize_{b}": np.full(len(reals), v)
                                                      for b, v in zip("grz", (1.45, 1.30, 1.15))}})
    blobs = {n: encode_stamp(s.image) for n, s in reals}
    tables = []
    for mode in SOURCE_MODES:
        cfg = ManifestConfig(seed=seed, experiment_id="gallery", variants=[{"source_mode": mode}],
                             priors={"theta_e_arcsec": (1.0, 2.5)})
        m = build_manifest(hosts.slice(0, per_mode), cfg)
        m = m.append_column("cutout", pa.array([blobs[h] for h in m.column("host_id").to_pylist()], pa.binary()))
        tables.append(inject_batch(m, InjectConfig()))
    return pa.concat_tables(tables)


def render_injection_gallery(out_png: str, per_mode: int = 2) -> str:
    """PNG: one row per injection (positive | control | hard negative | positive − control, at
    the same stretch and amplified x10)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dhs_gen.io.stamps import decode_canonical_image
    from dhs_gen.storage import write_bytes
    from dhs_gen.survey.gallery import to_rgb

    t = gallery_stamps(per_mode)
    cols = ("positive", "control", "hard negative", "pos − ctrl", "pos − ctrl, x10")
    fig, axes = plt.subplots(t.num_rows, 5, figsize=(10.5, 2.2 * t.num_rows))
    for i in range(t.num_rows):
        pos, ctrl, hard = (decode_canonical_image(t.column(c)[i].as_py())
                           for c in ("stamp", "ctrl_stamp", "hardneg_stamp"))
        for j, img in enumerate((pos, ctrl, hard, pos - ctrl, 10 * (pos - ctrl))):
            ax = axes[i, j]
            ax.imshow(to_rgb(img), origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(cols[j], fontsize=8)
        r = t.slice(i, 1).to_pylist()[0]
        axes[i, 0].set_ylabel(f"{r['source_mode']}\nθE={r['theta_e_arcsec']:.2f}\" src r={r['src_mag_r']:.1f}\n"
                              f"arc r={r['lensed_mag_r']:.1f} SNR={r['arc_snr_sum']:.0f}", fontsize=7)
    fig.suptitle("Phase 4c products in real DR10 hosts (same Lupton stretch; last column x10)", fontsize=9)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes(out_png, buf.getvalue())
    return out_png


if __name__ == "__main__":
    print(render_injection_gallery(sys.argv[1] if len(sys.argv) > 1 else "docs/figures/injection_gallery.png"))
