"""The report's headline cards and tables, built only from what the stages measured.

Rules (issue 19): operating points use cuts fixed on validation (``report.operating_points`` of
``evaluation.json``), each card names its FPR definition (paired same-host controls for the
model evaluation, held-out survey negatives for the selection function), a rate the negatives
cannot resolve is written as "< 1/n" and never as a number, intervals are shown with every rate,
and "calibrated" says the class balance it is calibrated to.
"""
from __future__ import annotations

from typing import Sequence

from dhs.report.html import Headline, format_value

PREVALENCES = (1e-3, 1e-4)


def pct(x, missing: str = "n/a") -> str:
    """A rate as a percentage to three significant figures (0.25 -> "25%", 0.0041 -> "0.41%")."""
    if x is None or x != x:
        return missing
    return f"{100 * x:.3g}%"


def rate_text(r: dict) -> str:
    """k/n as "k/n = x% [lo–hi%]", or "0/n (< 1/n)" when nothing was counted."""
    if not r or not r.get("n"):
        return "n/a"
    if r["k"] == 0:
        return f"0/{r['n']} (< 1/{r['n']})"
    return f"{r['k']}/{r['n']} = {pct(r['rate'])} [{pct(r['lo'])}–{pct(r['hi'])}]"


def auc_card(metrics: dict, intervals: dict, negatives: str, split: str) -> Headline:
    """Test ROC AUC with its bootstrap interval (region when it was allowed, else i.i.d.)."""
    ci = intervals.get("roc_auc", {})
    kind = "region" if "region" in ci else "iid"
    entry = ci.get(kind)
    value = format_value(metrics.get("roc_auc"), "{:.3f}")
    if entry:
        value += f" [{entry['lo']:.3f}–{entry['hi']:.3f}]"
    why = ""
    if "region_skipped" in ci:
        skipped = ci["region_skipped"]
        why = (f"; region bootstrap not shown: only {skipped['n_regions']} HEALPix regions "
               f"(< {skipped['min_regions']})")
    label = "HEALPix-region" if kind == "region" else "label-stratified i.i.d."
    return Headline("Test ROC AUC", value,
                    f"P(a random lens outscores a random non-lens), {split} split (sky regions disjoint from training); "
                    f"negatives: {negatives}; 95% {label} bootstrap{why}")


def operating_point_card(op: dict) -> Headline:
    """TPR at a target FPR, the cut fixed on validation; "< 1/n" when the target is unresolved."""
    n_val, f = op["n_val_negatives"], op["target_fpr"]
    name = f"TPR @ FPR {pct(f)} ({op['negatives']})"
    at = (f"cut p ≥ {op['cut_p']:.3f} fixed on {op['fitted_on']} ({op['val_negatives_above']} of {n_val} "
          f"{op['fitted_on']} negatives at or above)")
    tpr = op["test_tpr"]
    on_test = f"test TPR {rate_text(tpr)}; test FPR {rate_text(op['test_fpr'])}"
    if not op["resolved"]:
        return Headline(name, f"FPR < 1/{n_val}: unresolved",
                        f"{pct(f)} of {n_val} {op['fitted_on']} negatives is less than one: no cut gives it. At the "
                        f"strictest cut they resolve ({at}): {on_test}.", "na")
    return Headline(name, f"{pct(tpr['rate'])} [{pct(tpr['lo'])}–{pct(tpr['hi'])}]",
                    f"test lenses recovered at the {at}; Wilson 95%. {on_test}"
                    + ("" if op["test_fpr_resolved"] else f" ({pct(f)} of the test negatives is < 1: the test FPR "
                                                          "cannot confirm the target)") + ".")


def calibration_card(ece, temperature, prevalence, fitted_on: str) -> Headline:
    """ECE after temperature scaling, with the class balance the probabilities are calibrated to."""
    return Headline("ECE (calibrated at prevalence " + format_value(prevalence, "{:.2f}") + ")",
                    format_value(ece, "{:.4f}"),
                    f"expected calibration error after temperature scaling (T = {format_value(temperature, '{:.3f}')}) "
                    f"fitted on {fitted_on}. p is calibrated to that split's lens fraction "
                    f"({format_value(prevalence, '{:.2f}')}: paired injections, one lens per control), not to the "
                    "sky's: see 'From p to purity' for a survey prevalence.")


