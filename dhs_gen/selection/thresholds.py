"""Recovery thresholds: the logit cut that gives a target false-positive rate on negatives, and
the same cut recomputed in every bootstrap replicate of the negatives.

Convention. With n held-out negatives the cut is the (k+1)-th highest negative logit and an object
is recovered when its logit is strictly above it. For a new negative from the same population the
expected FPR of that cut is (k+1)/(n+1) (the order-statistic identity), so ``k = floor(fpr (n+1)) - 1``
is the largest k whose expected FPR does not exceed the target: the cut is unbiased or, when
fpr (n+1) is not an integer, slightly conservative. (The earlier ``k = floor(fpr n)`` gave an expected
FPR up to 1.5x the target at fpr n = 2 and biased completeness high.) A cut is ``resolved`` only with
at least ``MIN_NEGATIVES_ABOVE`` negatives above it: the bootstrap of an extreme order statistic is
not consistent below that, so ``n >= (MIN_NEGATIVES_ABOVE + 1) / fpr - 1`` negatives are needed.

Cuts are set on the logit only: the float32 sigmoid saturates to 1.0 above a logit of ~17, so
``model_score`` ties distinct logits and can move the cut.

Bootstrap. The negatives are sorted once (descending). A replicate resamples them by HEALPix region
(NESTED, ``nside``; i.i.d. when they carry no position) as integer multiplicities; its cut is read off
the cumulative multiplicity of the sorted scores (an order statistic per replicate, no re-sort), and
only the top of the sorted list is touched. ``CutSet`` keeps every distinct cut as a sorted "level"
grid: the completeness counts record, per injection, how many levels lie below its logit, so a
replicate's recovered count under its own cut is a sum of counts (``completeness.finalize``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dhs_gen.determinism import stable_hash64
from dhs_gen.schemas import STATUS_OK
from dhs_gen.selection.binning import sky_regions
from dhs_gen.stats.intervals import wilson_interval

FPR = "fpr"
PROXY = "proxy"
SCORE_COLUMN = "logit"
MIN_NEGATIVES_ABOVE = 10
NEGATIVE_ID_KEYS = ["id", "model_id"]
# what the negatives' scores are read with: the position columns are optional (region resampling)
NEGATIVE_COLUMNS = ["id", "model_id", "status", SCORE_COLUMN, "healpix_128", "ra", "dec"]


@dataclass(frozen=True)
class Threshold:
    """``kind`` fpr: recovered when logit > ``cut`` (``value`` is the target FPR).
    ``kind`` proxy: the phase-4d proxy with theta_E/PSF >= ``value`` (``cut`` = value)."""

    kind: str
    value: float
    cut: float


@dataclass(frozen=True)
class CutSet:
    """One model's FPR cuts on a shared level grid.

    ``levels``: sorted distinct cut values (logits) of the full sample and of every replicate;
    ``point``: (F,) level index of each FPR's full-sample cut; ``boot``: (F, n_boot) level index of
    each replicate's cut (shape (F, 0) without a bootstrap). An injection's level is
    ``searchsorted(levels, logit, 'left')``; it is recovered under level i when its level > i.
    """

    levels: np.ndarray
    point: np.ndarray
    boot: np.ndarray

    def level_of(self, scores: np.ndarray) -> np.ndarray:
        """int32 number of cut levels strictly below each score (NaN -> 0, never recovered)."""
        s = np.asarray(scores, dtype=np.float64)
        return np.where(np.isfinite(s), np.searchsorted(self.levels, s, side="left"), 0).astype(np.int32)


def cut_rank(fpr: float, n) -> np.ndarray:
    """k = negatives above the cut: floor(fpr (n+1)) - 1, at least 0 (the expected FPR (k+1)/(n+1)
    then does not exceed ``fpr`` unless even k = 0 does, i.e. fpr (n+1) < 1)."""
    n = np.asarray(n, dtype=np.float64)
    # the 1e-12 keeps an exact product such as 0.29 * 100 from flooring to 28
    return np.maximum(np.floor(fpr * (n + 1.0) * (1 + 1e-12)) - 1.0, 0.0).astype(np.int64)


def expected_fpr(k, n) -> np.ndarray:
    """(k+1)/(n+1): the expected false-positive rate of the (k+1)-th highest of n negatives."""
    return (np.asarray(k, dtype=np.float64) + 1.0) / (np.asarray(n, dtype=np.float64) + 1.0)


def score_cut_at_fpr(negative_scores: np.ndarray, fpr: float) -> tuple[float, int]:
    """The (k+1)-th highest finite negative score, k = :func:`cut_rank` (fpr, n).

    Returns (cut, n_above); recovery is ``score > cut``. Raises when there are no finite scores.
    """
    s = np.asarray(negative_scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ValueError("no finite negative scores to set an FPR threshold")
    k = int(cut_rank(fpr, s.size))
    cut = float(-np.partition(-s, k)[k])
    return cut, int(np.count_nonzero(s > cut))


def region_draws(n_regions: int, n_boot: int, rng) -> np.ndarray:
    """(n_boot, n_regions) float64 draw counts of each region when n_regions are drawn with replacement."""
    draws = rng.integers(0, n_regions, (n_boot, n_regions)) + n_regions * np.arange(n_boot)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n_regions).reshape(n_boot, n_regions).astype(np.float64)


def _top_multiplicities(regions, m: int, n: int, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """((n_boot, m) draw counts of the m top-sorted negatives, (n_boot,) resample sizes).

    ``regions`` = (region code per sorted negative, negatives per region) resamples whole regions;
    None resamples the n negatives i.i.d.: the number drawn from the top m is Binomial(n, m/n), spread
    multinomially over them (the exact marginal of an n-draw multinomial), and every resample has n."""
    rng = np.random.default_rng(seed)
    if regions is None:
        total = rng.binomial(n, m / n, size=n_boot)
        return rng.multinomial(total, np.full(m, 1.0 / m)).astype(np.float64), np.full(n_boot, float(n))
    codes, sizes = regions
    weights = region_draws(sizes.size, n_boot, rng)
    return weights[:, codes[:m]], weights @ sizes


def replicate_cut_indices(sorted_desc: np.ndarray, region_codes, fprs, n_boot: int, seed: int) -> np.ndarray:
    """(F, n_boot) index into ``sorted_desc`` (scores sorted descending) of each replicate's cut.

    ``region_codes``: int code per sorted score (regions resampled whole), or None (i.i.d.).
    Only the top of the list is used: it grows until every replicate's cut falls inside it.
    """
    n = sorted_desc.size
    if n_boot <= 0:
        return np.zeros((len(fprs), 0), dtype=np.int64)
    regions = None
    if region_codes is not None:
        regions = (np.asarray(region_codes), np.bincount(region_codes).astype(np.float64))
    m = int(min(n, max(64, 4 * int(cut_rank(max(fprs), n)) + 64)))
    while True:
        mult, n_b = _top_multiplicities(regions, m, n, n_boot, seed)
        cum = np.cumsum(mult, axis=1)
        need = np.stack([cut_rank(f, n_b) + 1 for f in fprs])  # (F, B) draws at or above the cut
        if m == n or (cum[:, -1][None, :] >= need).all():
            break
        m = min(n, 2 * m)
    idx = np.stack([(cum < need[i][:, None]).sum(axis=1) for i in range(len(fprs))])
    return np.minimum(idx, n - 1)


def _region_codes(table: pa.Table, nside: int):
    """Dense region code per row from healpix_128 or ra/dec, or None when the rows carry no position."""
    names = table.column_names
    if "healpix_128" not in names and not {"ra", "dec"} <= set(names):
        return None
    reg = sky_regions(table, nside)
    if not np.isfinite(reg).all():
        raise ValueError("negative scores: some rows have no healpix_128 and no ra/dec; give every "
                         "negative a position or none (i.i.d. resampling)")
    return np.unique(reg.astype(np.int64), return_inverse=True)[1]


def check_negatives(negatives: pa.Table) -> None:
    """Raise naming the first duplicated (id, model_id): a negative counted twice moves the cut."""
    for name in ("model_id", "status", "id", SCORE_COLUMN):
        if name not in negatives.column_names:
            raise KeyError(f"negative scores lack column {name!r}")
    counts = negatives.select(NEGATIVE_ID_KEYS).group_by(NEGATIVE_ID_KEYS).aggregate([([], "count_all")])
    dup = counts.filter(pc.greater(counts["count_all"], 1))
    if dup.num_rows:
        raise ValueError(f"negative scores: {dup.num_rows} duplicated (id, model_id), e.g. "
                         f"{dup.slice(0, 3).select(NEGATIVE_ID_KEYS).to_pylist()}; each negative must be scored once")


def fpr_thresholds(negatives: pa.Table, fprs, n_boot: int = 0, seed: int = 42,
                   nside: int = 16) -> tuple[dict, dict, pa.Table]:
    """Per model_id, the FPR cuts on the negatives' logits (status 'ok' rows) and their bootstrap.

    Returns ({model_id: [Threshold]} in descending FPR, {model_id: CutSet}, a table of cuts with
    n_above, achieved FPR and its Wilson interval, the expected FPR (k+1)/(n+1), ``resolved``
    (n_above >= MIN_NEGATIVES_ABOVE), and the 2.5/97.5 percentiles of the replicate cuts).
    """
    check_negatives(negatives)
    ok = negatives.filter(pc.equal(negatives["status"], STATUS_OK))
    fprs = sorted((float(f) for f in fprs), reverse=True)
    per_model: dict = {}
    cut_sets: dict = {}
    rows = []
    for model_id in sorted(m for m in pc.unique(ok["model_id"]).to_pylist() if m is not None):
        part = ok.filter(pc.equal(ok["model_id"], model_id))
        s = part[SCORE_COLUMN].cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        finite = np.isfinite(s)
        if not finite.any():
            raise ValueError(f"model {model_id!r}: no finite negative logit to set an FPR threshold")
        codes = _region_codes(part, nside)
        order = np.argsort(-s[finite], kind="stable")
        sorted_desc = s[finite][order]
        n = sorted_desc.size
        point = [int(cut_rank(f, n)) for f in fprs]
        boot = replicate_cut_indices(sorted_desc, None if codes is None else codes[finite][order], fprs,
                                     n_boot, stable_hash64(seed, f"{model_id}|negatives"))
        values = np.r_[sorted_desc[point], sorted_desc[boot.ravel()]]
        levels = np.unique(values)
        cut_sets[model_id] = CutSet(levels=levels, point=np.searchsorted(levels, sorted_desc[point]),
                                    boot=np.searchsorted(levels, sorted_desc[boot]).reshape(boot.shape))
        per_model[model_id] = []
        for i, fpr in enumerate(fprs):
            cut = float(sorted_desc[point[i]])
            above = int(np.count_nonzero(sorted_desc > cut))
            per_model[model_id].append(Threshold(FPR, fpr, cut))
            lo, hi = wilson_interval(above, n)
            boot_cuts = sorted_desc[boot[i]]
            rows.append({
                "model_id": model_id, "threshold_kind": FPR, "threshold_value": fpr,
                "score_column": SCORE_COLUMN, "score_cut": cut, "n_negatives": n, "n_above": above,
                "achieved_fpr": above / n, "fpr_ci_lo": float(lo), "fpr_ci_hi": float(hi),
                "expected_fpr": float(expected_fpr(point[i], n)), "resolved": above >= MIN_NEGATIVES_ABOVE,
                "min_negatives": int(np.ceil((MIN_NEGATIVES_ABOVE + 1) / fpr - 1)),
                "cut_boot_lo": float(np.percentile(boot_cuts, 2.5)) if boot_cuts.size else float("nan"),
                "cut_boot_hi": float(np.percentile(boot_cuts, 97.5)) if boot_cuts.size else float("nan"),
                "negative_resampling": "iid" if codes is None else f"healpix_nested_nside{nside}",
                "n_negative_regions": n if codes is None else int(np.unique(codes[finite]).size),
            })
    if not per_model:
        raise ValueError("negative scores hold no row with status 'ok'")
    return per_model, cut_sets, pa.Table.from_pylist(rows)


def proxy_thresholds(values) -> list[Threshold]:
    """Phase-4d proxy thresholds on theta_E / PSF FWHM."""
    return [Threshold(PROXY, float(v), float(v)) for v in sorted(values)]
