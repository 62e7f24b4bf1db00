"""Typed configs: unknown keys and bad values are errors; overrides; resolved config saved."""
from __future__ import annotations

from typing import List

import pytest
import yaml

from dhs_gen.config import ConfigError, StrictModel, apply_overrides, load_config, save_resolved_config


class Sampling(StrictModel):
    ratio: int = 100
    mix: List[float] = [0.85, 0.15]


class JobConfig(StrictModel):
    seed: int = 42
    output: str = "build/out"
    sampling: Sampling = Sampling()


def _write(tmp_path, data):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_defaults_and_yaml(tmp_path):
    assert load_config(JobConfig).seed == 42
    cfg = load_config(JobConfig, _write(tmp_path, {"seed": 7, "sampling": {"ratio": 50}}))
    assert cfg.seed == 7 and cfg.sampling.ratio == 50 and cfg.sampling.mix == [0.85, 0.15]


def test_unknown_key_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="sampling.ratioo"):
        load_config(JobConfig, _write(tmp_path, {"sampling": {"ratioo": 3}}))


def test_bad_value_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="seed"):
        load_config(JobConfig, _write(tmp_path, {"seed": "not-a-number"}))


def test_overrides_parse_yaml_scalars(tmp_path):
    cfg = load_config(JobConfig, _write(tmp_path, {}), ["sampling.ratio=10", "output=s3://b/x"])
    assert cfg.sampling.ratio == 10 and cfg.output == "s3://b/x"
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides({}, ["novalue"])


def test_non_mapping_yaml_is_rejected(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(JobConfig, str(path))


def test_resolved_config_saved_beside_output(tmp_path):
    cfg = load_config(JobConfig, None, ["seed=3"])
    target = save_resolved_config(cfg, str(tmp_path))
    assert yaml.safe_load(open(target))["seed"] == 3
    assert load_config(JobConfig, target) == cfg
