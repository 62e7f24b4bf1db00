import numpy as np
import pandas as pd
import pytest

from dhs_gen.catalog.crossmatch import (
    angular_sep_arcsec,
    disc_pixels,
    nearest_match,
    pairs_within_spark,
    within_radius,
)

ARCSEC = 1 / 3600.0


def test_nearest_match_picks_closest_within_radius():
    lenses_ra, lenses_dec = np.array([10.0, 20.0, 30.0]), np.array([0.0, 0.0, 0.0])
    src_ra = np.array([10.0 + 3 * ARCSEC, 10.0 + 1 * ARCSEC, 20.0 + 6 * ARCSEC, 31.0])
    src_dec = np.zeros(4)
    idx, sep = nearest_match(lenses_ra, lenses_dec, src_ra, src_dec, 5.0)
    assert list(idx) == [1, -1, -1]
    assert sep[0] == pytest.approx(1.0, abs=1e-3) and np.isnan(sep[1])
    assert list(within_radius(src_ra, src_dec, lenses_ra, lenses_dec, 5.0)) == [True, True, False, False]


def test_separation_handles_ra_wrap_and_cos_dec():
    assert angular_sep_arcsec(359.9999, 0.0, 0.0001, 0.0) == pytest.approx(0.72, abs=1e-6)
    assert angular_sep_arcsec(10.0, 60.0, 10.0 + 2 * ARCSEC, 60.0) == pytest.approx(1.0, abs=1e-3)


def test_disc_pixels_cover_every_point_of_the_disc():
    import healpy as hp

    rng = np.random.default_rng(1)
    ra, dec = rng.uniform(0, 360, 50), rng.uniform(-80, 80, 50)
    rows, pixels = disc_pixels(ra, dec, 11.0, 4096)
    for i in range(50):
        ang = rng.uniform(0, 2 * np.pi, 40)
        r = 10.9 * ARCSEC * np.sqrt(rng.uniform(size=40))
        pts = hp.ang2pix(4096, ra[i] + r * np.cos(ang) / np.cos(np.radians(dec[i])), dec[i] + r * np.sin(ang),
                         nest=True, lonlat=True)
        assert set(pts) <= set(pixels[rows == i])


@pytest.mark.spark
def test_spark_pairs_match_local(spark):
    rng = np.random.default_rng(3)
    lenses = pd.DataFrame({"name": [f"L{i}" for i in range(30)],
                           "ra": np.r_[rng.uniform(0, 360, 28), 359.9999, 0.0], "dec": rng.uniform(-60, 60, 30)})
    offsets = rng.uniform(-12, 12, (30 * 3, 2)) * ARCSEC
    ra = np.repeat(lenses["ra"].to_numpy(), 3) + offsets[:, 0]
    dec = np.repeat(lenses["dec"].to_numpy(), 3) + offsets[:, 1]
    big = pd.DataFrame({"galaxy_id": [f"g{i}" for i in range(len(ra))], "ra": np.mod(ra, 360), "dec": dec})
    got = pairs_within_spark(spark, spark.createDataFrame(big), lenses, 11.0, "name").toPandas()
    got_pairs = set(zip(got["galaxy_id"], got["ref_name"]))
    expected = set()
    for _, g in big.iterrows():
        sep = angular_sep_arcsec(g.ra, g.dec, lenses["ra"], lenses["dec"])
        expected |= {(g.galaxy_id, n) for n in lenses["name"][sep <= 11.0]}
    assert got_pairs == expected and len(expected) > 20
