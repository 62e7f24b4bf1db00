"""Read lenscat's ``catalog.csv`` without importing the ``lenscat`` package (heavy dependencies).

Columns out: name, ra, dec [deg], zlens (float; NaN when "not measured" / "measured" / "-"),
zlens_text (as published), lens_type (galaxy | group | cluster), grading (confident | probable),
ref, survey (tags found in the name, e.g. "DESI").
"""
from __future__ import annotations

import io
import re
from typing import Sequence

import numpy as np
import pandas as pd

from dhs_gen.data_files import data_path

_COLUMNS = {"name": "name", "RA [deg]": "ra", "DEC [deg]": "dec", "zlens": "zlens_text",
            "type": "lens_type", "grading": "grading", "ref": "ref"}
GRADINGS = ("confident", "probable")
_SURVEY_TAG = re.compile(r"(?:^|\|)\s*([A-Za-z]+)-\d")


def default_catalog_path() -> str:
    """The packaged copy of lenscat 1.1.3's catalogue (gzip CSV)."""
    return str(data_path("lenscat", "catalog.csv.gz"))


def parse_zlens(text) -> float:
    """First finite redshift in a lenscat zlens field ("0.45", "0.4861 | nan"); NaN when none."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return float("nan")
    for part in str(text).split("|"):
        try:
            value = float(part.strip())
        except ValueError:
            continue
        if np.isfinite(value):
            return value
    return float("nan")


def survey_tags(name: str) -> str:
    """Survey prefixes in a (possibly " | "-joined) lenscat name, e.g. "DESI-165.4754-06.0423" -> "DESI"."""
    return ",".join(sorted(set(_SURVEY_TAG.findall(str(name)))))


def load_lenscat(path: str | None = None) -> pd.DataFrame:
    """Load lenscat's catalogue (the packaged copy when ``path`` is None) as a tidy DataFrame."""
    from dhs_gen.storage import read_bytes

    source = path or default_catalog_path()
    raw = read_bytes(source)
    compression = "gzip" if raw[:2] == b"\x1f\x8b" else None
    frame = pd.read_csv(io.BytesIO(raw), compression=compression, dtype={"zlens": str, "name": str})
    missing = sorted(set(_COLUMNS) - set(frame.columns))
    if missing:
        raise ValueError(f"{source}: not a lenscat catalogue, missing columns {missing}")
    frame = frame.rename(columns=_COLUMNS)[list(_COLUMNS.values())]
    frame["ra"] = frame["ra"].astype(np.float64)
    frame["dec"] = frame["dec"].astype(np.float64)
    bad = ~np.isfinite(frame["ra"]) | ~np.isfinite(frame["dec"]) | (frame["dec"].abs() > 90)
    if bad.any():
        raise ValueError(f"{source}: {int(bad.sum())} rows with invalid RA/Dec, e.g. {frame.name[bad].iloc[0]!r}")
    frame["zlens"] = frame["zlens_text"].map(parse_zlens).astype(np.float64)
    frame["grading"] = frame["grading"].str.strip().str.lower()
    frame["lens_type"] = frame["lens_type"].str.strip().str.lower()
    frame["survey"] = frame["name"].map(survey_tags)
    return frame.reset_index(drop=True)


def select_lenses(frame: pd.DataFrame, survey: str | None = None, lens_types: Sequence[str] | None = None,
                  gradings: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows of :func:`load_lenscat` with a survey tag (e.g. "DESI"), lens types and gradings (None = all)."""
    mask = np.ones(len(frame), dtype=bool)
    if survey:
        mask &= frame["survey"].str.split(",").map(lambda tags: survey in tags).to_numpy(dtype=bool)
    if lens_types:
        mask &= frame["lens_type"].isin([t.lower() for t in lens_types]).to_numpy()
    if gradings:
        unknown = set(g.lower() for g in gradings) - set(GRADINGS)
        if unknown:
            raise ValueError(f"unknown gradings {sorted(unknown)}; lenscat has {list(GRADINGS)}")
        mask &= frame["grading"].isin([g.lower() for g in gradings]).to_numpy()
    return frame[mask].reset_index(drop=True)
