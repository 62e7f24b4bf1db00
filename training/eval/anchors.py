"""Anchor evaluation on known lenses: lenscat selection -> cutouts from any CutoutProvider ->
calibrated scores -> recall at p > 0.5 and p > 0.3 (Wilson 95%), with a metadata-only baseline.

The baseline is a cross-validated logistic regression on PSF FWHM (r, arcsec), 5-sigma depth
(r, AB mag) and the masked-pixel fraction only (no pixels), anchors against the evaluation
negatives: if it does nearly as well as the image model, the images add little. lenscat has no
Einstein radius column, so anchors are selected by survey tag, lens type and grading.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from dhs_gen.config import StrictModel
from dhs_gen.stats.intervals import wilson_interval
from dhs_gen.stats.metrics import roc_auc

ProbaFn = Callable[[np.ndarray, pd.DataFrame], np.ndarray]  # (images, per-anchor rows) -> calibrated p


class AnchorConfig(StrictModel):
    """configs/eval.yaml ``anchors:``."""

    enabled: bool = False
    catalog: Optional[str] = Field(None, description="lenscat catalog.csv(.gz); None = packaged copy")  # noqa: UP045
    survey: Optional[str] = "DESI"  # noqa: UP045
    gradings: List[str] = Field(default_factory=lambda: ["confident"])
    lens_types: List[str] = Field(default_factory=lambda: ["galaxy"])
    max_anchors: int = Field(200, ge=1)
    seed: int = 0
    thresholds: List[float] = Field(default_factory=lambda: [0.5, 0.3])
    provider: Dict[str, Any] = Field(default_factory=lambda: {"kind": "mock"})
    cv_folds: int = Field(5, ge=2)


def select_anchors(cfg: AnchorConfig) -> pd.DataFrame:
    """lenscat rows passing the selection; at most ``max_anchors`` in a fixed hash order."""
    from dhs_gen.catalog.lenscat import load_lenscat, select_lenses
    from dhs_gen.determinism import stable_hash64_many

    frame = select_lenses(load_lenscat(cfg.catalog), survey=cfg.survey, lens_types=cfg.lens_types,
                          gradings=cfg.gradings)
    if frame.empty:
        raise ValueError(f"no lenscat rows match survey={cfg.survey!r} types={cfg.lens_types} "
                         f"gradings={cfg.gradings}")
    order = np.argsort(np.asarray(stable_hash64_many(cfg.seed, frame["name"].tolist())), kind="stable")
    return frame.iloc[order[:cfg.max_anchors]].reset_index(drop=True)


def masked_fraction(images: np.ndarray) -> np.ndarray:
    """(B,) fraction of pixels that are non-finite or exactly zero in any band (masked/no data)."""
    bad = ~np.isfinite(images) | (images == 0)
    return bad.any(axis=1).reshape(len(images), -1).mean(axis=1)


def fetch_cutouts(frame: pd.DataFrame, provider, size: int):
    """Cutouts of every row -> (images float32 (n_ok, C, size, size), meta DataFrame per row with
    (even sizes are fetched one pixel larger and cropped: providers serve odd sizes)
    status, psfsize_r [arcsec], psfdepth_r_mag5 [AB mag], mask_frac). Non-finite pixels are set
    to 0 (and counted in mask_frac) so the model sees what the survey delivers."""
    from dhs_gen.survey.base import SurveyError

    images, rows = [], []
    fetch = size if size % 2 else size + 1  # providers serve odd sizes; crop even ones
    off = (fetch - size) // 2
    for rec in frame.itertuples(index=False):
        row = {"name": rec.name, "ra": rec.ra, "dec": rec.dec, "status": "ok", "psfsize_r": np.nan,
               "psfdepth_r_mag5": np.nan, "mask_frac": np.nan}
        try:
            cut = provider.get_cutout(float(rec.ra), float(rec.dec), size=fetch, galaxy_id=str(rec.name))
        except SurveyError as exc:
            row["status"] = exc.reason
            rows.append(row)
            continue
        img = cut.image[:, off:off + size, off:off + size].astype(np.float32)
        row["mask_frac"] = float(masked_fraction(img[None])[0])
        row["psfsize_r"] = float(cut.psf_fwhm[cut.bands.index("r")]) if "r" in cut.bands else np.nan
        row["psfdepth_r_mag5"] = float(cut.psfdepth[cut.bands.index("r")]) if "r" in cut.bands else np.nan
        images.append(np.nan_to_num(img, nan=0.0, posinf=0.0, neginf=0.0))
        rows.append(row)
    stack = np.stack(images) if images else np.zeros((0, 3, size, size), np.float32)
    return stack, pd.DataFrame(rows)


def _rates(p: np.ndarray, thresholds) -> Dict[str, dict]:
    out = {}
    for t in thresholds:
        k, n = int(np.sum(p > t)), int(p.size)
        lo, hi = wilson_interval(k, n)
        out[f"p>{t:g}"] = {"k": k, "n": n, "recall": k / n if n else float("nan"), "lo": float(lo), "hi": float(hi)}
    return out


def metadata_baseline(anchor_meta: pd.DataFrame, negative_meta: pd.DataFrame, thresholds, folds: int = 5,
                      seed: int = 0) -> Dict[str, object]:
    """Out-of-fold logistic regression on (psfsize_r, psfdepth_r_mag5, mask_frac), balanced classes:
    AUC anchors vs negatives and anchor recall at each threshold."""
    from training.eval.calibration import sigmoid
    from training.eval.gates import cv_decision

    cols = ["psfsize_r", "psfdepth_r_mag5", "mask_frac"]
    x = pd.concat([anchor_meta[cols], negative_meta[cols]], ignore_index=True)
    x = x.fillna(x.median()).fillna(0.0).to_numpy(np.float64)
    y = np.r_[np.ones(len(anchor_meta), int), np.zeros(len(negative_meta), int)]
    if min(y.sum(), (1 - y).sum()) < folds:
        return {"status": "too_few_rows", "n_anchors": int(y.sum()), "n_negatives": int((1 - y).sum())}
    p = sigmoid(cv_decision(x, y, folds=folds, seed=seed, balanced=True))
    return {"status": "ok", "features": cols, "auc": roc_auc(y, p), "recall": _rates(p[y == 1], thresholds),
            "n_anchors": int(y.sum()), "n_negatives": int((1 - y).sum())}


def run_anchor_eval(proba: ProbaFn, cfg: AnchorConfig, size: int, negative_p: np.ndarray,
                    negative_meta: pd.DataFrame) -> Dict[str, object]:
    """Score the anchors and compare with the metadata-only baseline.

    ``proba(images, rows)``: calibrated probabilities (``rows``: the anchors' psfsize_r,
    psfdepth_r_mag5, mask_frac for hybrid models); ``negative_p``/``negative_meta``: the evaluation negatives' calibrated
    probabilities and metadata (psfsize_r, psfdepth_r_mag5, mask_frac).
    Returns a JSON-able dict plus ``_frame`` (per-anchor rows) and ``_images`` for galleries.
    """
    from dhs_gen.survey.providers import make_provider

    anchors = select_anchors(cfg)
    provider = make_provider(cfg.provider)
    try:
        images, meta = fetch_cutouts(anchors, provider, size)
    finally:
        provider.close()
    ok = (meta["status"] == "ok").to_numpy()
    meta["p_lens"] = np.nan
    if ok.any():
        meta.loc[ok, "p_lens"] = proba(images, meta[ok])
    p = meta.loc[ok, "p_lens"].to_numpy(np.float64)
    out: Dict[str, object] = {
        "selection": {"survey": cfg.survey, "gradings": cfg.gradings, "lens_types": cfg.lens_types,
                      "provider": cfg.provider.get("kind", "mock"), "n_selected": int(len(anchors))},
        "status_counts": meta["status"].value_counts().to_dict(),
        "recall": _rates(p, cfg.thresholds),
    }
    if ok.any() and len(negative_p):
        y = np.r_[np.ones(ok.sum(), int), np.zeros(len(negative_p), int)]
        out["image_model_auc_vs_negatives"] = roc_auc(y, np.r_[p, np.asarray(negative_p, np.float64)])
        out["metadata_baseline"] = metadata_baseline(meta[ok], negative_meta, cfg.thresholds, cfg.cv_folds, cfg.seed)
    out["_frame"] = meta
    out["_images"] = images
    return out
