"""Headless-Chromium check that every <img> of a static page loads (used by report tests)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

_CHECK_SCRIPT = """
<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                .map(function (i) { return i.getAttribute('src'); });
  var out = document.createElement('pre');
  out.id = 'dhs-image-check';
  out.textContent = 'IMAGES ' + imgs.length + ' BROKEN ' + JSON.stringify(bad);
  document.body.appendChild(out);
});
</script>
"""


def find_chromium() -> str | None:
    """Path of Debian's chromium (or a chrome) if installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def check_images_load(index_html: str, chromium: str, timeout: float = 90.0) -> tuple[int, list]:
    """Open a copy of the page (with a checker script appended) in headless Chromium.

    Returns (number of images, list of broken image srcs). The copy sits beside the original so
    relative figure paths resolve; it is removed afterwards.
    """
    folder = os.path.dirname(os.path.abspath(index_html))
    with open(index_html, encoding="utf-8") as fh:
        page = fh.read().replace("</body>", _CHECK_SCRIPT + "</body>")
    fd, probe = tempfile.mkstemp(prefix="_imgcheck_", suffix=".html", dir=folder)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        proc = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--allow-file-access-from-files", "--virtual-time-budget=10000",
             "--dump-dom", "file://" + probe],
            capture_output=True, text=True, timeout=timeout)
    finally:
        os.remove(probe)
        shutil.rmtree(profile, ignore_errors=True)
    match = re.search(r"IMAGES (\d+) BROKEN (\[.*?\])", proc.stdout)
    if not match:
        raise RuntimeError(f"chromium produced no image report (rc={proc.returncode}): {proc.stderr[-2000:]}")
    import json

    return int(match.group(1)), json.loads(match.group(2))


def screenshot(index_html: str, out_png: str, chromium: str, width: int = 1280, height: int = 2000,
               timeout: float = 120.0) -> str:
    """A PNG of the page's top ``width`` x ``height`` CSS pixels in headless Chromium (for the docs)."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        proc = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--allow-file-access-from-files", "--virtual-time-budget=10000",
             f"--window-size={width},{height}", f"--screenshot={os.path.abspath(out_png)}",
             "file://" + os.path.abspath(index_html)],
            capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if not os.path.exists(out_png):
        raise RuntimeError(f"chromium wrote no screenshot (rc={proc.returncode}): {proc.stderr[-2000:]}")
    return out_png
