"""Shortcut gates G1-G5 and the pre-training data gates.

Definitions (stamps are raw float32 (B, C, H, W) nanomaggies, g, r, z; geometry about the
stamp centre ((W-1)/2, (H-1)/2); ``x_ratio`` = theta_E / PSF FWHM (r band)):

* G1 core-only AUC: logistic regression on the central ``core_size_px`` x ``core_size_px`` pixels
  of every band (legacy: 10 x 10), positives vs their paired controls, x_ratio >= ``x_min``, with
  each pair's arc footprint [max(2, theta_pix - 1.5 FWHM_pix), theta_pix + ``exclude_outer_fwhm``
  FWHM_pix) zeroed in both stamps (``exclude_arc_annulus``): the box half-diagonal (1.85") exceeds
  theta_E for many x >= 1 pairs, so without the exclusion the probe sees the arc itself. A high AUC means the centre separates the classes by something other than
  the arc: a shortcut. Critical, <= 0.60. The AUC with the annulus kept is reported alongside.
* G2 radial-profile AUC: logistic regression on the azimuthal-median profile (1-px rings out to
  ``radial_max_px``) of each band, arc-footprint pixels excluded likewise (a profile through the
  arc is the arc's own light, which G3 requires to be visible; the footprint reaches 2.5 FWHM out
  because PSF wings put ~6% of the arc's flux beyond the 1.5-FWHM annulus). Critical, <= 0.60.
* G3 arc-annulus AUC: logistic regression on 7 statistics per band (mean, std, median, MAD,
  p10, p90, max) in the annulus [max(2, theta_pix - 1.5 FWHM_pix), theta_pix + 1.5 FWHM_pix):
  the arc must be visible where it should be. Important, >= 0.75.
* G4 hard-negative mean p: the model's mean probability on theta-aware azimuthally shuffled
  hard negatives. Critical, <= 0.05. Needs a model.
* G5 arc-occlusion drop: mean p(positive) - mean p(positive with the annulus replaced by the
  paired control's pixels). Critical, >= 0.30. Needs a model.

G1-G3 are pixel probes of the *data* (they never call the model: can a linear probe on the core or
the radial profile tell positives from their controls, and is the arc visible in its annulus?).
G4 and G5 are the only gates that test the *model*: it must not fire on shuffled arc light (G4)
and its score must drop when the arc is hidden (G5). Both are critical, so a model that ignores
the arcs (e.g. a constant output: G5 drop 0) fails overall however clean the data are.

Pre-training data gates (:func:`run_paired_pixel_probes`, no model), on positives vs their own
controls with x_ratio >= ``x_min``: r-band core brightness ratio mean(pos)/mean(ctrl) in
``core_brightness_ratio``; the G1 core probe's AUC < ``data_core_auc_max``; and the noise-statistics
AUC < ``data_noise_auc_max``: logistic regression on log robust sigma (1.4826 MAD) of the residual
of a local quadratic fit (Savitzky-Golay, ``noise_fit_px`` square; it removes PSF-scale structure,
which every real sky signal has, and keeps pixel-scale noise) per band in the core box and in the
arc annulus. The pixel probes are linear in flux and blind to variance; the noise probe catches
noise added to one class only (e.g. arc shot noise at a gain inconsistent with the host's own
noise) and structure sharper than the PSF.

Classifier AUCs are computed on out-of-fold predictions (pair-grouped stratified K-fold, so a
positive and its control never sit on opposite sides of a fold), never on the data they were
fitted to. Verdict (research plan, gen5-prime 3.2): fail if any critical gate fails; pass if all
critical pass and >= 4/5 pass; marginal if exactly 3/5 pass; "incomplete" when gates were
skipped (e.g. no model) and nothing evaluated failed.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Literal

import numpy as np

from dhs_gen import PIXEL_SCALE_ARCSEC
from dhs_gen.config import StrictModel
from dhs_gen.stats.metrics import bin_labels, roc_auc

# (images float32 (k, C, H, W) nanomaggies, pair indices (k,)) -> calibrated probabilities (k,);
# the indices let hybrid models look up each pair's metadata.
ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


class GateThreshold(StrictModel):
    """A gate passes when ``value op threshold`` holds; critical gates decide the verdict."""

    op: Literal["<=", ">="]
    value: float
    critical: bool


class GateConfig(StrictModel):
    """Gate definitions and thresholds (configs/eval.yaml ``gates:``)."""

    x_min: float = 1.0
    x_bins: List[float] = [0.0, 0.8, 1.0, 100.0]
    core_size_px: int = 10
    radial_max_px: int = 32
    annulus_min_px: float = 2.0
    annulus_half_width_fwhm: float = 1.5
    cv_folds: int = 5
    logreg_c: float = 1.0
    seed: int = 0
    g1: GateThreshold = GateThreshold(op="<=", value=0.60, critical=True)
    g2: GateThreshold = GateThreshold(op="<=", value=0.60, critical=True)
    g3: GateThreshold = GateThreshold(op=">=", value=0.75, critical=False)
    g4: GateThreshold = GateThreshold(op="<=", value=0.05, critical=True)
    g5: GateThreshold = GateThreshold(op=">=", value=0.30, critical=True)
    exclude_arc_annulus: bool = True
    exclude_outer_fwhm: float = 2.5
    noise_fit_px: int = 5
    core_brightness_ratio: List[float] = [0.9, 1.1]
    data_core_auc_max: float = 0.60
    data_noise_auc_max: float = 0.60


GATE_NAMES = {
    "G1": "core_only_auc",
    "G2": "radial_profile_auc",
    "G3": "arc_annulus_auc",
    "G4": "hard_negative_mean_p",
    "G5": "arc_occlusion_drop",
}


# ---------------------------------------------------------------- features (vectorised numpy)
def _check_images(images: np.ndarray, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.float32:
        raise ValueError(f"{what} must be float32 (B, C, H, W) nanomaggies, got {images.dtype} {images.shape}")
    bad = ~np.isfinite(images)
    if bad.any():
        raise ValueError(f"{what}: {int(bad.any(axis=(1, 2, 3)).sum())} stamps contain NaN/Inf pixels")
    return images


def radius_grid(h: int, w: int) -> np.ndarray:
    """(H, W) distance in pixels from the stamp centre ((W-1)/2, (H-1)/2)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.hypot(yy - (h - 1) / 2.0, xx - (w - 1) / 2.0).astype(np.float32)


