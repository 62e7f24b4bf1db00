import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dhs_gen.catalog.config import PositivesConfig, SplitConfig
from dhs_gen.catalog.positives import assemble_positives, build_positives_local, match_local, selected_lenses
from dhs_gen.catalog.splits import healpix_index, split_from_pixel
from dhs_gen.schemas import validate_table

ARCSEC = 1 / 3600.0


def tractor(ra, dec, **extra):
    n = len(ra)
    return pa.table({"BRICKNAME": ["1500p020"] * n, "OBJID": list(range(n)), "RA": ra, "DEC": dec,
                     "TYPE": extra.get("type", ["SER"] * n), "NOBS_Z": [4] * n, "PSFSIZE_R": [1.2] * n,
                     "PSFDEPTH_R": [400.0] * n})


LENSES = pd.DataFrame({"name": ["A1", "B1", "B2"], "ra": [150.0, 150.1, 151.0], "dec": [2.0, 2.0, 2.0],
                       "zlens": [0.3, np.nan, 0.5], "lens_type": "galaxy",
                       "grading": ["confident", "probable", "probable"]})


def test_tiers_weights_nearest_and_unmatched():
    t = tractor([150.0 + 3 * ARCSEC, 150.0 + 1 * ARCSEC, 150.1 + 4.9 * ARCSEC, 151.0 + 5.2 * ARCSEC],
                [2.0] * 4, type=["DEV", "REX", "SER", "SER"])
    cfg = PositivesConfig(tier_b_weight=0.4)
    out = build_positives_local(t, cfg, SplitConfig(), lenses=LENSES).to_pandas().set_index("name")
    assert list(out["tier"]) == ["A", "B", "B"] and list(out["sample_weight"]) == pytest.approx([1.0, 0.4, 0.4])
    assert out.loc["A1", "galaxy_id"] == "1500p020_1" and out.loc["A1", "type"] == "REX"  # nearest, not first
    assert out.loc["A1", "match_sep_arcsec"] == pytest.approx(1.0, abs=1e-3)
    assert out.loc["B1", "status"] == "ok" and out.loc["B2", "status"] == "no_tractor_match"
    assert pd.isna(out.loc["B2", "galaxy_id"]) and out.loc["A1", "nobs_z_bin"] == "3-5"
    assert 23 < out.loc["A1", "psfdepth_r_mag5"] < 25
    pix = healpix_index([150.0 + 1 * ARCSEC], [2.0])
    assert out.loc["A1", "healpix_128"] == pix[0] and out.loc["A1", "split"] == split_from_pixel(pix)[0]


def test_schema_and_radius():
    t = tractor([150.0 + 3 * ARCSEC], [2.0])
    table = build_positives_local(t, PositivesConfig(match_radius_arcsec=2.0), SplitConfig(), lenses=LENSES)
    validate_table(table, "positives", allow_extra=False)
    assert set(table.column("status").to_pylist()) == {"no_tractor_match"}
    with pytest.raises(ValueError, match="tier_b_weight"):
        PositivesConfig(tier_b_weight=0.8)


def test_real_desi_candidates_match_themselves():
    cfg = PositivesConfig()
    lenses = selected_lenses(cfg).iloc[:200]
    t = tractor(list(lenses["ra"] + 0.5 * ARCSEC), list(lenses["dec"]))
    matches = match_local(lenses, t, cfg.match_radius_arcsec)
    table = assemble_positives(lenses, matches, cfg, SplitConfig()).to_pandas()
    assert (table["status"] == "ok").all() and table["galaxy_id"].is_unique
    assert set(table["tier"]) <= {"A", "B"} and (table["tier"] == "A").sum() == (lenses["grading"] == "confident").sum()
