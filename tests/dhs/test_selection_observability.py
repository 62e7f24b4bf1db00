"""The selection stage's observability map uses each injection's own host z_l and z_s."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dhs.selection_function import _observable_grid, observability_outputs
from dhs_gen.selection.config import SelectionConfig
from dhs_gen.selection.observability import injection_observables


def _injections(z_l, z_s=1.5) -> pa.Table:
    n = len(z_l)
    return pa.table({"task_id": [f"t{i}" for i in range(n)], "status": ["ok"] * n, "cutout_ok": [True] * n,
                     "theta_e_arcsec": np.full(n, 1.0), "z_l": np.asarray(z_l, dtype=float),
                     "z_s": np.full(n, z_s)})


def _cfg(z_edges=(0.25, 0.45, 0.65)) -> SelectionConfig:
    return SelectionConfig(axes={"theta_e_arcsec": [0.75, 1.25], "z_l": list(z_edges)},
                           grids=[["theta_e_arcsec", "z_l"]])


def test_host_redshift_changes_the_observables():
    # the same theta_E and z_s, hosts at the low or the high end of the same z_l cells
    low, high = _injections([0.26, 0.27, 0.46, 0.47]), _injections([0.43, 0.44, 0.63, 0.64])
    obs_low, slacs, z_s = observability_outputs(_cfg(), low)
    obs_high = observability_outputs(_cfg(), high)[0]
    assert z_s == 1.5 and slacs["n"] > 50
    assert obs_low["z_l_lo"].to_pylist() == obs_high["z_l_lo"].to_pylist() == [0.25, 0.45]
    s_low, s_high = obs_low["sigma_v_kms_median"].to_numpy(), obs_high["sigma_v_kms_median"].to_numpy()
    assert np.all(s_low < s_high - 5.0)  # a farther lens needs a larger sigma_v for the same theta_E
    own = injection_observables(np.full(2, 1.0), np.array([0.43, 0.44]), 1.5)
    assert s_high[0] == pytest.approx(np.median(own["sigma_v_kms"]))


def test_source_redshift_and_failed_rows():
    table = _injections([0.3, 0.3, 0.5])
    near = observability_outputs(_cfg(), table)[0]["sigma_v_kms_median"].to_numpy()
    far_zs = observability_outputs(_cfg(), _injections([0.3, 0.3, 0.5], z_s=3.0))[0]["sigma_v_kms_median"]
    assert np.all(far_zs.to_numpy() < near)
    failed = table.set_column(1, "status", pa.array(["ok", "ok", "render_failed"]))
    obs = observability_outputs(_cfg(), failed)[0]
    assert obs["n"].to_pylist() == [2]  # the failed injection's host does not fill its cell


def test_missing_host_redshift_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\['z_l'\]"):
        observability_outputs(_cfg(), _injections([0.3]).drop(["z_l"]))


def test_grid_for_contours_leaves_empty_cells_nan():
    cfg = _cfg((0.25, 0.45, 0.65, 0.85))
    obs = observability_outputs(cfg, _injections([0.3, 0.7]))[0]
    theta, z_l, sigma = _observable_grid(obs, "sigma_v_kms_median")
    np.testing.assert_allclose(theta, [1.0])
    np.testing.assert_allclose(z_l, [0.35, 0.55, 0.75])
    assert sigma.shape == (1, 3) and np.isfinite(sigma[0, [0, 2]]).all() and np.isnan(sigma[0, 1])
