"""Selection-function figures: completeness heat map, curves with CI bands, threshold
sensitivity, and the observability map (matplotlib, Agg backend; PNG plus a PDF beside it).

Honesty rules: the heat map's colour scale is fixed to 0-1 (a 16% cell never looks full), every
cell states C, its 95% interval (with the cut's uncertainty, :func:`cell_interval`) and n; FPR cuts the negatives cannot resolve are not drawn
(``unresolved``); region-bootstrap bars are drawn only for bins with at least
``MIN_BOOTSTRAP_REGIONS`` HEALPix regions (fewer regions understate the spread)."""
from __future__ import annotations

import numpy as np

from dhs_gen.selection.binning import GRID_SEP
from dhs_gen.selection.completeness import MIN_BOOTSTRAP_REGIONS, reported_interval

LABELS = {
    "theta_e_arcsec": r"Einstein radius $\theta_E$ [arcsec]",
    "z_l": r"lens redshift $z_l$",
    "theta_over_psf": r"$\theta_E$ / PSF FWHM (r)",
    "src_mag_r": "unlensed source r [AB mag]",
    "arc_snr_sum": "integrated arc S/N",
}
SUBSET_STYLE = {"all": "-", "clean": "--"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.grid": True, "grid.alpha": 0.25, "figure.dpi": 110})
    return plt


def realism_note(realism: dict | None) -> str:
    """One line for every completeness figure: the realism probe AUCs (or why there are none)."""
    if not realism:
        return ""
    if realism.get("status") != "ok":
        return "Injection-realism probe: " + str(realism.get("status"))
    parts = []
    for key, label in (("pixel_stats", "pixel statistics"), ("model_features", "model features")):
        r = realism.get(key)
        if r:
            parts.append(f"{label} AUC = {r['auc']:.3f} [{r['ci_lo']:.3f}, {r['ci_hi']:.3f}] (n = {r['n_real']})")
    real_set = (realism.get("real_set") or {}).get("name", "real lenses")
    return (f"Injection-realism probe, real lens set '{real_set}' vs brightness-matched injections "
            "(0.5 = indistinguishable; earlier pipeline 0.997): " + "; ".join(parts))


def _footnote(fig, text: str) -> None:
    if text:
        fig.text(0.01, -0.01, text, fontsize=8, ha="left", va="top", color="0.25", wrap=True)


def _save(fig, path: str) -> str:
    import io

    from dhs_gen.storage import write_bytes

    for out, fmt in ((path, "png"), ((path[:-4] if path.endswith(".png") else path) + ".pdf", "pdf")):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, bbox_inches="tight", metadata={"CreationDate": None} if fmt == "pdf" else None)
        write_bytes(out, buf.getvalue())
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _rows(df, model_id, subset, kind, value, axis):
    sel = df[(df.model_id == model_id) & (df.subset == subset) & (df.threshold_kind == kind)
             & np.isclose(df.threshold_value, value) & (df.axis == axis)]
    return sel.sort_values("bin_index")


def _centres(rows, dim: int = 0) -> np.ndarray:
    lo = np.array([b[dim] for b in rows.bin_lo], dtype=float)
    hi = np.array([b[dim] for b in rows.bin_hi], dtype=float)
    width = np.where(np.isfinite(hi), hi - lo, np.nan)
    fallback = np.nanmedian(width) if np.isfinite(width).any() else 1.0
    return np.where(np.isfinite(hi), 0.5 * (lo + hi), lo + 0.5 * fallback)


def cell_interval(rows) -> tuple[np.ndarray, np.ndarray]:
    """The 95% interval a cell states: :func:`completeness.reported_interval` of its row."""
    return reported_interval(rows.ci_lo, rows.ci_hi, rows.boot_lo, rows.boot_hi, rows.n_regions)


