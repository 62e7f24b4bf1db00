"""The report's "Ablation" section, built from ``<demo>/ablation/ablation.json`` (``dhs ablate``)."""
from __future__ import annotations

import os

from dhs.report.html import Figure, Section, format_value

CAPTIONS = {
    "ablation_differences": "Each variant minus the baseline (seed means) with 95% paired bootstrap intervals (the "
                            "bootstrap blocks named above); cuts recomputed in every replicate; * = survives Holm's "
                            "correction.",
    "ablation_completeness": "Completeness on the shared selection grid per θ_E bin for each variant (mean over "
                             "seeds, bars = seed standard deviation), at the cut fixed on the grid's negatives.",
}


def _metric_cell(row: dict, metric: str) -> str:
    mean, std = row.get(f"{metric}_mean"), row.get(f"{metric}_seed_std")
    return f"{format_value(mean)} ± {format_value(std)}"


def _missing(value) -> bool:
    return value is None or value != value  # absent, or NaN from a table row without this column


def _delta_cell(row: dict, metric: str) -> str:
    if _missing(row.get(f"{metric}_delta")):
        return "baseline"
    text = (f"{format_value(row[f'{metric}_delta'], '{:+.3f}')} [{format_value(row[f'{metric}_delta_lo'], '{:+.3f}')}, "
            f"{format_value(row[f'{metric}_delta_hi'], '{:+.3f}')}]")
    if not _missing(row.get(f"{metric}_significant")):
        text += " (survives Holm)" if row[f"{metric}_significant"] else " (not significant after Holm)"
    return text


def ablation_sections(ablation_json: str) -> list[Section]:
    """One section (table + figures) when the ablation ran, else none. Generated from its JSON only."""
    import json

    if not os.path.exists(ablation_json):
        return []
    with open(ablation_json, encoding="utf-8") as fh:
        result = json.load(fh)
    cfg = result["config"]
    metrics = ["auc", *[f"tpr@{f:g}" for f in cfg["stats"]["fprs"]]]
    header = ["variant", "seeds", *[f"{m} (mean ± seed sd)" for m in metrics],
              *[f"Δ{m} vs {result['baseline']} [95%]" for m in metrics]]
    rows = [header] + [[r["variant"], str(r["n_seeds"]), *[_metric_cell(r, m) for m in metrics],
                        *[_delta_cell(r, m) for m in metrics]] for r in result["table"]]
    failed = result.get("failed_cells") or []
    text = (f"{len(cfg['variants'])} variants × {len(cfg['seeds'])} seeds, each an ordinary training run, all scored "
            f"on the same {result['n_test']} held-out test stamps ({result['n_test_positives']} positives; the negatives "
            "are their paired controls and hard negatives, so AUCs are lower than the headline's controls-only AUC; "
            f"bootstrap blocks: {result['resampling']}). TPR at FPR uses the cut on the test negatives; the difference to "
            f"the baseline carries a paired bootstrap interval with the cut recomputed in each replicate, and "
            f"the primary metric ({cfg['stats']['primary_metric']}) is Holm-corrected across variants. The last row "
            "is the calibrated ensemble of the variants with the best validation AUC. "
            + (f"Failed cells (reported, not used): {', '.join(failed)}." if failed else "Every cell finished.")
            + " At demo scale (few test stamps, few regions) differences are rarely significant; "
              "docs/ablation.md gives the production matrix.")
    base = os.path.dirname(ablation_json)
    figures = [Figure(os.path.join(base, f"{stem}.png"), caption) for stem, caption in CAPTIONS.items()
               if os.path.exists(os.path.join(base, f"{stem}.png"))]
    return [Section("Ablation: which training variant helps?", text, figures, table=rows)]
