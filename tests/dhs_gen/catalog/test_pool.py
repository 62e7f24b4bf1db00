import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dhs_gen.catalog.config import PoolConfig, SplitConfig
from dhs_gen.catalog.pool import build_pool, confuser_category, pool_batch, pool_columns
from dhs_gen.catalog.tractor import nobs_z_bin, read_tractor_fits
from dhs_gen.schemas import validate_table
from dhs_gen.units import psfdepth_ivar_to_mag5

SPLIT = SplitConfig()


def rows(**overrides):
    """One clean N1 galaxy (REX, faint, round), with column overrides (lists allowed)."""
    base = dict(brickname="0001p000", objid=1, ra=150.0, dec=2.0, type="REX", flux_g=1.0, flux_r=2.0, flux_z=3.0,
                nobs_g=2, nobs_r=2, nobs_z=4, maskbits=0, shape_r=0.5, shape_e1=0.0, shape_e2=0.0, sersic=1.0,
                ebv=0.02, psfsize_g=1.5, psfsize_r=1.3, psfsize_z=1.2, psfdepth_g=400.0, psfdepth_r=300.0,
                psfdepth_z=100.0)
    n = max([len(v) for v in overrides.values() if isinstance(v, list)] or [1])
    data = {k: (v if isinstance(v, list) else [v] * n) for k, v in {**base, **overrides}.items()}
    data["objid"] = list(range(n))
    return pa.table(data)


def categories(**overrides):
    return list(pool_columns(rows(**overrides), PoolConfig(), SPLIT)["confuser_category"])


def test_ring_proxy():
    assert categories(type=["DEV", "DEV", "SER", "SER"], flux_r=[5.0, 4.9, 6.0, 6.0],
                      sersic=[1.0, 1.0, 4.0, 3.9]) == ["ring_proxy", None, "ring_proxy", None]


def test_edge_on_uses_computed_ellipticity():
    got = categories(shape_e1=[0.5, 0.3, 0.0, np.nan, np.nan], shape_e2=[0.0, 0.4, 0.1, np.nan, np.nan],
                     shape_r=[0.7, 0.7, 0.7, 1.9, 1.7])
    # |e| = 0.5 and hypot(0.3, 0.4) = 0.5 pass with shape_r 0.7 (no 1.8" fallback), round fails;
    # missing ellipticity falls back to shape_r >= 1.8
    assert got == ["edge_on_proxy", "edge_on_proxy", None, "edge_on_proxy", None]


def test_blue_clumpy_and_large_galaxy():
    # blue: g - r <= 0.4 and r <= 20.5 (flux_r 10 nmgy -> r = 20.0)
    assert categories(flux_g=[10.0, 5.0], flux_r=[10.0, 10.0]) == ["blue_clumpy", None]
    assert categories(shape_r=[2.0, 2.0, 1.9], flux_r=[3.0, 2.9, 3.0], flux_g=1.0) == ["large_galaxy", None, None]


def test_first_match_wins():
    # DEV, bright, elongated, blue and large: ring_proxy is listed first
    assert categories(type="DEV", flux_r=10.0, flux_g=10.0, shape_r=3.0, shape_e1=0.6) == ["ring_proxy"]
    assert categories(type="REX", flux_r=10.0, flux_g=10.0, shape_r=3.0, shape_e1=0.6) == ["edge_on_proxy"]


def test_thresholds_come_from_config():
    cols = pool_columns(rows(shape_r=2.5, flux_r=3.0, flux_g=1.0), PoolConfig(), SPLIT)
    cfg = PoolConfig(confusers={"large_shape_r_min": 3.0})
    assert confuser_category(cols, cfg.confusers)[0] is None


def test_default_cuts_statuses():
    table = rows(maskbits=[0, 4, 0, 0, 0, 0], nobs_z=[3, 3, 2, 3, 3, 11], type=["SER", "SER", "SER", "EXP", "PSF", "DEV"],
                 nobs_g=[1, 1, 1, 1, 1, 0])
    cols = pool_columns(table, PoolConfig(), SPLIT)
    assert list(cols["pool_status"]) == ["ok", "maskbits", "nobs", "type", "type", "nobs"]
    assert list(cols["nobs_z_bin"]) == ["3-5", "3-5", "1-2", "3-5", "3-5", "11+"]
    assert list(cols["galaxy_id"][:2]) == ["0001p000_0", "0001p000_1"]


def test_paper_iv_parity_preset():
    cfg = PoolConfig(preset="paper_iv_parity")
    table = rows(dec=[0.0, -20.0, 33.0, 0.0, 0.0, 0.0, 0.0], maskbits=[0, 0, 0, 2, 4, 0, 0],
                 nobs_g=[3, 3, 3, 3, 3, 2, 3], nobs_r=3, flux_z=[20.0] * 6 + [5.0])
    status = list(pool_columns(table, cfg, SPLIT)["pool_status"])
    # bit 1 (value 2) is rejected, bit 2 (value 4) is not; flux_z 20 nmgy is z = 19.25 < 20, 5 nmgy z = 20.75 fails
    assert status == ["ok", "dec_range", "dec_range", "maskbits", "ok", "nobs", "mag_z"]
    with pytest.raises(ValueError, match="'default' or 'paper_iv_parity'"):  # allowed values named at load
        PoolConfig(preset="paper_v")


def test_units_and_schema():
    batch = pool_batch(rows(), PoolConfig(), SPLIT)
    assert batch.column("psfdepth_r_mag5")[0].as_py() == pytest.approx(float(psfdepth_ivar_to_mag5(300.0)), rel=1e-6)
    assert batch.column("mag_r")[0].as_py() == pytest.approx(22.5 - 2.5 * np.log10(2.0), rel=1e-6)
    table = pa.Table.from_batches([batch]).drop(["pool_status"])
    validate_table(table, "negatives_pool", allow_extra=False)


def test_nobs_z_bins():
    assert list(nobs_z_bin([0, 1, 2, 3, 5, 6, 10, 11, 40])) == ["0", "1-2", "1-2", "3-5", "3-5", "6-10", "6-10",
                                                               "11+", "11+"]


def test_exclusion_near_known_lenses():
    table = rows(ra=[150.0, 150.0 + 10.9 / 3600, 150.0 + 11.2 / 3600, 151.0])
    lenses = pd.DataFrame({"name": ["L"], "ra": [150.0], "dec": [2.0]})
    pool, counts = build_pool(table, lenses, PoolConfig(), SPLIT)
    assert counts == {"near_known_lens": 2, "ok": 2}
    assert pool.num_rows == 2 and "pool_status" not in pool.column_names


def test_real_dr9_tractor_row(shared_data):
    table = read_tractor_fits(str(shared_data / "dr9_tractor_schema" / "tractor-1054p567.fits"))
    cols = pool_columns(table, PoolConfig(), SPLIT)
    assert cols["galaxy_id"][0] == "1054p567_2657" and cols["type"][0] == "REX"
    assert 22 < cols["psfdepth_r_mag5"][0] < 26  # an ivar turned into a 5-sigma AB depth