def heatmap(df, path: str, model_id: str, fpr: float, sigma_map=None, subset: str = "all",
            axis: str = "theta_e_arcsec x z_l", low_n: int = 50, note: str = "", unresolved: bool = False) -> str:
    """Completeness over (theta_E, z_l): colour = C on a fixed 0-1 scale, text = C, its 95% interval
    (:func:`cell_interval`: includes the FPR cut's uncertainty) and n per cell, low-n cells hatched;
    ``sigma_map`` (theta grid, z grid, sigma [km/s]) adds iso-sigma_v contours; ``unresolved`` (the
    negatives do not resolve the cut) puts that warning in the title."""
    plt = _plt()
    rows = _rows(df, model_id, subset, "fpr", fpr, axis)
    xcol, ycol = axis.split(GRID_SEP)
    x_edges = np.unique(np.r_[[b[0] for b in rows.bin_lo], [b[0] for b in rows.bin_hi]])
    y_edges = np.unique(np.r_[[b[1] for b in rows.bin_lo], [b[1] for b in rows.bin_hi]])
    shape = (len(x_edges) - 1, len(y_edges) - 1)
    c = rows.completeness.to_numpy().reshape(shape)
    n = rows.n.to_numpy().reshape(shape)
    lo, hi = (v.reshape(shape) for v in cell_interval(rows))
    fig, ax = plt.subplots(figsize=(9, 5.5))
    ax.set_facecolor("0.9")  # grey: no injections in the cell
    ax.grid(False)
    mesh = ax.pcolormesh(x_edges, y_edges, np.ma.masked_invalid(c).T, cmap="viridis", vmin=0, vmax=1)
    cb = fig.colorbar(mesh, ax=ax, pad=0.02)
    cb.set_label(f"completeness, fixed 0-1 scale (score cut at FPR = {fpr:g})")
    xc, yc = 0.5 * (x_edges[1:] + x_edges[:-1]), 0.5 * (y_edges[1:] + y_edges[:-1])
    for i in range(shape[0]):
        for j in range(shape[1]):
            if n[i, j] == 0:
                continue
            colour = "white" if c[i, j] < 0.6 else "black"
            ax.text(xc[i], yc[j], f"{100 * c[i, j]:.0f}%\n[{100 * lo[i, j]:.0f}–{100 * hi[i, j]:.0f}]\nn={n[i, j]}",
                    ha="center", va="center", fontsize=6, color=colour)
            if n[i, j] < low_n:
                ax.add_patch(plt.Rectangle((x_edges[i], y_edges[j]), x_edges[i + 1] - x_edges[i],
                                           y_edges[j + 1] - y_edges[j], fill=False, hatch="///",
                                           edgecolor="0.6", lw=0))
    if sigma_map is not None:
        t, z, s = sigma_map
        cs = ax.contour(t, z, s.T, levels=[150, 200, 250, 300, 350], colors="orangered", linewidths=0.9,
                        linestyles="--", alpha=0.9)
        ax.clabel(cs, fmt=lambda v: f"{v:.0f} km/s", fontsize=7)
    ax.set_xlim(x_edges[0], x_edges[-1])
    ax.set_ylim(y_edges[0], y_edges[-1])
    ax.set_xlabel(LABELS.get(xcol, xcol))
    ax.set_ylabel(LABELS.get(ycol, ycol))
    ax.set_title(f"Injection-recovery completeness per cell: C, [95%, with the cut's uncertainty], n; {subset} "
                 "injections (hatched: "
                 f"n < {low_n}; grey: none); dashed: SIS σ_v (cell medians, hosts' own z_l, z_s); model {model_id[:12]}"
                 + ("\nWARNING: too few negatives to resolve this FPR cut: indicative only" if unresolved else ""),
                 fontsize=9, color="#b3261e" if unresolved else "black")
    _footnote(fig, note)
    return _save(fig, path)


