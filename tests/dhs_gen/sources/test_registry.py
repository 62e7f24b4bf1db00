"""Source registry: declared parameters, ranges, determinism per row, errors."""
from __future__ import annotations

import numpy as np
import pytest

from dhs_gen.sources import SourceError, get_source, list_sources, register_source
from dhs_gen.sources.priors import check_finite_batch
from dhs_gen.sources.sersic import SersicSource

NAMES = ["cosmos", "sersic", "sersic_clumps"]


def test_registered_generators_declare_parameters_with_units():
    assert list_sources() == NAMES
    for name in NAMES:
        specs = get_source(name).describe()
        assert specs and all(s["unit"] and s["low"] <= s["high"] for s in specs)
        assert any(s["name"] == "mag_r" and s["low"] == 23.0 and s["high"] == 26.0 for s in specs)


@pytest.mark.parametrize("name", NAMES)
def test_sample_shapes_and_declared_ranges(name):
    gen = get_source(name)
    theta_e = np.linspace(0.5, 3.0, 50)
    batch = gen.sample(np.random.default_rng(1), 50, theta_E=theta_e, center_x=0.1, center_y=-0.05)
    assert batch["kind"] == gen.kind
    for key in ("flux_g", "flux_r", "flux_z", "center_x", "center_y", "mag_r"):
        assert batch[key].shape == (50,) and np.isfinite(batch[key]).all()
    assert np.all((batch["mag_r"] >= 23) & (batch["mag_r"] <= 26))
    beta = np.hypot(batch["center_x"] - 0.1, batch["center_y"] + 0.05) / theta_e
    assert np.all((beta >= 0.1 - 1e-9) & (beta <= 0.4 + 1e-9))
    if gen.kind == "image":
        assert batch["templates"].dtype == np.float32 and batch["templates"].shape[0] == 50
        sums = batch["templates"].reshape(50, -1, batch["templates"].shape[-1] ** 2).sum(axis=-1)
        np.testing.assert_allclose(sums, 1.0, rtol=1e-4)
        # positive light; a COSMOS template keeps the (zero-mean) sky noise of its footprint
        negative = -np.clip(batch["templates"], None, 0).reshape(50, -1).sum(axis=1)
        assert (negative < 0.2).all()


@pytest.mark.parametrize("name", NAMES)
def test_sample_rows_is_independent_of_batching(name):
    gen = get_source(name)
    full = gen.sample_rows(42, ["a", "b", "c", "d"], theta_E=np.full(4, 1.5))
    part = gen.sample_rows(42, ["c"], theta_E=np.full(1, 1.5))
    other_seed = gen.sample_rows(43, ["c"], theta_E=np.full(1, 1.5))
    for key, value in part.items():
        if key != "kind":
            np.testing.assert_array_equal(value[0], full[key][2])
    assert other_seed["flux_r"][0] != part["flux_r"][0]


def test_errors_are_clear():
    with pytest.raises(SourceError, match="unknown source generator 'nope'"):
        get_source("nope")
    with pytest.raises(SourceError, match="bad options"):
        get_source("sersic", colour=1)
    with pytest.raises(SourceError, match="already registered"):
        register_source("sersic", dict)
    with pytest.raises(SourceError, match="low <= high"):
        get_source("sersic", mag_r=(26, 23))
    with pytest.raises(SourceError, match="theta_E"):
        get_source("sersic").sample(np.random.default_rng(0), 3, theta_E=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(SourceError, match="non-finite R_sersic in row 1"):
        check_finite_batch({"R_sersic": np.array([0.2, np.nan])}, "sersic")
    register_source("sersic", SersicSource)  # re-registering the same factory is allowed


@pytest.mark.parametrize("name", NAMES)
def test_empty_batches_render_to_empty_stamps(name):
    from dhs_gen.sources import render_lensed_source

    e = np.zeros(0)
    lens = dict(theta_E=e, e1=e, e2=e, center_x=e, center_y=e, gamma1=e, gamma2=e)
    batch = get_source(name).sample_rows(1, [], theta_E=e)
    assert render_lensed_source(lens, batch, np.zeros((0, 3))).shape == (0, 3, 64, 64)
