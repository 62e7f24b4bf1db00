import math

import pytest

from dhs_gen.catalog.lenscat import load_lenscat, parse_zlens, select_lenses, survey_tags


@pytest.mark.parametrize("text,expected", [
    ("0.45", 0.45), ("not measured", math.nan), ("measured", math.nan), ("-", math.nan),
    ("0.4861 | nan", 0.4861), ("nan | 0.511", 0.511), ("0.505 | 0.511", 0.505), (None, math.nan),
])
def test_parse_zlens(text, expected):
    got = parse_zlens(text)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_survey_tags():
    assert survey_tags("J1101-0602 | DESI-165.4754-06.0423") == "DESI"
    assert survey_tags("J0011-0845") == ""


def test_packaged_catalogue_desi_selection():
    frame = load_lenscat()
    assert len(frame) == 32838
    assert set(frame["grading"]) == {"confident", "probable"}
    assert frame["zlens"].notna().sum() > 15000
    assert not frame["zlens_text"].eq("not measured").pipe(lambda m: frame.loc[m, "zlens"].notna().any())
    desi = select_lenses(frame, survey="DESI")
    assert len(desi) == 5104 and (desi["grading"] == "confident").sum() == 435  # SOURCES.md
    galaxies = select_lenses(frame, survey="DESI", lens_types=["galaxy"], gradings=["confident"])
    assert len(galaxies) < 435 and set(galaxies["lens_type"]) == {"galaxy"}


def test_shared_copy_matches(shared_data):
    shared = load_lenscat(str(shared_data / "lenscat" / "catalog.csv"))
    assert len(shared) == len(load_lenscat())


def test_bad_inputs(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,ra,dec\nx,1,2\n")
    with pytest.raises(ValueError, match="not a lenscat catalogue"):
        load_lenscat(str(bad))
    with pytest.raises(ValueError, match="unknown gradings"):
        select_lenses(load_lenscat(), gradings=["sure"])