def curves(df, path: str, model_id: str, fprs, axes=("theta_e_arcsec", "theta_over_psf", "src_mag_r", "arc_snr_sum"),
           sigma_axis=None, ensemble=None, note: str = "", unresolved=()) -> str:
    """C vs each 1-D axis: one colour per FPR, Wilson 95% bands, 'clean' dashed, region-bootstrap
    bars where a bin has >= MIN_BOOTSTRAP_REGIONS regions; with ``ensemble`` (the ensemble-spread
    table) a grey band spans the members' min..max. FPRs in ``unresolved`` are not drawn."""
    plt = _plt()
    skipped = [f for f in fprs if any(np.isclose(f, u) for u in unresolved)]
    fprs = [f for f in fprs if f not in skipped]
    fig, axs = plt.subplots(2, 2, figsize=(11, 7.5))
    colours = plt.cm.plasma(np.linspace(0.1, 0.8, len(fprs)))
    for ax, axis in zip(axs.ravel(), axes):
        for fpr, colour in zip(fprs, colours):
            for subset, ls in SUBSET_STYLE.items():
                rows = _rows(df, model_id, subset, "fpr", fpr, axis)
                rows = rows[rows.n > 0]
                if rows.empty:
                    continue
                x = _centres(rows)
                label = f"FPR {fpr:g}" if subset == "all" else None
                ax.plot(x, rows.completeness, ls, color=colour, marker="o" if subset == "all" else None,
                        ms=3, label=label)
                if subset == "all":
                    ax.fill_between(x, rows.ci_lo, rows.ci_hi, color=colour, alpha=0.2, lw=0)
                    many = rows.n_regions.to_numpy() >= MIN_BOOTSTRAP_REGIONS
                    if many.any():
                        ax.errorbar(x[many], rows.completeness[many], yerr=np.abs(np.vstack([
                            (rows.completeness - rows.boot_lo)[many], (rows.boot_hi - rows.completeness)[many]])).clip(0),
                            fmt="none", ecolor=colour, elinewidth=0.7, capsize=2)
                    low = rows.n.to_numpy() < 50
                    ax.plot(x[low], rows.completeness.to_numpy()[low], "x", color="k", ms=5)
                    if ensemble is not None:
                        e = ensemble[(ensemble.subset == "all") & (ensemble.threshold_kind == "fpr")
                                     & np.isclose(ensemble.threshold_value, fpr) & (ensemble.axis == axis)]
                        e = e.set_index("bin_index").loc[rows.bin_index]
                        ax.fill_between(x, e.c_min, e.c_max, facecolor="none", edgecolor="0.4", hatch="....",
                                        lw=0, label="ensemble min–max" if fpr == fprs[0] else None)
        ax.set_xlabel(LABELS.get(axis, axis))
        ax.set_ylabel("completeness")
        ax.set_ylim(bottom=0)
        if axis == "arc_snr_sum":
            ax.set_xscale("log")
        if axis == "theta_e_arcsec" and sigma_axis is not None:
            fwd, inv, z_label = sigma_axis
            top = ax.secondary_xaxis("top", functions=(fwd, inv))
            top.set_xlabel(rf"$\sigma_v$ [km/s] (SIS, {z_label})", fontsize=8)
    if axs[0, 0].get_legend_handles_labels()[0]:  # nothing to label when no cut is resolved
        axs[0, 0].legend(fontsize=8, title="score cut", title_fontsize=8)
    not_drawn = f"; not drawn (unresolved by the negatives): FPR {', '.join(f'{f:g}' for f in skipped)}" if skipped else ""
    fig.suptitle(f"Completeness with Wilson 95% bands (region-bootstrap bars where ≥ {MIN_BOOTSTRAP_REGIONS} regions); "
                 f"dashed: clean subset; x: n < 50{not_drawn} — model {model_id[:12]}", fontsize=10)
    fig.tight_layout()
    _footnote(fig, note)
    return _save(fig, path)


