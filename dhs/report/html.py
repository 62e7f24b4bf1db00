"""Render a self-contained static report (no network assets): figures are copied beside index.html.

A report is a title, a row of headline numbers (each with its meaning and uncertainty), sections
of prose, tables and figures, and a footer (code version, date, config hash). Everything is
escaped; nothing is fetched at view time. A figure whose PDF sits beside its PNG (same name) gets
the PDF copied too and linked under its caption.
"""
from __future__ import annotations

import html
import os
import shutil
from dataclasses import dataclass, field
from typing import Sequence

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d2330;background:#f6f7fb}
header{background:#141b2d;color:#fff;padding:28px 40px}
header h1{margin:0;font-size:28px} header p{margin:6px 0 0;color:#b9c2d8}
main{max-width:1180px;margin:0 auto;padding:24px 40px 60px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:14px;margin:10px 0 26px}
.card{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 3px rgba(0,0,0,.08);border-top:4px solid #d5d9e4}
.card.pass{border-top-color:#127a3a}.card.fail{border-top-color:#b3261e}.card.marginal{border-top-color:#a86400}
.card .v{font-size:22px;font-weight:650;color:#1d2330} .card .n{font-size:13px;color:#59627a;margin-bottom:4px;font-weight:600}
.card .m{font-size:12px;color:#6b7387;margin-top:6px;line-height:1.35}
.pass,.card .v.pass{color:#127a3a}.fail,.card .v.fail{color:#b3261e}.marginal,.card .v.marginal{color:#a86400}
.na,.card .v.na{color:#6b7387}
section{background:#fff;border-radius:10px;padding:18px 22px;margin:18px 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
section h2{margin-top:0;font-size:20px}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:18px;align-items:start}
figure{margin:14px 0} figure.wide{grid-column:1/-1} figure img{max-width:100%;border:1px solid #e3e6ee;border-radius:6px}
figcaption{font-size:13px;color:#4b5368;margin-top:6px;line-height:1.4} figcaption a{color:#3557b7}
footer{max-width:1180px;margin:0 auto;padding:0 40px 40px;font-size:12px;color:#6b7387}
table{border-collapse:collapse;font-size:13px;margin:8px 0} td,th{padding:4px 10px;border-bottom:1px solid #e8eaf0;text-align:left}
.note{font-size:13px;color:#4b5368}
"""


@dataclass
class Headline:
    """One headline number: name, formatted value, what it means, optional verdict class."""

    name: str
    value: str
    meaning: str
    verdict: str | None = None  # pass | fail | marginal | na (colours the value and the card's top edge)


@dataclass
class Figure:
    """A PNG and what it shows; ``wide`` figures span the section's width instead of a grid column."""

    path: str
    caption: str
    wide: bool = False


@dataclass
class Section:
    title: str
    text: str = ""
    figures: Sequence[Figure] = field(default_factory=list)
    table: Sequence[Sequence[str]] | None = None  # first row is the header


def format_value(value, fmt: str = "{:.3f}", missing: str = "n/a") -> str:
    """Format a number, or 'n/a' for None/NaN."""
    try:
        if value is None or value != value:
            return missing
        return fmt.format(value)
    except (TypeError, ValueError):
        return str(value)


def _copy_figure(src: str, out_dir: str, used: set) -> str:
    name = os.path.basename(src)
    stem, ext = os.path.splitext(name)
    i = 1
    while name in used:
        name = f"{stem}_{i}{ext}"
        i += 1
    used.add(name)
    os.makedirs(os.path.join(out_dir, "figures"), exist_ok=True)
    shutil.copyfile(src, os.path.join(out_dir, "figures", name))
    return f"figures/{name}"


def render_report(out_dir: str, title: str, subtitle: str, headlines: Sequence[Headline],
                  sections: Sequence[Section], footer: str = "") -> str:
    """Write ``out_dir/index.html`` (+ ``figures/``); missing figures are listed, never linked."""
    from dhs_gen.storage import write_text

    os.makedirs(out_dir, exist_ok=True)
    used: set = set()
    esc = html.escape
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>",
             f"<meta name='viewport' content='width=device-width,initial-scale=1'><style>{_CSS}</style></head><body>",
             f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><main>", "<div class='cards'>"]
    for h in headlines:
        cls = f" {esc(h.verdict)}" if h.verdict else ""
        parts.append(f"<div class='card{cls}'><div class='n'>{esc(h.name)}</div><div class='v{cls}'>{esc(h.value)}"
                     f"</div><div class='m'>{esc(h.meaning)}</div></div>")
    parts.append("</div>")
    missing = []
    for sec in sections:
        parts.append(f"<section><h2>{esc(sec.title)}</h2>")
        if sec.text:
            parts.extend(f"<p>{esc(p)}</p>" for p in sec.text.split("\n\n"))
        if sec.table:
            header, *rows = sec.table
            parts.append("<table><tr>" + "".join(f"<th>{esc(str(c))}</th>" for c in header) + "</tr>")
            parts.extend("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows)
            parts.append("</table>")
        figs = []
        for fig in sec.figures:
            if not os.path.exists(fig.path):
                missing.append(fig.path)
                continue
            rel = _copy_figure(fig.path, out_dir, used)
            pdf = os.path.splitext(fig.path)[0] + ".pdf"
            link = f" <a href='{esc(_copy_figure(pdf, out_dir, used))}'>PDF</a>" if os.path.exists(pdf) else ""
            figs.append(f"<figure{' class=wide' if fig.wide else ''}><img src='{esc(rel)}' alt='{esc(fig.caption)}'>"
                        f"<figcaption>{esc(fig.caption)}{link}</figcaption></figure>")
        if figs:
            parts.append("<div class='figs'>" + "".join(figs) + "</div>")
        parts.append("</section>")
    if missing:
        parts.append("<section><h2>Figures not produced</h2><ul>"
                     + "".join(f"<li>{esc(m)}</li>" for m in missing) + "</ul></section>")
    parts.append("</main>")
    if footer:
        parts.append(f"<footer>{esc(footer)}</footer>")
    parts.append("</body></html>")
    path = os.path.join(out_dir, "index.html")
    write_text(path, "\n".join(parts))
    return path