def core_features(images: np.ndarray, size: int = 10) -> np.ndarray:
    """(B, C*size*size) pixels of the central size x size box (legacy G1 input)."""
    _, _, h, w = images.shape
    y0, x0 = (h - size) // 2, (w - size) // 2
    if size < 1 or y0 < 0 or x0 < 0:
        raise ValueError(f"core size {size} does not fit a {h}x{w} stamp")
    return images[:, :, y0:y0 + size, x0:x0 + size].reshape(len(images), -1)


def radial_profile_features(images: np.ndarray, max_px: int = 32, exclude: np.ndarray | None = None) -> np.ndarray:
    """(B, C*R) azimuthal-median profile in 1-px rings r in [k, k+1), k < max_px.

    ``exclude``: optional (B, H, W) bool pixels left out of each stamp's rings (a ring with no
    pixels left reads 0)."""
    b, c, h, w = images.shape
    ring = np.floor(radius_grid(h, w)).astype(np.int64).ravel()
    flat = images.reshape(b, c, h * w)
    if exclude is not None:
        flat = np.where(exclude.reshape(b, 1, h * w), np.nan, flat)
    med = np.median if exclude is None else _nanmedian0
    rings = [k for k in range(max_px) if np.any(ring == k)]
    prof = np.stack([med(flat[:, :, ring == k], axis=-1) for k in rings], axis=-1)
    return prof.reshape(b, -1)


