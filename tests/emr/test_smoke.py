"""``make smoke-<name>``: the same steps as on EMR, through local spark-submit."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from dhs_gen.config import ConfigError
from emr import smoke
from emr.packaging import project_root


def test_commands_mirror_the_emr_steps(tmp_path):
    (cmd,) = smoke.smoke_commands("healthcheck", str(tmp_path / "run"))
    assert cmd[:3] == ["spark-submit", "--master", "local[2]"]
    assert cmd[3] == os.path.join(project_root(), "jobs", "healthcheck.py")
    assert cmd[4:] == ["--output", str(tmp_path / "run" / "healthcheck")]


def test_configs_are_rendered_with_the_local_run_dir(tmp_path):
    root = tmp_path / "repo"
    (root / "jobs").mkdir(parents=True)
    (root / "configs").mkdir()
    (root / "jobs" / "compact.py").write_text("")
    (root / "configs" / "catalog.yaml").write_text("compact: {target_file_mb: 128}\n")
    (root / "configs" / "catalog_demo.yaml").write_text(
        "tractor: survey/catalog\ncatalog:\n  compact: {target_file_mb: 16}\n  note: '{run}/x'\n")
    (cmd,) = smoke.smoke_commands("compact", str(tmp_path / "run"), root=str(root), overrides=["a.b=1"],
                                  uris=["input=/data/parts"])
    rendered = tmp_path / "run" / "configs" / "compact-catalog_demo.yaml"
    assert cmd[4:] == ["--config", str(rendered), "--set", "a.b=1", "--input", "/data/parts",
                       "--output", str(tmp_path / "run" / "compacted")]
    # the demo file wraps the job config under `catalog:`: only that section is passed on
    assert yaml.safe_load(rendered.read_text()) == {"compact": {"target_file_mb": 16}, "note": f"{tmp_path / 'run'}/x"}


def test_mock_survey_supplies_a_missing_tractor_input(tmp_path):
    root = tmp_path / "repo"
    (root / "jobs").mkdir(parents=True)
    (root / "configs").mkdir()
    for name in ("mock_catalog", "negative_pool", "sample_negatives"):
        (root / "jobs" / f"{name}.py").write_text("")
    (root / "configs" / "catalog.yaml").write_text("sampling: {seed: 1}\n")
    run = tmp_path / "run"
    cmds = smoke.smoke_commands("negatives", str(run), root=str(root), overrides=["seed=2"])
    assert [os.path.basename(c[3]) for c in cmds] == ["mock_catalog.py", "negative_pool.py", "sample_negatives.py"]
    assert cmds[0][4:] == ["--set", "n_rows=5000", "--output", str(run / "mock_catalog")]  # no user overrides
    assert cmds[1][cmds[1].index("--input") + 1] == str(run / "mock_catalog")
    given = smoke.smoke_commands("negatives", str(run), root=str(root), uris=["tractor=/data/sweeps"])
    assert len(given) == 2 and given[0][given[0].index("--input") + 1] == "/data/sweeps"


def test_missing_config_fails_with_its_expected_name(tmp_path, capsys):
    root = tmp_path / "repo"
    (root / "jobs").mkdir(parents=True)
    (root / "configs").mkdir()
    (root / "jobs" / "cutouts.py").write_text("")
    with pytest.raises(ConfigError, match=r"configs/cutouts\*\.yaml"):
        smoke.smoke_commands("cutouts", str(tmp_path / "run"), root=str(root))


def test_env_puts_this_python_first():
    env = smoke.smoke_env()
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(os.sys.executable)
    assert env["SPARK_LOCAL_IP"]


@pytest.mark.slow
@pytest.mark.spark
def test_smoke_healthcheck_runs_through_spark_submit(tmp_path):
    assert smoke.main(["healthcheck", "--out", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "healthcheck" / "_summary.json").read_text())
    assert summary["rows_out"] == summary["rows_in"] == summary["ok"]


def test_make_targets_pass_preset_config_and_dry_run():
    out = subprocess.run(["make", "-n", "emr-phase4c", "PRESET=medium", "CONFIG=configs/phase4c.yaml", "DRY_RUN=1",
                          "S3_PREFIX=s3://b/p"], cwd=project_root(), capture_output=True, text=True, check=True).stdout
    out = " ".join(out.split())
    assert "-m emr.launch phase4c --preset medium --config configs/phase4c.yaml --dry-run" in out
    assert "--s3-prefix s3://b/p" in out
    out = subprocess.run(["make", "-n", "emr-negatives", "PRESET=smoke", "CONFIG=a.yaml,b.yaml",
                          "URIS=tractor=s3://s/t positives=s3://p/q"],
                         cwd=project_root(), capture_output=True, text=True, check=True).stdout
    out = " ".join(out.split())
    assert "-m emr.launch negatives --preset smoke --config a.yaml --config b.yaml" in out
    assert "--uri tractor=s3://s/t --uri positives=s3://p/q" in out
    assert "--dry-run" not in out
    out = subprocess.run(["make", "-n", "smoke-cutouts"], cwd=project_root(), capture_output=True, text=True,
                         check=True).stdout
    out = " ".join(out.split())
    assert "-m emr.smoke cutouts" in out


def test_demo_configs_preferred_for_smoke_exact_for_emr(tmp_path):
    from emr.pipelines import find_config

    for name in ("cutouts.yaml", "cutouts_demo.yaml", "cutouts_big.yaml"):
        (tmp_path / name).write_text("size: 101\n")
    assert find_config("cutouts", str(tmp_path)).endswith("/cutouts.yaml")
    assert find_config("cutouts", str(tmp_path), demo=True).endswith("/cutouts_demo.yaml")
    (tmp_path / "cutouts.yaml").unlink()
    assert find_config("cutouts", str(tmp_path)).endswith("/cutouts_big.yaml")  # never a demo config on EMR
    (tmp_path / "cutouts_big.yaml").unlink()
    with pytest.raises(ConfigError, match=r"cutouts\*\.yaml"):
        find_config("cutouts", str(tmp_path))
    assert find_config("cutouts", str(tmp_path), demo=True).endswith("/cutouts_demo.yaml")


def test_phase4c_smoke_makes_its_manifest_with_phase4a(tmp_path):
    root = tmp_path / "repo"
    (root / "jobs").mkdir(parents=True)
    (root / "configs").mkdir()
    for name in ("phase4a_manifest", "phase4c_inject"):
        (root / "jobs" / f"{name}.py").write_text("")
    for name in ("phase4a_demo", "phase4c_demo"):
        (root / "configs" / f"{name}.yaml").write_text("partitions: 4\n")
    run = tmp_path / "run"
    first, second = smoke.smoke_commands("phase4c", str(run), root=str(root))
    assert os.path.basename(first[3]) == "phase4a_manifest.py"
    assert first[4:6] == ["--config", str(run / "configs" / "phase4a-phase4a_demo.yaml")]
    assert second[second.index("--input") + 1] == str(run / "phase4a_manifest")
    (only,) = smoke.smoke_commands("phase4c", str(run), root=str(root), uris=["manifest=/data/m"])
    assert only[only.index("--input") + 1] == "/data/m"


def test_cutouts_smoke_samples_its_manifest_from_the_mock_survey(tmp_path):
    root = tmp_path / "repo"
    (root / "jobs").mkdir(parents=True)
    (root / "configs").mkdir()
    for name in ("mock_catalog", "negative_pool", "sample_negatives", "cutouts"):
        (root / "jobs" / f"{name}.py").write_text("")
    (root / "configs" / "cutouts_demo.yaml").write_text("size: 101\n")
    run = tmp_path / "run"
    cmds = smoke.smoke_commands("cutouts", str(run), root=str(root))
    assert [os.path.basename(c[3]) for c in cmds] == [
        "mock_catalog.py", "negative_pool.py", "sample_negatives.py", "cutouts.py"]
    assert cmds[1][cmds[1].index("--input") + 1] == str(run / "mock_catalog")
    assert cmds[3][cmds[3].index("--input") + 1] == str(run / "sampled_negatives")
