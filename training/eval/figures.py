"""Evaluation figures (matplotlib Agg): ROC, reliability, gates by stratum, galleries,
confuser FPR bars, the 6-channel view and training curves. Every function returns the PNG
path and writes a PDF of the same figure beside it (``<name>.pdf``, vector, for papers); files
are written atomically via dhs_gen.storage (local or s3://)."""
from __future__ import annotations

import io
from typing import List, Mapping, Sequence, Tuple

import numpy as np

from dhs_gen.stats.metrics import reliability_curve, roc_auc, roc_curve


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pdf_path(out_png: str) -> str:
    """The PDF written beside a figure's PNG."""
    return (out_png[:-4] if out_png.endswith(".png") else out_png) + ".pdf"


def _save(fig, out_png: str) -> str:
    from dhs_gen.storage import write_bytes

    for path, fmt in ((out_png, "png"), (pdf_path(out_png), "pdf")):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=110, metadata={"CreationDate": None} if fmt == "pdf" else None)
        write_bytes(path, buf.getvalue())
    _plt().close(fig)
    return out_png


def plot_roc(curves: Mapping[str, Tuple[np.ndarray, np.ndarray]], out_png: str, title: str = "ROC",
             log_fpr: bool = True, points: Sequence[dict] = ()) -> str:
    """ROC curves for {name: (labels, scores)}, AUC and class counts in the legend; log FPR axis.

    With a log axis, FPRs below 1/n (n = fewest negatives of any curve) are shaded: no curve can
    resolve them, and an operating point at FPR 0 is drawn at the shading's edge. ``points``:
    operating points [{"fpr", "tpr", "fpr_hi", "tpr_lo", "tpr_hi", "label"}] drawn with their
    (Wilson) error bars, e.g. the test TPR at cuts fixed on validation."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.4, 5.2))
    n_neg = min(int((np.asarray(y) == 0).sum()) for y, _ in curves.values()) if curves else 0
    floor = 1.0 / n_neg if n_neg else 1e-4
    left = floor / 3.0
    for name, (y, s) in curves.items():
        fpr, tpr, _ = roc_curve(y, s)
        y = np.asarray(y)
        label = f"{name} (AUC {roc_auc(y, s):.3f}; {int(y.sum())} pos, {int((y == 0).sum())} neg)"
        ax.plot(np.maximum(fpr, left) if log_fpr else fpr, tpr, label=label)
    if log_fpr:
        ax.set_xscale("log")
        ax.set_xlim(left, 1)
        ax.axvspan(left, floor, color="0.88", lw=0)
        ax.text(left * 1.1, 0.97, f"FPR < 1/{n_neg}:\nunresolved", fontsize=6, va="top", color="0.35")
    for f in (1e-3, 1e-2):
        ax.axvline(f, color="0.8", lw=0.8, ls=":")
    for pt in points:
        x = max(pt["fpr"], left) if log_fpr else pt["fpr"]
        xerr = [[0.0], [max(pt.get("fpr_hi", pt["fpr"]) - pt["fpr"], 0.0)]]
        yerr = [[pt["tpr"] - pt.get("tpr_lo", pt["tpr"])], [pt.get("tpr_hi", pt["tpr"]) - pt["tpr"]]]
        ax.errorbar([x], [pt["tpr"]], xerr=xerr, yerr=yerr, fmt="o", ms=4, capsize=2, lw=0.8,
                    label=pt.get("label", "operating point"))
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate (recall)")
    ax.set_title(title)
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, frameon=False)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_reliability(y, probs: Mapping[str, np.ndarray], out_png: str, n_bins: int = 15,
                     title: str = "Reliability") -> str:
    """Reliability diagram: fraction of lenses vs mean predicted p per bin for each {name: p}."""
    from dhs_gen.stats.metrics import expected_calibration_error

    plt = _plt()
    fig, (ax, axh) = plt.subplots(2, 1, figsize=(4.6, 5.4), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=0.8)
    for name, p in probs.items():
        rc = reliability_curve(y, p, n_bins)
        ok = rc.count > 0
        ece = expected_calibration_error(y, p, n_bins)
        ax.plot(rc.mean_pred[ok], rc.frac_pos[ok], marker="o", ms=3, label=f"{name} (ECE {ece:.4f})")
        centres = 0.5 * (rc.edges[:-1] + rc.edges[1:])
        axh.step(centres, np.maximum(rc.count, 0.5), where="mid", label=name)
    axh.set_yscale("log")
    axh.set_ylabel("count")
    axh.set_xlabel("predicted probability")
    ax.set_ylabel("observed lens fraction")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out_png)


GATE_LABELS = {"G1": "G1 core-only AUC", "G2": "G2 radial-profile AUC", "G3": "G3 arc-annulus AUC",
               "G4": "G4 hard-neg. mean p", "G5": "G5 occlusion drop"}


def plot_gate_strata(gates: Mapping[str, dict], out_png: str) -> str:
    """Probe AUCs (G1-G3: pixel probes of the data) per x_ratio stratum with their thresholds, plus the
    model gates G4/G5; every gate labelled by its number and name, critical ones marked."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    names = [g for g in ("G1", "G2", "G3") if g in gates]
    strata = sorted({s["x_ratio_bin"] for g in names for s in gates[g].get("by_stratum", [])})
    width = 0.8 / max(1, len(strata))
    for j, stratum in enumerate(strata):
        vals = []
        for g in names:
            row = next((s for s in gates[g]["by_stratum"] if s["x_ratio_bin"] == stratum), None)
            vals.append(np.nan if row is None or row["auc"] is None else row["auc"])
        ax.bar(np.arange(len(names)) + j * width, vals, width, label=f"x = {stratum}")
    for i, g in enumerate(names):
        ax.hlines(gates[g]["threshold"], i - 0.1, i + 0.8, color="k", lw=1.2)
        ax.text(i, 1.02, f"{gates[g]['op']} {gates[g]['threshold']:g}: {gates[g]['status']}", fontsize=7)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2)
    ax.set_xticklabels([_gate_label(g, gates[g]) for g in names], fontsize=7)
    ax.set_ylim(0.3, 1.08)
    ax.set_ylabel("cross-validated probe AUC")
    ax.set_title("data: pixel probes (no model)", fontsize=8)
    ax.legend(fontsize=7, title="x = θ_E / FWHM", title_fontsize=7)
    ax2 = axes[1]
    other = [g for g in ("G4", "G5") if g in gates]
    vals = [np.nan if gates[g]["value"] is None else gates[g]["value"] for g in other]
    ax2.bar(range(len(other)), vals, color="C3")
    for i, g in enumerate(other):
        ax2.hlines(gates[g]["threshold"], i - 0.4, i + 0.4, color="k", lw=1.2)
        ax2.text(i - 0.3, (0 if np.isnan(vals[i]) else vals[i]) + 0.02, gates[g]["status"], fontsize=7)
    ax2.set_xticks(range(len(other)))
    ax2.set_xticklabels([_gate_label(g, gates[g]) for g in other], fontsize=7)
    ax2.set_ylim(0, 1)
    ax2.set_title("model: calibrated p", fontsize=8)
    fig.suptitle("shortcut gates G1-G5 (black line: threshold; * critical)", fontsize=9)
    fig.tight_layout()
    return _save(fig, out_png)


