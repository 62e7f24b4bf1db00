"""The static report: self-contained, escaped, and every figure loads in a real browser."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from dhs.report.html import Figure, Headline, Section, format_value, render_report  # noqa: E402

from .browser import check_images_load, find_chromium  # noqa: E402


def _figure(path):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(path)
    plt.close(fig)
    return str(path)


@pytest.fixture
def report(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    figs = [Figure(_figure(src / "roc.png"), "ROC"), Figure(_figure(src / "c.png"), "Completeness <θ_E>")]
    return render_report(
        str(tmp_path / "report"), "Demo <report>", "mock DR10",
        [Headline("AUC", format_value(0.9712), "area under the ROC curve", "pass"),
         Headline("ECE", format_value(None), "calibration error")],
        [Section("Scores", "para one\n\npara two", figs, table=[["a", "b"], [1, 2]]),
         Section("Missing", figures=[Figure(str(src / "nope.png"), "never made")])])


def test_report_is_self_contained_and_escaped(report):
    text = open(report, encoding="utf-8").read()
    assert "Demo &lt;report&gt;" in text and "0.971" in text and "n/a" in text
    assert "http://" not in text and "https://" not in text
    assert sorted(os.listdir(os.path.join(os.path.dirname(report), "figures"))) == ["c.png", "roc.png"]
    assert "Figures not produced" in text and "nope.png" in text


def test_every_figure_loads_in_headless_chromium(report):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Debian chromium is not installed (make test installs it when it can)")
    count, broken = check_images_load(report, chromium)
    assert count == 2 and broken == []


def test_broken_figure_is_detected(report):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Debian chromium is not installed")
    os.remove(os.path.join(os.path.dirname(report), "figures", "roc.png"))
    count, broken = check_images_load(report, chromium)
    assert count == 2 and broken == ["figures/roc.png"]


def test_pdf_beside_a_figure_is_linked_and_footer_rendered(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    png = _figure(src / "roc.png")
    (src / "roc.pdf").write_bytes(b"%PDF-1.4 fake")
    index = render_report(str(tmp_path / "r"), "T", "s", [], [Section("S", figures=[Figure(png, "ROC of <p>")])],
                          footer="code abc · config sha256 0123")
    text = open(index, encoding="utf-8").read()
    assert "<a href='figures/roc.pdf'>PDF</a>" in text and "ROC of &lt;p&gt;" in text
    assert (tmp_path / "r" / "figures" / "roc.pdf").read_bytes() == b"%PDF-1.4 fake"
    assert "<footer>code abc · config sha256 0123</footer>" in text