def gates_card(gates: dict | None) -> Headline:
    """The shortcut-gate verdict and exactly what passing means."""
    if not gates or "gates" not in gates:
        return Headline("Shortcut gates G1–G5", "n/a", "not run", "na")
    g = gates["gates"]
    critical = [k for k in sorted(g) if g[k]["critical"]]
    failed = [k for k in sorted(g) if g[k]["status"] == "fail"]
    verdict = str(gates["overall"])
    cls = "pass" if verdict == "pass" else "marginal" if verdict in ("marginal", "incomplete") else "fail"
    return Headline("Shortcut gates G1–G5", f"{verdict} ({gates['n_passed']}/{gates['n_total']} pass)",
                    "G1–G3 probe the data, not the model (can a linear probe on the core or radial profile tell a "
                    "lens from its own control? is the arc visible in its annulus?); G4 (mean p on shuffled-arc hard "
                    "negatives ≤ 0.05) and G5 (p drops ≥ 0.30 when the arc is occluded) test whether the model uses "
                    f"the arcs. Pass = every critical gate ({', '.join(critical)}) passes and ≥ 4/5 pass. "
                    f"Failed: {', '.join(failed) or 'none'}.", cls)


def completeness_card(at_theta: dict, fpr, cut: dict | None, thetas: Sequence[float]) -> Headline:
    """Completeness at a few θ_E at the FPR cut on held-out survey negatives, with the 95% interval the
    selection summary says to quote (``interval_lo``/``interval_hi``: the region bootstrap with the cut
    recomputed per replicate, its union with Wilson where a bin has < 10 regions). An entry without it
    (a summary written before that interval existed) shows its Wilson interval, labelled as such."""
    parts, ranges = [], []
    for t in thetas:
        entry = next((v for k, v in at_theta.items() if _close(k, t)), None)
        c = entry.get("completeness") if isinstance(entry, dict) else entry
        parts.append(f'{t:g}″: {pct(c, "n/a")}')
        if not isinstance(entry, dict):
            continue
        if entry.get("interval_lo") is not None:
            lo, hi, label = entry["interval_lo"], entry["interval_hi"], ""
        elif entry.get("ci_lo") is not None:
            lo, hi, label = entry["ci_lo"], entry["ci_hi"], " Wilson only, given the cut"
        else:
            continue
        ranges.append(f'{t:g}″ [{pct(lo)}–{pct(hi)}{label}], n = {entry.get("n", "n/a")}')
    negs = "held-out mock-survey negatives"
    if cut:
        negs = (f"{cut['n_negatives']} {negs} ({cut['n_above']} above the cut"
                + ("" if cut.get("resolved", True) else "; too few to resolve it: indicative only") + ")")
    return Headline(f"Completeness @ FPR {pct(fpr)} (survey negatives)", " · ".join(parts),
                    f"grid injections recovered at θ_E = {', '.join(f'{t:g}' for t in thetas)} arcsec, score cut at "
                    f"FPR {pct(fpr)} on {negs}; 95% interval with the cut's uncertainty (region bootstrap, cut "
                    "recomputed per replicate; union with Wilson where a bin has < 10 regions): "
                    + ("; ".join(ranges) or "n/a") + ".",
                    None if not cut or cut.get("resolved", True) else "marginal")


def _close(key, theta: float) -> bool:
    try:
        return abs(float(key) - theta) < 1e-6
    except ValueError:
        return False


def purity_table(operating_points: Sequence[dict], prevalences: Sequence[float] = PREVALENCES) -> list:
    """Rows [cut, TPR, FPR, purity at each prevalence]: point estimate, and the worst case within the
    Wilson intervals (TPR lower, FPR upper bound). A test FPR of 0/n gives no point estimate."""
    from training.eval.calibration import purity

    header = ["cut (fixed on validation)", "test TPR", "test FPR"] + [
        f"purity at π = {p:g} (worst case in 95%)" for p in prevalences]
    rows = [header]
    for op in operating_points:
        tpr, fpr = op["test_tpr"], op["test_fpr"]
        cells = [f"p ≥ {op['cut_p']:.3f} (target FPR {pct(op['target_fpr'])}"
                 + ("" if op["resolved"] else ", unresolved") + ")", rate_text(tpr), rate_text(fpr)]
        for prev in prevalences:
            worst = float(purity(tpr["lo"], fpr["hi"], prev))
            point = "—" if fpr["k"] == 0 else pct(float(purity(tpr["rate"], fpr["rate"], prev)))
            cells.append(f"{point} (≥ {pct(worst)})")
        rows.append(cells)
    return rows