def _gate_label(name: str, gate: dict) -> str:
    return GATE_LABELS.get(name, name) + (" *" if gate.get("critical") else "")


def plot_confuser_fpr(rows: Sequence[dict], out_png: str, threshold: float) -> str:
    """FPR at the operating threshold per N2 confuser category with Wilson 95% intervals.
    ``rows``: [{"category", "fpr", "lo", "hi", "n"}]."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    x = np.arange(len(rows))
    fpr = np.array([r["fpr"] for r in rows], dtype=float)
    err = np.array([[r["fpr"] - r["lo"] for r in rows], [r["hi"] - r["fpr"] for r in rows]], dtype=float)
    ax.bar(x, fpr, yerr=err if len(rows) else None, capsize=3, color="C1")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{r['category']}\nn={r['n']}" for r in rows], fontsize=7)
    ax.set_ylabel(f"FPR at p >= {threshold:g}")
    ax.set_title("false positives by confuser category")
    fig.tight_layout()
    return _save(fig, out_png)


def plot_gallery_images(images: Sequence[np.ndarray], titles: Sequence[str], out_png: str, ncols: int = 6,
                        suptitle: str = "") -> str:
    """RGB gallery of (3, H, W) g/r/z nanomaggie stamps with the survey's Lupton stretch."""
    import textwrap

    from dhs_gen.survey.gallery import to_rgb

    plt = _plt()
    n = max(1, len(images))
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    width = 1.9 * max(ncols, 4)  # a few stamps still leave room for the title
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 2.05 * nrows + 0.3), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, title in zip(axes.ravel(), images, titles):
        ax.imshow(to_rgb(img), origin="lower")
        ax.set_title(title, fontsize=6)
    if suptitle:
        fig.suptitle(textwrap.fill(suptitle, int(width * 14)), fontsize=8)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_gallery(stamps, scores, out_png: str, *, id_column: str = "id", stamp_column: str = "stamp",
                 ncols: int = 6) -> str:
    """Gallery of scored candidates: ``stamps`` (table with id + blob), ``scores`` (scores table,
    drawn in its row order) labelled with p_lens."""
    from training.eval.scoring import decode_stamps

    blobs = dict(zip(stamps.column(id_column).cast("string").to_pylist(), stamps.column(stamp_column).to_pylist()))
    ids = [i for i in scores.column("id").to_pylist() if i in blobs]
    p = dict(zip(scores.column("id").to_pylist(), scores.column("model_score").to_pylist()))
    images, ok, _ = decode_stamps([blobs[i] for i in ids])
    ids = [i for i, good in zip(ids, ok) if good]
    return plot_gallery_images(list(images), [f"{i[:18]}\np_lens={p[i]:.3f}" for i in ids], out_png, ncols)


