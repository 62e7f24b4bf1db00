"""Mock-vs-real gallery: mock cutouts beside the real DR10 cutouts with the same Lupton stretch."""
from __future__ import annotations

import numpy as np

from dhs_gen.data_files import data_path

# Lupton et al. (2004) asinh stretch on (z, r, g) -> (R, G, B), band weights as in the
# Legacy Surveys viewer, identical for every panel so mock and real compare at a glance.
RGB_WEIGHTS = (1.0, 1.3, 2.2)  # z, r, g
LUPTON_STRETCH = 0.04
LUPTON_Q = 8.0


def real_cutouts():
    """The packaged real DR10 cutouts: list of (name, Stamp)."""
    from dhs_gen.io.stamps import decode_stamp_npz

    files = sorted(data_path("dr10_cutouts").glob("*.npz"))
    return [(f.stem, decode_stamp_npz(f, nan_policy="report")) for f in files]


def to_rgb(image: np.ndarray) -> np.ndarray:
    """(3, H, W) g/r/z nanomaggies -> (H, W, 3) uint8 with the shared Lupton stretch."""
    from astropy.visualization import make_lupton_rgb

    img = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
    g, r, z = img
    return make_lupton_rgb(z * RGB_WEIGHTS[0], r * RGB_WEIGHTS[1], g * RGB_WEIGHTS[2],
                           minimum=0.0, stretch=LUPTON_STRETCH, Q=LUPTON_Q)


def render_gallery(out_png: str, mock=None, n_mock: int = 12, positions=None, n_lenses: int = 6) -> str:
    """PNG: the real DR10 cutouts in the first row, mock cutouts below (at real LRG positions
    unless ``positions`` [(ra, dec), ...] is given), then ``n_lenses`` mock cutouts of known
    lenscat lenses (lens galaxy + arcs, when the mock paints lenses). Returns the output path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dhs_gen.survey.hosts import load_lrg_sample
    from dhs_gen.survey.mock import MockDR10

    mock = mock or MockDR10(seed=0)
    reals = real_cutouts()
    if positions is None:
        lrg = load_lrg_sample()
        pick = lrg.iloc[np.linspace(0, len(lrg) - 1, n_mock).astype(int)]
        positions = list(zip(pick["ra"], pick["dec"]))
    mocks = [(f"mock {ra:.3f},{dec:+.3f}", mock.get_cutout(ra, dec)) for ra, dec in positions]
    if n_lenses and mock.lenses:
        from dhs_gen.survey.lenses import load_lens_table, patch_lenses

        table = load_lens_table(mock.lenses)
        for i in patch_lenses(n_lenses, mock.lenses, mock.seed):
            cut = mock.get_cutout(table["ra"].iloc[i], table["dec"].iloc[i])
            lens = cut.meta.get("lens", {})
            mocks.append((f"mock lens {table['grading'].iloc[i]} θE={lens.get('theta_E', 0):.1f}\"", cut))
    ncol = len(reals)
    nrow = 1 + int(np.ceil(len(mocks) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.0 * ncol, 2.1 * nrow))
    panels = [(f"DR10 {n}", s.image) for n, s in reals] + [(n, c.image) for n, c in mocks]
    for ax in np.ravel(axes):
        ax.axis("off")
    for i, (name, image) in enumerate(panels):
        row, col = (0, i) if i < ncol else (1 + (i - ncol) // ncol, (i - ncol) % ncol)
        ax = axes[row, col]
        ax.imshow(to_rgb(image), origin="lower")
        ax.set_title(name, fontsize=6)
    fig.suptitle("top row: real DR10 cutouts; below: MockDR10 LRGs, then known lenscat lenses "
                 "(same Lupton stretch, 101 px = 26.5\")", fontsize=8)
    fig.tight_layout()
    from pathlib import Path

    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=72)
    plt.close(fig)
    return out_png
