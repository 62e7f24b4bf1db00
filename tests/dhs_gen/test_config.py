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


def test_command_line_inputs_land_in_the_resolved_config(tmp_path):
    """Before: `dhs score --input X --model M` saved `input: ''` and `models: []`; phase 4c's
    `--manifest` left `manifest_uri: null`."""
    from dhs_gen.config import apply_cli_values, cli_values
    from jobs.phase4c_inject import Phase4cConfig
    from jobs.score import ScoreConfig

    args = {"config": "c.yaml", "overrides": [], "master": "local[2]", "log_level": None,
            "input": "s3://b/stamps", "output": "s3://b/scores", "model": ["m1", "m2"], "calibration": None}
    given = cli_values(args)
    assert given == {"input": "s3://b/stamps", "output": "s3://b/scores", "model": ["m1", "m2"]}
    score = apply_cli_values(ScoreConfig(), given)
    assert (score.input, score.output, score.models) == ("s3://b/stamps", "s3://b/scores", ["m1", "m2"])
    p4c = apply_cli_values(Phase4cConfig(), {"manifest": "/m", "cutouts": "/c", "output": "/o"})
    assert (p4c.manifest_uri, p4c.cutouts_uri) == ("/m", "/c")
    save_resolved_config(p4c, str(tmp_path))
    saved = yaml.safe_load((tmp_path / "_resolved_config.yaml").read_text())
    assert saved["manifest_uri"] == "/m" and saved["cutouts_uri"] == "/c"


def test_command_line_values_never_replace_a_config_section_and_are_validated():
    from dhs_gen.config import apply_cli_values

    cfg = apply_cli_values(JobConfig(), {"sampling": "s3://b/pool", "seed": 7})
    assert cfg.sampling == Sampling() and cfg.seed == 7
    with pytest.raises(ConfigError, match="command line: invalid configuration: seed"):
        apply_cli_values(JobConfig(), {"seed": "seven"})


@pytest.mark.parametrize("override, allowed", [
    ("splits.scheme=legacy_sha265", "'legacy_sha256' or 'stable_hash64'"),
    ("pool.preset=paper_iv", "'default' or 'paper_iv_parity'"),
    ("positives.gradings=[confident, probabel]", "'confident' or 'probable'"),
    ("sampling.type_bins=[SER, EXP]", "'SER', 'DEV', 'REX' or 'OTHER'"),
])
def test_catalogue_fields_with_fixed_values_fail_at_load_naming_the_allowed_ones(override, allowed):
    from dhs_gen.catalog.config import CatalogConfig

    with pytest.raises(ConfigError, match=f"{override.split('=')[0]}.*Input should be {allowed}"):
        load_config(CatalogConfig, overrides=[override])


def test_literal_value_sets_agree_with_the_code_that_uses_them():
    from typing import get_args

    from dhs_gen.catalog.config import POOL_PRESETS, PoolPreset, SplitScheme
    from dhs_gen.catalog.splits import SCHEMES

    assert set(get_args(SplitScheme)) == set(SCHEMES)
    assert set(get_args(PoolPreset)) == set(POOL_PRESETS)
