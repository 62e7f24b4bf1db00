"""``make demo`` stage "report": one static page and ``build/demo/summary.json`` from the stage summaries.

Reads ``<demo root>/<stage>/summary.json`` of every earlier stage (and the evaluation and
selection JSON they point to), and writes ``<demo root>/report/index.html`` with the headline
numbers, every figure the stages produced, and what each number means. A number a stage did
not produce is shown as "n/a", never invented.
"""
from __future__ import annotations

import glob
import os
import posixpath

from dhs.report.ablation import ablation_sections
from dhs.report.headlines import (
    PREVALENCES,
    auc_card,
    calibration_card,
    completeness_card,
    gates_card,
    operating_point_card,
    pct,
    purity_table,
)
from dhs.report.html import Figure, Headline, Section, format_value, render_report

STAGES = ("survey", "catalogue", "injection", "training", "evaluation", "selection_function")
THETAS = (1.0, 1.5, 2.0)


def _read(uri: str) -> dict:
    from dhs_gen.storage import exists, read_json

    return read_json(uri) if exists(uri) else {}


def _realism_ci(ci) -> str:
    """'[lo, hi]' of a realism AUC interval, or 'n/a'."""
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci and None not in ci else "n/a"


def _dig(data, *keys, default=None):
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def _at_theta(comp: dict, theta: float):
    """Completeness entry of ``comp`` (keyed by θ_E as text, e.g. "1" or "1.5") nearest ``theta``."""
    for key, value in comp.items():
        try:
            if abs(float(key) - theta) < 1e-6:
                return value.get("completeness") if isinstance(value, dict) else value
        except ValueError:
            continue
    return None


def _selection_cut(sel_summary: dict, fpr) -> dict | None:
    """The selection stage's threshold record (n_negatives, n_above, resolved) at ``fpr``."""
    for r in sel_summary.get("thresholds", []) or []:
        if r.get("threshold_kind", "fpr") == "fpr" and fpr is not None and abs(r["threshold_value"] - fpr) < 1e-12:
            return r
    return None


def _selection_regions(sel: dict) -> int | None:
    """Most HEALPix regions behind any overall completeness number of the selection stage."""
    from dhs_gen.storage import exists, join_uri, read_parquet

    uri = join_uri(sel["output"], "completeness.parquet") if sel.get("output") else None
    if not uri or not exists(uri):
        return None
    table = read_parquet(uri, columns=["axis", "n_regions"]).to_pandas()
    overall = table[table.axis == "overall"]
    return int(overall.n_regions.max()) if len(overall) else None


def collect_headlines(summaries: dict, evaluation: dict, sel_summary: dict | None = None) -> dict:
    """Machine-readable headline numbers (None where a stage did not produce one).

    TPR at FPR comes from the operating points with cuts fixed on validation (None when the
    validation negatives cannot resolve the target FPR), never from a cut fitted on test."""
    test_split = _dig(evaluation, "config", "report", "test_split", default="test")
    report = evaluation.get("report", {}) or {}
    test = _dig(report, "metrics", test_split, default={}) or {}
    ops = report.get("operating_points", []) or []
    sel = summaries.get("selection_function", {})
    comp = sel.get("completeness_at_theta_e", {}) or {}
    out = {
        "test_auc": test.get("roc_auc", summaries.get("evaluation", {}).get("test_auc")),
        **{f"tpr_at_fpr_{o['target_fpr']:g}": (o["test_tpr"]["rate"] if o["resolved"] else None) for o in ops},
        "operating_points": ops,
        "fpr_negatives_evaluation": _dig(report, "negatives", test_split),
        "calibrated_prevalence": _dig(report, "prevalence", _dig(evaluation, "config", "report", "val_split",
                                                                 default="val")),
        "ece_after_calibration": summaries.get("evaluation", {}).get("ece_after"),
        "temperature": summaries.get("evaluation", {}).get("temperature"),
        "shortcut_gates": summaries.get("evaluation", {}).get("gates"),
        "pixel_probes": summaries.get("evaluation", {}).get("pixel_probes"),
        "completeness_fpr": sel.get("fpr"),
        "completeness_cut": _selection_cut(sel_summary or {}, sel.get("fpr")),
        **{f"completeness_theta_e_{t:g}": _at_theta(comp, t) for t in THETAS},
        "realism_probe_auc_features": _dig(sel, "realism", "model_features", "auc"),
        "realism_probe_auc_pixels": _dig(sel, "realism", "pixel_stats", "auc"),
        "realism_n_real": _dig(sel, "realism", "pixel_stats", "n_real"),
        "realism_real_set": _dig(sel, "realism", "real_set", "name"),
        "realism_real_source": _dig(sel, "realism", "real_set", "source"),
        "realism_ci_features": [_dig(sel, "realism", "model_features", k) for k in ("ci_lo", "ci_hi")],
        "realism_ci_pixels": [_dig(sel, "realism", "pixel_stats", k) for k in ("ci_lo", "ci_hi")],
        "slacs_sigma_ratio_median": _dig(sel, "slacs", "median_ratio"),
        "n_injections_selection": sel.get("n_injections"),
    }
    return out


