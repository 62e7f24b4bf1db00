"""Locate the small real data files shipped inside the package (see dhs_gen/data/PROVENANCE.md)."""
from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


def data_path(*parts: str) -> Path:
    """Path of a packaged data file, e.g. ``data_path("dr10_stats", "dr10_lrg_sample_catalog.csv.gz")``."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"packaged data file missing: {path} (reinstall the project?)")
    return path
