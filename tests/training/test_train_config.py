"""Training/evaluation configs: fixed-choice fields fail at load naming the allowed values; the
Trainer never changes its caller's config; ``run.channels_last: auto`` follows a recorded
measurement, else measures."""
from __future__ import annotations

import pytest
import yaml

from dhs_gen.config import ConfigError, load_config
from training.evaluate import EvaluateConfig
from training.train import TrainConfig, Trainer

from .conftest import train_config


def _write(tmp_path, data):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


BASE = {"data": {"shards": "x"}, "run": {"out_dir": "o"}}


@pytest.mark.parametrize("key, value, allowed", [
    ("run.device", "gpu", "'auto', 'cpu' or 'cuda'"),
    ("data.mode", "pairs", "'paired' or 'plain'"),
    ("run.amp", "bfloat16", "'auto', 'bf16', 'fp16' or 'off'"),
    ("optim.loss", "focall", "'bce' or 'focal'"),
    ("model.name", "resnet_18", "'resnet18', 'efficientnet_b0', 'convnext_tiny' or 'small_cnn'"),
    ("model.init", "zero", "'copy_or_zero' or 'repeat_scaled'"),
    ("preprocess.norm", "mad", "'outer_mad', 'asinh' or 'none'"),
    ("run.channels_last", "sometimes", "'auto'"),
])
def test_fixed_choice_typos_fail_at_load_with_the_allowed_values(tmp_path, key, value, allowed):
    with pytest.raises(ConfigError) as info:
        load_config(TrainConfig, _write(tmp_path, BASE), [f"{key}={value}"])
    assert allowed in str(info.value) and key.split(".")[1] in str(info.value)


@pytest.mark.parametrize("key, value, allowed", [("device", "gpu", "'cpu' or 'cuda'"),
                                                 ("mode", "pairs", "'paired' or 'plain'")])
def test_eval_config_fixed_choices(tmp_path, key, value, allowed):
    with pytest.raises(ConfigError) as info:
        load_config(EvaluateConfig, _write(tmp_path, {}), [f"{key}={value}"])
    assert allowed in str(info.value)


def test_trainer_leaves_the_callers_config_unchanged(paired_shards, tmp_path):
    cfg = train_config(paired_shards, tmp_path / "run", data__meta_columns=["psfsize_r", "psfdepth_r_mag5"],
                       optim__epochs=1)
    before = cfg.model_dump()
    trainer = Trainer(cfg)
    try:
        assert cfg.model_dump() == before  # the caller's object is untouched
        assert trainer.cfg.preprocess.meta_columns == ["psfsize_r", "psfdepth_r_mag5"]
        assert len(trainer.cfg.preprocess.meta_mean) == 2 and trainer.cfg.preprocess.meta_std
    finally:
        trainer.close()


def test_channels_last_auto_uses_the_recorded_measurement_else_measures(tmp_path, monkeypatch):
    import torch

    from training import memory_format as mf
    from training.models import build_model

    model = build_model("small_cnn")
    record = tmp_path / mf.RECORD_NAME
    record.write_text(yaml.safe_dump({"devices": {"cpu": {"channels_last": False}}}))
    monkeypatch.setattr(mf, "record_paths", lambda: [str(record)])
    monkeypatch.setattr(mf, "measure", lambda *a, **k: pytest.fail("measured despite a record"))
    assert mf.resolve("auto", model, torch.device("cpu"), (3, 16, 16), 8, None) is False
    record.write_text(yaml.safe_dump({"devices": {"cpu": {"channels_last": True}}}))
    assert mf.resolve("auto", model, torch.device("cpu"), (3, 16, 16), 8, None) is True
    assert mf.resolve(False, model, torch.device("cpu"), (3, 16, 16), 8, None) is False

    monkeypatch.setattr(mf, "record_paths", lambda: [str(tmp_path / "absent.yaml")])
    monkeypatch.setattr(mf, "_MEASURED", {})
    calls = []
    monkeypatch.setattr(mf, "measure", lambda *a, **k: calls.append(a) or {"channels_last": 1.0, "contiguous": 2.0})
    assert mf.resolve("auto", model, torch.device("cpu"), (3, 16, 16), 8, None) is False
    assert mf.resolve("auto", model, torch.device("cpu"), (3, 16, 16), 8, None) is False
    assert len(calls) == 1  # measured once per process and setting


def test_start_up_measurement_leaves_the_model_and_rng_untouched():
    import torch

    from training.memory_format import measure
    from training.models import build_model

    torch.manual_seed(0)
    model = build_model("small_cnn")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    rates = measure(model, torch.device("cpu"), (3, 16, 16), 4, None, steps=1, warmup=1, rounds=1)
    assert set(rates) == {"channels_last", "contiguous"} and min(rates.values()) > 0
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