def _nanmedian0(x: np.ndarray, axis: int) -> np.ndarray:
    """nanmedian with all-NaN slices read as 0 (no warning)."""
    empty = np.isnan(x).all(axis=axis)
    out = np.nanmedian(np.where(empty[..., None], 0.0, x), axis=axis)
    return np.where(empty, 0.0, out)


def exclude_pixels(images: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    """``images`` with the (B, H, W) ``exclude`` pixels set to 0 in every band (a copy)."""
    return images if exclude is None else np.where(exclude[:, None], np.float32(0), images)


def quadratic_fit_kernel(n: int = 5) -> np.ndarray:
    """(n, n) weights giving the centre value of a least-squares 2-D quadratic fit over an n x n
    window (Savitzky-Golay); n odd >= 3."""
    if n < 3 or n % 2 == 0:
        raise ValueError(f"quadratic fit window must be odd and >= 3, got {n}")
    yy, xx = (np.mgrid[0:n, 0:n] - n // 2).astype(np.float64)
    design = np.stack([np.ones_like(xx), xx, yy, xx ** 2, xx * yy, yy ** 2], axis=-1).reshape(-1, 6)
    return np.linalg.pinv(design)[0].reshape(n, n)


def noise_features(images: np.ndarray, core_size: int = 10, masks: np.ndarray | None = None,
                   fit_px: int = 5) -> np.ndarray:
    """(B, C*K) log10 robust sigma [nmgy/pixel] (1.4826 MAD) of image - local quadratic fit
    (:func:`quadratic_fit_kernel`) per band, in the central core box and (K=2) in ``masks``."""
    from scipy.ndimage import correlate

    b, c, h, w = images.shape
    kernel = quadratic_fit_kernel(fit_px).astype(np.float32)[None, None]
    hp = images - correlate(images, kernel, mode="nearest")
    core = np.zeros((h, w), bool)
    y0, x0 = (h - core_size) // 2, (w - core_size) // 2
    core[y0:y0 + core_size, x0:x0 + core_size] = True
    regions = [np.broadcast_to(core, (b, h, w))] + ([] if masks is None else [masks])
    feats = []
    for region in regions:
        v = np.where(region[:, None], hp, np.nan).reshape(b, c, h * w)
        mad = _nanmedian0(np.abs(v - _nanmedian0(v, axis=-1)[..., None]), axis=-1)
        feats.append(np.log10(1.4826 * mad + 1e-12))
    return np.concatenate(feats, axis=1)


def annulus_masks(shape, theta_e_arcsec, psf_fwhm_arcsec, min_px: float = 2.0,
                  half_width_fwhm: float = 1.5, outer_fwhm: float | None = None) -> np.ndarray:
    """(B, H, W) bool arc annulus [max(min_px, th - k*fwhm), th + k_out*fwhm) in pixels per stamp
    (k = ``half_width_fwhm``; k_out = ``outer_fwhm``, default k)."""
    b, _, h, w = shape
    theta = np.asarray(theta_e_arcsec, dtype=np.float32).reshape(b, 1, 1) / PIXEL_SCALE_ARCSEC
    fwhm = np.asarray(psf_fwhm_arcsec, dtype=np.float32).reshape(b, 1, 1) / PIXEL_SCALE_ARCSEC
    if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(fwhm)) and np.all(fwhm > 0)):
        raise ValueError("theta_e_arcsec and psf_fwhm_arcsec must be finite with FWHM > 0")
    r = radius_grid(h, w)[None]
    lo = np.maximum(min_px, theta - half_width_fwhm * fwhm)
    k_out = half_width_fwhm if outer_fwhm is None else outer_fwhm
    return (r >= lo) & (r < theta + k_out * fwhm)