def threshold_sensitivity(df, path: str, model_id: str, fprs, proxies) -> str:
    """Overall C vs FPR (model score) and vs the phase-4d theta/PSF proxy cut, and C(theta_E) per threshold."""
    plt = _plt()
    fig, axs = plt.subplots(1, 3, figsize=(14, 4.2))
    for subset, ls in SUBSET_STYLE.items():
        for ax, kind, values in ((axs[0], "fpr", fprs), (axs[1], "proxy", proxies)):
            pts = [_rows(df, model_id, subset, kind, v, "overall") for v in values]
            pts = [(v, r.iloc[0]) for v, r in zip(values, pts) if len(r) and r.iloc[0].n > 0]
            if not pts:
                continue
            v = np.array([p[0] for p in pts])
            c = np.array([p[1].completeness for p in pts])
            err = np.abs(np.vstack([c - [p[1].ci_lo for p in pts], [p[1].ci_hi for p in pts] - c]))
            ax.errorbar(v, c, yerr=err, fmt="o" + ls, capsize=3, label=subset)
    axs[0].set_xscale("log")
    axs[0].set_xlabel("false-positive rate on negatives (score cut)")
    axs[1].set_xlabel(r"phase-4d proxy cut on $\theta_E$/PSF FWHM")
    for ax in axs[:2]:
        ax.set_ylabel("overall completeness")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    colours = plt.cm.plasma(np.linspace(0.1, 0.8, len(fprs) + len(proxies)))
    for colour, (kind, v) in zip(colours, [("fpr", f) for f in fprs] + [("proxy", p) for p in proxies]):
        rows = _rows(df, model_id, "all", kind, v, "theta_e_arcsec")
        rows = rows[rows.n > 0]
        axs[2].plot(_centres(rows), rows.completeness, "-" if kind == "fpr" else ":", color=colour,
                    label=f"{'FPR' if kind == 'fpr' else 'proxy θ/PSF ≥'} {v:g}")
    axs[2].set_xlabel(LABELS["theta_e_arcsec"])
    axs[2].set_ylabel("completeness (all)")
    axs[2].legend(fontsize=7, ncol=2)
    fig.suptitle("Threshold sensitivity: model-based completeness vs the phase-4d resolution proxy", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def observability_map(path: str, theta, z_l, sigma, log_mass, z_s: float, cosmology: str, slacs: dict) -> str:
    """Iso-sigma_v and iso-mass contours over (theta_E, z_l) with the SLACS lenses, and the SLACS
    sigma_SIE vs measured dispersion check. ``sigma`` and ``log_mass`` are per-cell medians over the
    injections' own (host z_l, z_s) at the cell centres ``theta`` x ``z_l`` (NaN: empty cell); the
    contours need at least 2 x 2 cells."""
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [1.4, 1]})
    if sigma.shape[0] >= 2 and sigma.shape[1] >= 2 and np.isfinite(sigma).sum() >= 4:
        cf = ax.contourf(theta, z_l, np.ma.masked_invalid(sigma).T, levels=np.arange(100, 451, 25), cmap="magma",
                         extend="both")
        fig.colorbar(cf, ax=ax, pad=0.02).set_label(
            rf"SIS/SIE $\sigma_v$ [km/s], median over each cell's hosts (median $z_s$ = {z_s:.2f})")
        cs = ax.contour(theta, z_l, np.ma.masked_invalid(log_mass).T, levels=np.arange(10.0, 12.6, 0.25),
                        colors="c", linewidths=0.8)
        ax.clabel(cs, fmt=lambda v: f"{v:.2f}", fontsize=7)
    ax.scatter(slacs["theta_e"], slacs["z_l"], facecolor="none", edgecolor="w", s=30, lw=1.0, zorder=3,
               label=r"SLACS lenses ($\theta_E$, $z_d$)")
    ax.set_xlabel(LABELS["theta_e_arcsec"])
    ax.set_ylabel(LABELS["z_l"])
    ax.set_title(rf"Observability map ({cosmology}); cyan: $\log_{{10}} M(<\theta_E)/M_\odot$", fontsize=10)
    ax.legend(fontsize=8, loc="upper right", facecolor="0.3", labelcolor="w")
    lim = [100, 450]
    ax2.errorbar(slacs["sigma_obs"], slacs["sigma_sie"], xerr=slacs["sigma_err"], fmt="o", ms=4, capsize=2,
                 alpha=0.8)
    ax2.plot(lim, lim, "k--", lw=1, label="1:1")
    ax2.set_xlim(lim)
    ax2.set_ylim(lim)
    ax2.set_xlabel(r"measured $\sigma_*$ (SLACS) [km/s]")
    ax2.set_ylabel(r"$\sigma_{SIE}$ from $\theta_E$, $z_l$, $z_s$ [km/s]")
    ax2.set_title(f"SLACS check: median σ_SIE/σ_* = {slacs['median_ratio']:.3f}, rms {slacs['rms_ratio']:.3f} "
                  f"(n = {len(slacs['sigma_obs'])})", fontsize=9)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