def _figures(pattern_root: str, *patterns: str) -> list:
    found = []
    for pattern in patterns:
        found.extend(sorted(glob.glob(os.path.join(pattern_root, pattern), recursive=True)))
    return found


def _eval_figures(evaluation: dict, *keys: str) -> list:
    """The evaluation stage's figures (with their captions) for ``keys`` (prefixes), in that order."""
    figs = evaluation.get("figures", {}) or {}
    out = []
    for key in keys:
        for name in sorted(k for k in figs if k == key or k.startswith(key + "_")):
            entry = figs[name]
            if isinstance(entry, dict):
                out.append(Figure(entry["path"], entry["caption"]))
    return out


SELECTION_CAPTIONS = {
    "selection_heatmap": "Completeness over (θ_E, z_l) at the loosest resolved FPR cut on held-out mock-survey "
                         "negatives; colour on a fixed 0–1 scale; each cell: C, Wilson 95% interval, n; hatched "
                         "n < 50; dashed: iso-σ_v of an SIS.",
    "selection_curves": "Completeness against θ_E, θ_E/PSF, source magnitude and arc S/N, one colour per FPR cut "
                        "the negatives resolve (unresolved cuts are not drawn), Wilson 95% bands, region-bootstrap "
                        "bars only where a bin has ≥ 10 HEALPix regions; dashed: clean subset.",
    "selection_thresholds": "Threshold sensitivity: overall completeness against the FPR cut and against the "
                            "phase-4d θ_E/PSF proxy cut, and C(θ_E) per cut.",
    "selection_observability": "Observability map: iso-σ_v and iso-mass over (θ_E, z_l) with the SLACS lenses, and "
                               "σ_SIE from θ_E against the SLACS measured dispersions.",
}


def _selection_figures(paths) -> list:
    out = []
    for p in paths:
        name = os.path.basename(p)
        key = next((k for k in SELECTION_CAPTIONS if name.startswith(k)), None)
        out.append(Figure(p, SELECTION_CAPTIONS.get(key, name), wide=key in ("selection_heatmap", "selection_curves")))
    return out


def purity_section(heads: dict) -> Section:
    """How to turn p (calibrated on balanced pairs) into odds and purity at a survey prevalence."""
    from training.eval.calibration import p_at_prevalence

    pi0 = heads["calibrated_prevalence"] or 0.5
    ops = heads["operating_points"] or []
    examples = ", ".join(f"p = {p:g} → {pct(float(p_at_prevalence(p, PREVALENCES[0], pi0)))}"
                         for p in (0.5, 0.9, 0.99))
    text = (f"The calibrated p answers: of stamps like these, drawn with lens fraction π₀ = {pi0:.2f} (the "
            f"validation split: one injected lens per same-host control), what fraction with this score are lenses? "
            "The sky has far fewer lenses: at a survey prevalence π the same score means\n\n"
            "p_π = p·r / (p·r + 1 − p),  r = [π/(1 − π)] / [π₀/(1 − π₀)];  e.g. at π = "
            f"{PREVALENCES[0]:g}: {examples}.\n\n"
            "For a sample selected by a cut, purity = TPR·π / (TPR·π + FPR·(1 − π)), with TPR and FPR measured on "
            "the test split at the cut fixed on validation. The table gives the point value and, in brackets, "
            "the worst case within the 95% intervals (lower TPR, upper FPR); a test FPR of 0/n gives no point value. "
            "These FPRs are on paired same-host controls; a survey's contaminants (spirals, rings, mergers) are "
            "harder, so treat the numbers as upper limits on purity. training.eval.calibration.p_at_prevalence and "
            "purity compute both.")
    return Section("From p to purity at a survey prevalence", text, table=purity_table(ops) if ops else None)


