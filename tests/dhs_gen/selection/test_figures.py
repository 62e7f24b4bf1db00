"""Selection figures say what the numbers support: a fixed 0-1 colour scale with n and interval in
every cell, no curve for a cut the negatives cannot resolve, no bootstrap bars from a few regions."""
from __future__ import annotations

import pandas as pd
import pytest

from dhs_gen.selection import figures


@pytest.fixture
def captured(monkeypatch):
    """The figures instead of files (``_save`` keeps the figure open)."""
    figs = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: figs.append(fig) or path)
    return figs


def _rows(axis, lo, hi, c, n, fpr, n_regions=3):
    return [{"model_id": "m" * 16, "subset": "all", "threshold_kind": "fpr", "threshold_value": fpr, "axis": axis,
             "bin_index": i, "bin_lo": lo_, "bin_hi": hi_, "completeness": c_, "n": n_,
             "ci_lo": max(c_ - 0.05, 0.0), "ci_hi": min(c_ + 0.05, 1.0), "boot_lo": c_ - 0.01, "boot_hi": c_ + 0.01,
             "n_regions": n_regions} for i, (lo_, hi_, c_, n_) in enumerate(zip(lo, hi, c, n))]


def test_heatmap_scale_is_fixed_and_cells_carry_n_and_interval(captured):
    lo = [[t, z] for t in (0.5, 1.0) for z in (0.2, 0.4)]
    hi = [[t + 0.5, z + 0.2] for t, z in lo]
    df = pd.DataFrame(_rows("theta_e_arcsec x z_l", lo, hi, [0.02, 0.05, 0.10, 0.16], [80, 90, 60, 40], 0.01))
    figures.heatmap(df, "x.png", "m" * 16, 0.01)
    ax = captured[0].axes[0]
    mesh = ax.collections[0]
    assert (mesh.norm.vmin, mesh.norm.vmax) == (0.0, 1.0)  # 16% must not look like 100%
    texts = [t.get_text() for t in ax.texts]
    assert "16%\n[11–21]\nn=40" in texts and len(texts) == 4


def test_unresolved_cut_not_drawn_and_few_regions_give_no_bootstrap_bars(captured):
    rows = []
    for fpr in (0.01, 0.001):
        rows += _rows("theta_e_arcsec", [[0.5], [1.0], [1.5]], [[1.0], [1.5], [2.0]], [0.1, 0.3, 0.5], [100] * 3, fpr)
    df = pd.DataFrame(rows)
    figures.curves(df, "c.png", "m" * 16, [0.01, 0.001], axes=("theta_e_arcsec",), unresolved=[0.001])
    ax = captured[0].axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "FPR 0.01" in labels and "FPR 0.001" not in labels
    assert not any(type(c).__name__ == "LineCollection" for c in ax.collections)  # 3 regions: no bars
    assert "not drawn" in captured[0]._suptitle.get_text()
    captured.clear()
    df["n_regions"] = 12
    figures.curves(df, "c.png", "m" * 16, [0.01], axes=("theta_e_arcsec",))
    assert any(type(c).__name__ == "LineCollection" for c in captured[0].axes[0].collections)


def test_heatmap_cells_state_the_interval_with_the_cut_uncertainty(captured):
    # the bootstrap (cut recomputed per replicate) is wider than Wilson here: the cell must show it
    lo = [[t, z] for t in (0.5, 1.0) for z in (0.2, 0.4)]
    hi = [[t + 0.5, z + 0.2] for t, z in lo]
    rows = _rows("theta_e_arcsec x z_l", lo, hi, [0.20, 0.30, 0.40, 0.50], [500] * 4, 0.01, n_regions=40)
    for r in rows:
        r["boot_lo"], r["boot_hi"] = r["completeness"] - 0.12, r["completeness"] + 0.12
    rows[0]["n_regions"] = 4  # few regions: union with Wilson
    rows[0]["ci_lo"], rows[0]["boot_hi"] = 0.02, 0.25
    figures.heatmap(pd.DataFrame(rows), "x.png", "m" * 16, 0.01)
    texts = [t.get_text() for t in captured[0].axes[0].texts]
    assert "50%\n[38–62]\nn=500" in texts and "20%\n[2–25]\nn=500" in texts