def six_channel_view(images: np.ndarray, residual_sigma_px: float = 3.0, clip: float = 10.0) -> np.ndarray:
    """(B, 6, H, W) float32: the training recipe's outer-MAD normalised g, r, z + residuals."""
    import torch

    from training.preprocess import Preprocess

    pre = Preprocess({"norm": "outer_mad", "clip": clip, "six_channel": True, "residual_sigma_px": residual_sigma_px})
    with torch.inference_mode():
        return pre(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))).numpy()


def plot_six_channel(images: np.ndarray, titles: Sequence[str], out_png: str, **kw) -> str:
    """One row per stamp: normalised g, r, z and their high-pass residuals."""
    plt = _plt()
    six = six_channel_view(images, **kw)
    names = ["g", "r", "z", "g resid", "r resid", "z resid"]
    fig, axes = plt.subplots(len(six), 6, figsize=(9, 1.6 * len(six)), squeeze=False)
    for i, row in enumerate(six):
        for j in range(6):
            ax = axes[i, j]
            lim = 5.0 if j < 3 else 3.0
            ax.imshow(row[j], origin="lower", cmap="gray" if j < 3 else "RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(names[j], fontsize=8)
        axes[i, 0].set_ylabel(titles[i][:16], fontsize=6)
    fig.suptitle("6-channel view (outer-MAD sigma units; residual = band - Gaussian blur)", fontsize=8)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_training_curves(metrics_csv: str, out_png: str) -> str:
    """Losses and validation metrics per epoch from a run's metrics.csv."""
    import pandas as pd

    from dhs_gen.storage import read_bytes

    frame = pd.read_csv(io.BytesIO(read_bytes(metrics_csv)))
    if "epoch" not in frame.columns:
        raise ValueError(f"{metrics_csv}: no 'epoch' column (columns: {list(frame.columns)})")
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    for col in [c for c in frame.columns if c.endswith("loss")]:
        ax1.plot(frame["epoch"], frame[col], marker="o", ms=3, label=col)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend(fontsize=7)
    # metrics on a 0-1 scale only (counts such as val_n would flatten the curves)
    metric_cols: List[str] = [c for c in frame.columns if c.startswith("val_") and not c.endswith("loss")
                              and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].abs().max() <= 1.0]
    for col in metric_cols:
        ax2.plot(frame["epoch"], frame[col], marker="o", ms=3, label=col)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation metric")
    ax2.set_ylim(0, 1.02)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_strata(rows: Sequence[dict], metric: str, out_png: str, title: str) -> str:
    """Bar chart of ``metric`` per stratum row ({"stratum", metric, "n"}) from stratified_metrics."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    vals = [np.nan if r.get(metric) is None else r[metric] for r in rows]
    ax.bar(range(len(rows)), vals)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{r['stratum']}\nn={r['n']}" for r in rows], fontsize=7)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, out_png)