def annulus_features(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(B, C*7) mean, std, median, MAD, p10, p90, max per band inside each stamp's annulus."""
    b, c, h, w = images.shape
    if np.any(masks.reshape(b, -1).sum(axis=1) == 0):
        raise ValueError("an arc annulus holds no pixels (theta_E / FWHM outside the stamp?)")
    x = np.where(masks[:, None], images, np.nan).reshape(b, c, h * w)
    med = np.nanmedian(x, axis=-1)
    p10, p90 = np.nanpercentile(x, [10, 90], axis=-1)
    feats = [np.nanmean(x, axis=-1), np.nanstd(x, axis=-1), med,
             np.nanmedian(np.abs(x - med[..., None]), axis=-1), p10, p90, np.nanmax(x, axis=-1)]
    return np.stack(feats, axis=-1).reshape(b, -1)


def core_brightness(images: np.ndarray, size: int = 10) -> np.ndarray:
    """(B,) summed r-band flux [nanomaggies] in the central size x size box."""
    _, c, h, w = images.shape
    band = 1 if c >= 2 else 0
    y0, x0 = (h - size) // 2, (w - size) // 2
    return images[:, band, y0:y0 + size, x0:x0 + size].sum(axis=(1, 2), dtype=np.float64)


# ---------------------------------------------------------------- cross-validated probes
def cv_decision(features: np.ndarray, labels, groups=None, folds: int = 5, c: float = 1.0, seed: int = 0,
                balanced: bool = False) -> np.ndarray:
    """Out-of-fold decision values of a standardised logistic regression (liblinear, L2).

    ``groups`` keeps rows of one group (a positive and its control) in the same fold;
    ``balanced`` reweights classes (for very unequal class counts).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(labels).astype(int)
    x = np.asarray(features, dtype=np.float64)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, solver="liblinear", max_iter=1000,
                                                             class_weight="balanced" if balanced else None))
    if groups is None:
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_predict(clf, x, y, cv=cv, groups=groups, method="decision_function")


def cv_auc(features: np.ndarray, labels, groups=None, folds: int = 5, c: float = 1.0,
           seed: int = 0) -> Dict[str, float]:
    """ROC AUC of :func:`cv_decision` (out-of-fold, never on the rows a fold was fitted to).

    Returns {"auc", "n_pos", "n_neg", "folds"}; AUC NaN when a class has fewer than ``folds`` rows.
    """
    y = np.asarray(labels).astype(int)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    out = {"auc": float("nan"), "n_pos": n_pos, "n_neg": n_neg, "folds": folds}
    if min(n_pos, n_neg) < folds:
        return out
    out["auc"] = roc_auc(y, cv_decision(features, y, groups, folds, c, seed))
    return out


def _paired(features_pos: np.ndarray, features_ctrl: np.ndarray):
    n = len(features_pos)
    x = np.concatenate([features_pos, features_ctrl])
    y = np.r_[np.ones(n, dtype=int), np.zeros(n, dtype=int)]
    groups = np.r_[np.arange(n), np.arange(n)]
    return x, y, groups


def _finite(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _status(value: float, thr: GateThreshold) -> str:
    if value is None or not np.isfinite(value):
        return "skipped"
    ok = value <= thr.value if thr.op == "<=" else value >= thr.value
    return "pass" if ok else "fail"


def gate_verdict(gates: Dict[str, dict]) -> Dict[str, object]:
    """Overall verdict from per-gate {"status", "critical"} (the research plan's rule)."""
    statuses = [g["status"] for g in gates.values()]
    n_pass = statuses.count("pass")
    critical_fail = [k for k, g in gates.items() if g["critical"] and g["status"] == "fail"]
    skipped = [k for k, g in gates.items() if g["status"] == "skipped"]
    if critical_fail:
        overall = "fail"
    elif skipped:
        overall = "incomplete"
    elif n_pass >= 4:
        overall = "pass"
    elif n_pass == 3:
        overall = "marginal"
    else:
        overall = "fail"
    return {"overall": overall, "n_passed": n_pass, "n_total": len(gates),
            "critical_failures": critical_fail, "skipped": skipped,
            "rule": "fail if any critical gate fails; pass if all critical pass and >= 4/5 pass; "
                    "marginal if 3/5 pass; incomplete if gates were skipped and none failed"}


def _gate(name: str, value, thr: GateThreshold, **extra) -> dict:
    value = None if value is None or not np.isfinite(value) else float(value)
    return {"metric": GATE_NAMES[name], "value": value, "op": thr.op, "threshold": thr.value,
            "critical": thr.critical, "status": _status(value, thr), **extra}


def _stratified_probe(feat_pos, feat_ctrl, x_ratio, cfg: GateConfig) -> List[dict]:
    labels = bin_labels(x_ratio, cfg.x_bins)
    rows = []
    for label in np.unique(labels):
        sel = labels == label
        x, y, g = _paired(feat_pos[sel], feat_ctrl[sel])
        res = cv_auc(x, y, g, cfg.cv_folds, cfg.logreg_c, cfg.seed)
        rows.append({"x_ratio_bin": str(label), **res})
    return rows


def _check_pairs(pos_images, ctrl_images, theta_e_arcsec, psf_fwhm_arcsec):
    """Validated (positives, controls, theta_E [arcsec], PSF FWHM [arcsec]) of paired stamps."""
    pos = _check_images(pos_images, "pos_images")
    ctrl = _check_images(ctrl_images, "ctrl_images")
    if pos.shape != ctrl.shape:
        raise ValueError(f"positives {pos.shape} and controls {ctrl.shape} must pair row by row")
    theta = np.asarray(theta_e_arcsec, dtype=np.float64).ravel()
    fwhm = np.asarray(psf_fwhm_arcsec, dtype=np.float64).ravel()
    if theta.size != len(pos) or fwhm.size != len(pos):
        raise ValueError("theta_e_arcsec and psf_fwhm_arcsec need one value per pair")
    return pos, ctrl, theta, fwhm


def run_shortcut_gates(pos_images: np.ndarray, ctrl_images: np.ndarray, theta_e_arcsec, psf_fwhm_arcsec,
                    *, hardneg_images: np.ndarray | None = None, score_fn: ScoreFn | None = None,
                    config: GateConfig | None = None) -> Dict[str, object]:
    """Run G1-G5 on paired injection stamps; G4/G5 only when ``score_fn`` is given.

    ``pos_images``/``ctrl_images``: float32 (B, C, H, W) nanomaggies, row i of each is one pair;
    ``theta_e_arcsec``, ``psf_fwhm_arcsec`` (r band): (B,) arcsec; ``hardneg_images``: the pairs'
    hard negatives; ``score_fn(images, pair_idx)`` -> calibrated probabilities. Returns a JSON-able dict
    with per-gate results (also per x_ratio stratum for G1-G3) and the overall verdict.
    """
    cfg = config or GateConfig()
    pos, ctrl, theta, fwhm = _check_pairs(pos_images, ctrl_images, theta_e_arcsec, psf_fwhm_arcsec)
    x_ratio = theta / fwhm
    sel = x_ratio >= cfg.x_min
    masks = annulus_masks(pos.shape, theta, fwhm, cfg.annulus_min_px, cfg.annulus_half_width_fwhm)

    excl = annulus_masks(pos.shape, theta, fwhm, cfg.annulus_min_px, cfg.annulus_half_width_fwhm,
                         cfg.exclude_outer_fwhm) if cfg.exclude_arc_annulus else None
    probes = {
        "G1": lambda im, ex: core_features(exclude_pixels(im, ex), cfg.core_size_px),
        "G2": lambda im, ex: radial_profile_features(im, cfg.radial_max_px, ex),
        "G3": lambda im, ex: annulus_features(im, masks),
    }
    gates: Dict[str, dict] = {}
    for name, feat in probes.items():
        fp, fc = feat(pos, excl), feat(ctrl, excl)
        x, y, g = _paired(fp[sel], fc[sel])
        res = cv_auc(x, y, g, cfg.cv_folds, cfg.logreg_c, cfg.seed)
        extra = {}
        if name != "G3":
            extra["arc_annulus_excluded"] = excl is not None
            if excl is not None:  # diagnostic: the same probe with the arc's own pixels kept
                xa, _, _ = _paired(feat(pos[sel], None), feat(ctrl[sel], None))
                extra["auc_with_arc_annulus"] = _finite(cv_auc(xa, y, g, cfg.cv_folds, cfg.logreg_c, cfg.seed)["auc"])
        gates[name] = _gate(name, res["auc"], getattr(cfg, name.lower()), n_pairs=int(sel.sum()),
                            x_min=cfg.x_min, by_stratum=_stratified_probe(fp, fc, x_ratio, cfg), **extra)

    p_hn = None
    if score_fn is not None and hardneg_images is not None:
        hn = _check_images(hardneg_images, "hardneg_images")
        p_hn = np.asarray(score_fn(hn, np.arange(len(hn))), dtype=np.float64)
    gates["G4"] = _gate("G4", None if p_hn is None else float(np.mean(p_hn)), cfg.g4,
                        n=0 if p_hn is None else int(p_hn.size),
                        fpr_at_0p5=None if p_hn is None else float(np.mean(p_hn >= 0.5)))
    drop = None
    extra: Dict[str, object] = {"n": int(sel.sum())}
    if score_fn is not None and sel.any():
        occluded = np.where(masks[sel][:, None], ctrl[sel], pos[sel])
        idx = np.flatnonzero(sel)
        p_pos = np.asarray(score_fn(pos[sel], idx), dtype=np.float64)
        p_occ = np.asarray(score_fn(occluded, idx), dtype=np.float64)
        drop = float(np.mean(p_pos) - np.mean(p_occ))
        extra.update(mean_p_pos=float(np.mean(p_pos)), mean_p_occluded=float(np.mean(p_occ)))
    gates["G5"] = _gate("G5", drop, cfg.g5, **extra)
    return {"gates": gates, **gate_verdict(gates), "n_pairs": int(len(pos)), "model": score_fn is not None}


def run_pixel_probes(images: np.ndarray, labels, *, groups=None, masks: np.ndarray | None = None,
                   exclude: np.ndarray | None = None, config: GateConfig | None = None) -> Dict[str, object]:
    """Pre-training gates on a labelled stamp set (no model).

    * ``core_brightness_ratio``: r-band core flux mean(pos)/mean(neg) within ``core_brightness_ratio``;
    * ``core_only_auc``: cross-validated core-pixel AUC < ``data_core_auc_max`` (``exclude`` pixels,
      (B, H, W) bool - each stamp's arc footprint - zeroed first when ``exclude_arc_annulus``);
    * ``noise_auc``: cross-validated AUC of :func:`noise_features` (core box, plus ``masks``)
      < ``data_noise_auc_max``.

    ``groups`` keeps a positive and its control in one fold. Returns the three gates and "overall".
    """
    cfg = config or GateConfig()
    images = _check_images(images, "images")
    y = np.asarray(labels).astype(int).ravel()
    if y.size != len(images) or not set(np.unique(y)) <= {0, 1}:
        raise ValueError("labels must be 0/1 with one per image")
    if y.min() == y.max():
        raise ValueError("data gates need both positives and negatives")
    for name, m in (("masks", masks), ("exclude", exclude)):
        if m is not None and m.shape != (len(images), *images.shape[2:]):
            raise ValueError(f"{name} must be (B, H, W) = {(len(images), *images.shape[2:])}, got {m.shape}")
    core = core_brightness(images, cfg.core_size_px)
    neg_mean = float(core[y == 0].mean())
    ratio = float(core[y == 1].mean()) / neg_mean if neg_mean != 0 else float("nan")
    lo, hi = cfg.core_brightness_ratio
    brightness = {"value": _finite(ratio), "range": [lo, hi],
                  "status": "pass" if np.isfinite(ratio) and lo <= ratio <= hi else "fail"}

    def probe(features, limit):
        res = cv_auc(features, y, groups, cfg.cv_folds, cfg.logreg_c, cfg.seed)
        ok = np.isfinite(res["auc"]) and res["auc"] < limit
        return {**res, "auc": _finite(res["auc"]), "max": limit, "status": "pass" if ok else "fail"}

    excl = exclude if cfg.exclude_arc_annulus else None
    core_auc = probe(core_features(exclude_pixels(images, excl), cfg.core_size_px), cfg.data_core_auc_max)
    core_auc["arc_annulus_excluded"] = excl is not None
    noise_auc = probe(noise_features(images, cfg.core_size_px, masks, cfg.noise_fit_px), cfg.data_noise_auc_max)
    noise_auc["regions"] = ["core"] + ([] if masks is None else ["arc_annulus"])
    gates = {"core_brightness_ratio": brightness, "core_only_auc": core_auc, "noise_auc": noise_auc}
    overall = "pass" if all(g["status"] == "pass" for g in gates.values()) else "fail"
    return {**gates, "overall": overall}


def run_paired_pixel_probes(pos_images: np.ndarray, ctrl_images: np.ndarray, theta_e_arcsec, psf_fwhm_arcsec,
                          config: GateConfig | None = None) -> Dict[str, object]:
    """:func:`run_pixel_probes` on paired injections: positives vs their own controls (one fold group
    per pair), pairs with theta_E / FWHM_r >= ``x_min`` only (below it the arc is unresolved and
    physically fills the core), arc annulus (noise probe) and arc footprint (core probe) per pair as in
    G3 and G1; "incomplete" (with a reason) when fewer than ``cv_folds`` pairs qualify. Adds ``n_pairs``, ``x_min`` and the
    brightness ratio per x_ratio stratum (``x_bins``) for context."""
    cfg = config or GateConfig()
    pos, ctrl, theta, fwhm = _check_pairs(pos_images, ctrl_images, theta_e_arcsec, psf_fwhm_arcsec)
    x_ratio = theta / fwhm
    sel = x_ratio >= cfg.x_min
    if sel.sum() < cfg.cv_folds:
        return {"overall": "incomplete", "n_pairs": int(sel.sum()), "x_min": cfg.x_min,
                "reason": f"fewer than {cfg.cv_folds} pairs with theta_E/FWHM >= {cfg.x_min}"}
    geometry = (pos[sel].shape, theta[sel], fwhm[sel], cfg.annulus_min_px, cfg.annulus_half_width_fwhm)
    masks = annulus_masks(*geometry)
    footprint = annulus_masks(*geometry, cfg.exclude_outer_fwhm)
    n = int(sel.sum())
    out = run_pixel_probes(np.concatenate([pos[sel], ctrl[sel]]), np.r_[np.ones(n), np.zeros(n)],
                         groups=np.r_[np.arange(n), np.arange(n)], masks=np.concatenate([masks, masks]),
                         exclude=np.concatenate([footprint, footprint]), config=cfg)
    labels = bin_labels(x_ratio, cfg.x_bins)
    cp, cc = core_brightness(pos, cfg.core_size_px), core_brightness(ctrl, cfg.core_size_px)
    out["core_brightness_ratio"]["by_stratum"] = [
        {"x_ratio_bin": str(b), "n_pairs": int((labels == b).sum()),
         "value": _finite(cp[labels == b].mean() / cc[labels == b].mean())} for b in np.unique(labels)]
    return {**out, "n_pairs": n, "x_min": cfg.x_min}
