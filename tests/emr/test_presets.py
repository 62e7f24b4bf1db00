"""Presets, derived Spark settings and account validation (all before any AWS call)."""
from __future__ import annotations

import pytest

from dhs_gen.config import ConfigError
from emr import catalog
from emr.presets import (
    AccountSettings,
    ClusterPreset,
    check_fits,
    configurations,
    get_preset,
    load_presets,
    parse_memory_mb,
    resolve_account,
    spark_settings,
)


def _preset(core_type="m5.2xlarge", count=4, **kw) -> ClusterPreset:
    return ClusterPreset(master={"instance_type": "m5.xlarge"}, core={"instance_type": core_type, "count": count}, **kw)


def test_packaged_presets_load_and_fit():
    presets = load_presets()
    assert {"smoke", "medium", "large-xlarge"} <= set(presets)
    for preset in presets.values():
        assert preset.release_label in catalog.RELEASES
        spark_settings(preset)  # raises if anything exceeds the node


@pytest.mark.parametrize("core_type, heap", [("m5.xlarge", "4g"), ("m5.2xlarge", "10g"), ("m5.4xlarge", "26g")])
def test_executor_memory_derived_within_node(core_type, heap):
    settings = spark_settings(_preset(core_type))
    assert settings["spark.executor.memory"] == heap
    node = catalog.instance_type(core_type)
    per_executor = parse_memory_mb(settings["spark.executor.memory"]) + parse_memory_mb(
        settings["spark.executor.memoryOverhead"])
    assert 2 * per_executor <= node.yarn_memory_mb
    assert 2 * int(settings["spark.executor.cores"]) == node.vcpu


def test_executor_count_leaves_room_for_the_driver():
    settings = spark_settings(_preset("m5.2xlarge", count=10))
    assert settings["spark.executor.instances"] == "19"
    assert settings["spark.dynamicAllocation.enabled"] == "false"


def test_memory_over_the_node_is_rejected():
    with pytest.raises(ConfigError, match="exceeds the 24576 MiB YARN has on m5.2xlarge"):
        spark_settings(_preset("m5.2xlarge", spark={"spark.executor.memory": "12g"}))
    with pytest.raises(ConfigError, match="vCPUs"):
        spark_settings(_preset("m5.xlarge", spark={"spark.executor.cores": "4"}))


def test_check_fits_accepts_the_documented_caps():
    preset = _preset("m5.xlarge")
    settings = spark_settings(preset)
    check_fits({**settings, "spark.executor.memory": "4g"}, preset)
    with pytest.raises(ConfigError):
        check_fits({**settings, "spark.executor.memory": "5g"}, preset)


def test_parse_memory_units():
    assert parse_memory_mb("4g") == 4096
    assert parse_memory_mb("2048m") == 2048
    assert parse_memory_mb("1024") == 1024
    with pytest.raises(ConfigError):
        parse_memory_mb("four gigs")


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown preset 'huge'.*medium"):
        get_preset("huge")


@pytest.mark.parametrize("change, message", [
    ({"release_label": "emr-6.15.0"}, "not allowed"),
    ({"core": {"instance_type": "m5.24xlarge"}}, "not in the catalogue"),
    ({"python": "3.7"}, "not offered"),
    ({"region": "Ohio"}, "not an AWS region"),
    ({"surprise": 1}, "Extra inputs"),
])
def test_bad_presets_rejected(tmp_path, change, message):
    body = {"master": {"instance_type": "m5.xlarge"}, "core": {"instance_type": "m5.xlarge"}, **change}
    import yaml

    path = tmp_path / "presets.yaml"
    path.write_text(yaml.safe_dump({"presets": {"p": body}}))
    with pytest.raises(ConfigError, match=message):
        load_presets(str(path))


def test_spark_env_classification_sets_python_and_numba():
    confs = configurations(_preset())
    env = next(c for c in confs if c["Classification"] == "spark-env")["Configurations"][0]
    assert env["Classification"] == "export"
    assert env["Properties"]["PYSPARK_PYTHON"] == "/usr/bin/python3.11"
    assert env["Properties"]["NUMBA_CACHE_DIR"] == "/tmp/numba_cache"


def test_account_resolution_fills_region_and_log_uri():
    account = resolve_account(AccountSettings(s3_prefix="s3://my-bucket/dhs/"), _preset(region="us-west-2"))
    assert account.region == "us-west-2"
    assert account.s3_prefix == "s3://my-bucket/dhs"
    assert account.log_uri == "s3://my-bucket/dhs/emr-logs/"


@pytest.mark.parametrize("account, message", [
    ({}, "no S3 prefix"),
    ({"s3_prefix": "https://my-bucket.s3.amazonaws.com/x"}, "must be an s3://"),
    ({"s3_prefix": "s3://my-bucket/x", "log_uri": "/var/log"}, "log_uri"),
    ({"s3_prefix": "s3://my-bucket/x", "subnet_id": "subnet-0123456789abcdef0",
      "subnet_availability_zone": "us-west-2b"}, "region/subnet mismatch"),
    ({"s3_prefix": "s3://my-bucket/x", "subnet_id": "subnet-0123456789abcdef0"}, "subnet_availability_zone"),
    ({"s3_prefix": "s3://my-bucket/x", "subnet_id": "vpc-123"}, "not a subnet id"),
])
def test_account_errors(account, message):
    with pytest.raises(ConfigError, match=message):
        resolve_account(AccountSettings(**account), _preset(region="us-east-2"))


def test_subnet_in_region_accepted():
    account = AccountSettings(s3_prefix="s3://my-bucket/x", subnet_id="subnet-0123456789abcdef0",
                              subnet_availability_zone="us-east-2c")
    assert resolve_account(account, _preset(region="us-east-2")).subnet_id == "subnet-0123456789abcdef0"


def test_cost_is_sum_of_nodes():
    preset = _preset("m5.2xlarge", count=10)
    expected = catalog.hourly_cost_usd("m5.xlarge") + 10 * catalog.hourly_cost_usd("m5.2xlarge")
    assert preset.hourly_cost_usd() == pytest.approx(expected)
    assert catalog.hourly_cost_usd("m5.2xlarge") == pytest.approx(0.384 + 0.096)


def test_account_example_parses_but_needs_a_real_bucket():
    from dhs_gen.config import load_config
    from emr.packaging import project_root

    account = load_config(AccountSettings, f"{project_root()}/configs/emr_account.example.yaml")
    with pytest.raises(ConfigError, match="must be an s3://bucket/prefix"):
        resolve_account(account, _preset())
    filled = account.model_copy(update={"s3_prefix": "s3://my-lab-bucket/dark-halo-scope"})
    assert resolve_account(filled, _preset()).log_uri == "s3://my-lab-bucket/dark-halo-scope/emr-logs/"
