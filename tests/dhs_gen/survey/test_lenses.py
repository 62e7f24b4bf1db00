"""The known lenses in MockDR10: arcs at theta_E, determinism, lens galaxies in the catalogue."""
from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest

from dhs_gen import PIXEL_SCALE_ARCSEC
from dhs_gen.survey import MockDR10
from dhs_gen.survey.catalog import mock_catalog, patch_cells
from dhs_gen.survey.lenses import lens_systems, load_lens_table, patch_lenses

SIZE = 101


def _lens(i=0):
    table = load_lens_table()
    row = table.iloc[patch_lenses(20)[i]]
    return float(row["ra"]), float(row["dec"]), int(row["lens_index"])


def _annulus(image, theta_e_arcsec, width_arcsec=1.2):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] - SIZE // 2
    r = np.hypot(xx, yy) * PIXEL_SCALE_ARCSEC
    return np.abs(r - theta_e_arcsec) < width_arcsec


@pytest.mark.parametrize("i", [0, 1, 11])
def test_arcs_add_flux_in_annulus_at_theta_e(i):
    ra, dec, index = _lens(i)
    on = MockDR10(seed=0, noise=False).get_cutout(ra, dec, SIZE)
    off = MockDR10(seed=0, noise=False, lens_arcs=False).get_cutout(ra, dec, SIZE)
    theta_e = lens_systems([index], 0)["theta_E"][0]
    assert on.meta["lens"]["theta_E"] == pytest.approx(theta_e)
    assert "lens" not in off.meta and on.meta["central_population"] == off.meta["central_population"] == "lens"
    arc = on.image - off.image
    assert arc.min() > -1e-5  # light is only added
    ring = _annulus(arc, theta_e)
    source_flux = np.array(on.meta["lens"]["source_flux"])
    total = arc.sum(axis=(1, 2))
    assert np.all(total > 1.5 * source_flux)  # magnified (strong lensing: mu >~ 2)
    assert np.all(arc[:, ring].sum(axis=1) > 0.6 * total)  # the light sits at theta_E
    assert arc[1, SIZE // 2, SIZE // 2] < arc[1][ring].max()
    # faint: the arc peak is a few pixel-sigma at most, like real DR10 arcs
    sigma_r = on.meta["sigma_pix_white"][1]
    assert arc[1].max() < 30 * sigma_r


def test_noisy_cutout_shows_arc_excess():
    ra, dec, index = _lens(0)
    theta_e = lens_systems([index], 0)["theta_E"][0]
    on = MockDR10(seed=0).get_cutout(ra, dec, SIZE).image
    off = MockDR10(seed=0, lens_arcs=False).get_cutout(ra, dec, SIZE).image
    ring = _annulus(on, theta_e)
    excess = (on - off)[:, ring].sum(axis=1)
    assert np.all(excess > 0.5)  # nmgy: the arcs, well above the noise difference


def test_lenses_deterministic_per_seed_and_position():
    ra, dec, _ = _lens(2)
    a = MockDR10(seed=3).get_cutout(ra, dec, SIZE)
    b = MockDR10(seed=3).get_cutout(ra, dec, SIZE)
    c = MockDR10(seed=4).get_cutout(ra, dec, SIZE)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.meta["lens"] == b.meta["lens"]
    assert a.meta["lens"]["theta_E"] != c.meta["lens"]["theta_E"]
    idx = patch_lenses(50)
    s1, s2 = lens_systems(idx, 0), lens_systems(idx[::-1], 0)
    np.testing.assert_array_equal(s1["theta_E"], s2["theta_E"][::-1])  # independent of batching


def test_theta_e_distribution_confident_larger():
    table = load_lens_table()
    sys_ = lens_systems(np.arange(len(table)), 0)
    conf = table["grading"].to_numpy() == "confident"
    med_c, med_p = np.median(sys_["theta_E"][conf]), np.median(sys_["theta_E"][~conf])
    assert 1.3 < med_c < 1.7 and 1.05 < med_p < 1.35
    assert sys_["theta_E"].min() >= 0.6 and sys_["theta_E"].max() <= 3.5
    assert set(np.unique(sys_["type"])) <= {3, 4}  # DEV, SER
    mag_r = 22.5 - 2.5 * np.log10(sys_["flux_r"])
    assert 18.0 < np.median(mag_r) < 21.5


def test_catalog_contains_lens_galaxies_of_patches():
    cat = mock_catalog(3000, seed=0, lens_patches=40)
    lenses = cat.filter(pc.equal(cat["mock_population"], "lens"))
    table = load_lens_table()
    rows = patch_lenses(40)
    want = set(zip(table["ra"].to_numpy()[rows].round(8), table["dec"].to_numpy()[rows].round(8)))
    got = set(zip(np.round(lenses["ra"].to_numpy(), 8), np.round(lenses["dec"].to_numpy(), 8)))
    assert want <= got
    assert set(lenses["type"].to_pylist()) <= {"DEV", "SER"}
    assert np.all(lenses["flux_r"].to_numpy() > 1.0)
    frame = cat.to_pandas()
    assert not frame.duplicated(["ra", "dec"]).any() and not frame.duplicated(["brickname", "objid"]).any()
    # the cutout at a catalogue lens row is centred on that lens galaxy and shows its arcs
    r = lenses.slice(0, 1).to_pylist()[0]
    cut = MockDR10(seed=0).get_cutout(r["ra"], r["dec"], SIZE)
    assert cut.meta["central_objid"] == r["objid"] and cut.meta["central_population"] == "lens"
    assert "lens" in cut.meta


def test_patches_take_objects_out_of_their_bricks():
    keys = patch_cells(40, 0, None)
    assert len(keys) == len(np.unique(keys)) and len(keys) >= 35
    base = mock_catalog(20000, seed=0).to_pandas()
    with_patches = mock_catalog(20000, seed=0, lens_patches=40).to_pandas()
    assert not with_patches.duplicated(["ra", "dec"]).any()
    assert (with_patches["mock_population"] == "lens").sum() >= 40
    assert (base["mock_population"] == "lens").sum() < 10


def test_configured_lens_table(tmp_path):
    path = tmp_path / "lenses.csv"
    path.write_text("name,ra,dec,grading,theta_e\nmyA,150.1,2.2,confident,2.5\nmyB,150.3,2.2,probable,\n")
    mock = MockDR10(seed=0, lens_table=str(path), noise=False)
    cut = mock.get_cutout(150.1, 2.2, SIZE)
    assert cut.meta["lens"]["name"] == "myA" and cut.meta["lens"]["theta_E"] == 2.5
    assert 0.6 <= mock.get_cutout(150.3, 2.2, SIZE).meta["lens"]["theta_E"] <= 3.5
    assert "lens" not in MockDR10(seed=0, include_lenses=False).get_cutout(150.1, 2.2, SIZE).meta
    bad = tmp_path / "bad.csv"
    bad.write_text("name,x\na,1\n")
    with pytest.raises(ValueError, match="missing columns"):
        load_lens_table(str(bad))


def test_segments_reassemble_the_catalogue_with_patches():
    """The job's path (plan, then each segment alone, any order) gives the function's rows."""
    import pyarrow as pa

    from dhs_gen.survey.catalog import PATCH_ROW, catalog_segment, plan_catalog

    opts = {"seed": 1, "lens_patches": 70}
    plan = plan_catalog(5000, **opts)
    assert plan[0].row == PATCH_ROW and plan[1].row == PATCH_ROW and plan[2].row != PATCH_ROW
    parts = pa.concat_tables([catalog_segment(seg, **opts) for seg in reversed(plan)]).to_pandas()
    whole = mock_catalog(5000, **opts).to_pandas()
    key = ["brickname", "objid"]
    parts = parts.sort_values(key).reset_index(drop=True)
    whole = whole.sort_values(key).reset_index(drop=True)
    assert len(whole) == 5000
    assert parts.equals(whole)


def test_lens_galaxy_redshift_is_the_host_photo_z_estimator():
    from dhs_gen.survey.photoz import photo_z_from_fluxes

    sys_ = lens_systems(np.arange(60), seed=3)
    z, _ = photo_z_from_fluxes(*(sys_[f"flux_{b}"] for b in ("g", "r", "z", "w1")))
    assert np.isfinite(z).all()
    np.testing.assert_allclose(sys_["z_phot"], z, rtol=1e-12)