def _footer(demo_root: str, evaluation: dict) -> str:
    """Code version, generation date (UTC) and the hash of every resolved config of this run."""
    import datetime
    import hashlib

    from training.export import code_version

    configs = sorted(p for p in glob.glob(os.path.join(demo_root, "**", "*.yaml"), recursive=True)
                     if os.path.basename(p) == "_resolved_config.yaml" or p.endswith("_config.yaml"))
    digest = hashlib.sha256()
    for path in configs:
        digest.update(os.path.relpath(path, demo_root).encode() + b"\0")
        with open(path, "rb") as fh:
            digest.update(fh.read())
    digest.update(str(evaluation.get("config_sha256", "")).encode())
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"code {code_version()} · generated {now} · config sha256 {digest.hexdigest()[:16]} "
            f"({len(configs)} resolved configs + the evaluation config) · model {str(evaluation.get('model_id', 'n/a'))[:16]}")


def run_demo_stage(root: str, force: bool = False) -> dict:
    """Write the report under ``root`` (build/demo/report); the headlines go into the stage summary."""
    from dhs_gen.storage import join_uri, local_path

    demo_root = posixpath.dirname(str(root).rstrip("/"))
    summaries = {s: _read(join_uri(demo_root, s, "summary.json")) for s in STAGES}
    evaluation = _read(summaries["evaluation"].get("evaluation", "")) if summaries["evaluation"].get("evaluation") else {}
    sel = summaries["selection_function"]
    sel_summary = _read(join_uri(sel["output"], "selection_summary.json")) if sel.get("output") else {}
    heads = collect_headlines(summaries, evaluation, sel_summary)
    base = local_path(demo_root)
    f = format_value
    report = evaluation.get("report", {}) or {}
    ts = _dig(evaluation, "config", "report", "test_split", default="test")
    vs = _dig(evaluation, "config", "report", "val_split", default="val")
    gates = _dig(evaluation, "gates", "shortcut_gates")
    headlines = []
    if report:
        headlines.append(auc_card(_dig(report, "metrics", ts, default={}), _dig(report, "intervals", ts, default={}),
                                  heads["fpr_negatives_evaluation"] or "n/a", ts))
        headlines += [operating_point_card(o) for o in heads["operating_points"]]
    else:
        headlines.append(Headline("Test ROC AUC", f(heads["test_auc"], "{:.3f}"), "no evaluation.json was produced",
                                  "na"))
    headlines += [
        calibration_card(heads["ece_after_calibration"], heads["temperature"], heads["calibrated_prevalence"], vs),
        gates_card(gates) if gates else Headline("Shortcut gates G1–G5", str(heads["shortcut_gates"] or "n/a"),
                                                 "no gate results were produced", "na"),
        completeness_card(sel.get("completeness_at_theta_e", {}) or {}, heads["completeness_fpr"],
                          heads["completeness_cut"], THETAS),
        Headline("Injection realism AUC", f"{f(heads['realism_probe_auc_features'], '{:.2f}')} (features) / "
                 f"{f(heads['realism_probe_auc_pixels'], '{:.2f}')} (pixels)",
                 "cross-validated probe separating real lens images from brightness-matched injections: 0.5 = "
                 "indistinguishable (earlier pipeline: 0.997); 95% CI "
                 f"{_realism_ci(heads['realism_ci_features'])} (features), {_realism_ci(heads['realism_ci_pixels'])} "
                 f"(pixels); real lens set: {heads['realism_real_set'] or 'n/a'}, n = {heads['realism_n_real'] or 'n/a'}"
                 f" ({heads['realism_real_source'] or 'source n/a'})"),
    ]
    inj, cat, sur, trn = (summaries[k] for k in ("injection", "catalogue", "survey", "training"))
    strata = _eval_figures(evaluation, "strata", "confusers")
    regions = _selection_regions(sel)
    boot_note = ("Bins carry Wilson 95% intervals (n < 50 flagged)"
                 + (f"; the HEALPix region bootstrap runs on only {regions} regions here (fewer than 10), too few "
                    "to estimate the spread, so it is not shown as an interval" if regions is not None and regions < 10
                    else "and a HEALPix region bootstrap (bars where a bin has ≥ 10 regions)"))
    cut = heads["completeness_cut"]
    negs = (f"{cut['n_negatives']} held-out mock-survey negatives" if cut else "held-out mock-survey negatives")
    sections = [
        Section("The mock DR10 survey",
                f"MockDR10 draws hosts and conditions from real DR10 tables (seeing, depth, E(B-V) per brick; "
                f"the real LRG sample) and renders each cutout with its PSF, correlated coadd noise derived from "
                f"the 5σ depth, neighbours, stars and defects. Catalogue rows: {sur.get('catalog_rows', 'n/a')}.",
                [Figure(p, "Top row: the six packaged real DR10 cutouts; middle rows: MockDR10 LRG hosts; bottom row: "
                           "the mock's known lenses (lenscat positions with SIE-lensed arcs painted into the mock "
                           "sky, not real lenses). 101 px = 26.5″, one Lupton stretch for all.", wide=True)
                 for p in _figures(base, "survey/*.png")]),
        Section("Catalogue stages",
                f"Negative pool: {cat.get('pool_rows', 'n/a')} galaxies after cuts; stratified hash-deterministic "
                f"sample: {cat.get('sampled', 'n/a')}; training manifest rows: {cat.get('manifest_rows', 'n/a')}; "
                f"pre-training data gates passed: {cat.get('data_gates_passed', 'n/a')}. Known lenses (lenscat "
                f"positions, painted into the mock sky with SIE-lensed arcs) matched as positives: "
                f"{cat.get('positives_matched', 'n/a')}. The demo model trains on injection pairs; this manifest is "
                "the input of the real-image training line, and the known lenses are the anchors below."),
        Section("Injections (phases 4a, 4c, 4d)",
                f"Training set: {_dig(inj, 'phase4c', 'ok', default='n/a')} of {_dig(inj, 'phase4c', 'rows_in', default='n/a')} "
                f"injections ok (random design, Sérsic / COSMOS / clumpy sources, Gen8 artifacts applied alike "
                f"to positives and controls). Selection grid ({inj.get('grid_preset', 'n/a')}): "
                f"{_dig(inj, 'grid_phase4c', 'ok', default='n/a')} ok on the selection-role hosts (a fixed hash of host_id keeps them disjoint from the training hosts; grid z_l cells take hosts whose photo-z falls in the bin). Each row: "
                "positive (host + lensed arc), its paired control (same host) and a θ_E-aware hard negative.",
                [Figure(p, "Injection examples, one row each: positive (host + lensed arc) | its paired control "
                           "(same host, no arc) | θ_E-aware hard negative (arc light shuffled in azimuth) | "
                           "positive − control (the injected arc alone) | the same ×10.", wide=True)
                 for p in _figures(base, "injection/*.png")]),
        Section("How well the model separates lenses from their controls",
                f"Small CNN trained under torchrun on the injection pairs; best validation AUC "
                f"{f(trn.get('best_auc'), '{:.3f}')} at epoch {trn.get('best_epoch', 'n/a')}; model id "
                f"{str(trn.get('model_id', 'n/a'))[:16]}. The FPR here is measured on {heads['fpr_negatives_evaluation'] or 'n/a'} "
                f"of the {ts} split; every cut is fitted on {vs} and applied to {ts}.",
                _eval_figures(evaluation, "roc", "reliability", "training_curves")),
        Section("Does the model use the arcs? Shortcut gates",
                "G1–G3 are pixel probes of the data and never call the model; G4 and G5 are the only tests of the "
                "model itself, and both are critical. Shortcut gates and pixel probes that fail are reported as they are: "
                "a failing G4 means the model does not yet tell coherent arcs from shuffled arc light; a failing G5 "
                "means hiding the arc does not lower its score.",
                _eval_figures(evaluation, "gates", "six_channel")),
        Section("What it scores highest, and what it gets wrong",
                "Top-scored test stamps, the false positives above the loosest validation cut, and the lenses it "
                "misses below it, side by side.",
                _eval_figures(evaluation, "gallery_top", "gallery_false_positives", "gallery_missed",
                              "anchor_gallery")),
        *([Section("Where it works: strata and confusers", "", strata)] if strata else []),
        purity_section(heads),
        Section("Selection function",
                f"Recovery = score above the cut that gives the stated FPR on {negs} (a different FPR definition "
                f"from the paired controls above). {boot_note}. The observability map converts θ_E to velocity "
                "dispersion and enclosed mass (Planck18), checked "
                f"against SLACS (median σ_SIE/σ_measured {f(heads['slacs_sigma_ratio_median'], '{:.3f}')})."
                "\n\nRead these numbers with care: the demo model is trained on the same injection family it "
                "is measured on, in a mock survey; the injection-realism AUC above says how far the injections "
                "are from real lens images (in the demo, the six real DR10 lens-candidate cutouts packaged with "
                "the code: with n = 6 its interval is wide; run it on a published candidate list fetched with "
                "`dhs cutouts` for a useful number).",
                _selection_figures(_figures(base, "selection_function/**/selection_*.png"))),
        *ablation_sections(os.path.join(base, "ablation", "ablation.json")),
    ]
    index = render_report(local_path(root), "Dark Halo Scope — demo report",
                          "Whole chain on the built-in mock DR10 survey (no network, no cloud)", headlines, sections,
                          footer=_footer(base, evaluation))
    return {"status": "ok", "index": index, "headlines": heads}
