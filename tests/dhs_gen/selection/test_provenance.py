"""The selection set must never have been trained on: checked through the frozen-model bundle."""
from __future__ import annotations

import pyarrow as pa
import pytest

from dhs_gen.selection.config import ProvenanceConfig
from dhs_gen.selection.provenance import ProvenanceError, verify_provenance
from dhs_gen.storage import write_parquet


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from training.export import export_frozen_model
    from training.models import build_model

    torch.manual_seed(0)
    model = build_model(name="small_cnn", in_chans=3)
    out = str(tmp_path_factory.mktemp("frozen") / "m")
    model_id = export_frozen_model(model, {"run": "t"}, out, data_manifest_hash="abc", preprocess={},
                                   trained_ids=["host1", "host2", "taskX"])
    return out, model_id


@pytest.fixture(scope="module")
def frozen_on_hosts(tmp_path_factory):
    """A model trained on injections (rows inj-*) into hosts hostS1 and hostS2."""
    torch = pytest.importorskip("torch")
    from training.export import export_frozen_model
    from training.models import build_model

    torch.manual_seed(1)
    out = str(tmp_path_factory.mktemp("frozen_hosts") / "m")
    model_id = export_frozen_model(build_model(name="small_cnn", in_chans=3), {"run": "h"}, out,
                                   data_manifest_hash="def", preprocess={}, trained_ids=["inj-1", "inj-2"],
                                   trained_host_ids=["hostS1", "hostS2"])
    return out, model_id


def test_model_trained_on_injections_into_the_selection_hosts_is_refused(frozen_on_hosts):
    # no selection task id and no host id is among the trained *row* ids: only the host list shows it
    path, model_id = frozen_on_hosts
    cfg = ProvenanceConfig(models=[{"model_id": model_id, "frozen_model": path}])
    assert cfg.fail_on_host_overlap  # refusing is the default
    with pytest.raises(ProvenanceError, match=r"trained on 1 of the 2 selection hosts .*host_role") as err:
        verify_provenance([model_id], cfg, task_ids=["sel-1", "sel-2"], host_ids=["hostS2", "hostZ"])
    assert "\n" not in str(err.value)
    (rec,) = verify_provenance([model_id], cfg, task_ids=["sel-1"], host_ids=["hostZ"])
    assert rec["verified"] and rec["n_host_overlap"] == 0 and rec["n_trained_host_ids"] == 2
    report = ProvenanceConfig(models=[{"model_id": model_id, "frozen_model": path}], fail_on_host_overlap=False)
    (rec,) = verify_provenance([model_id], report, task_ids=["sel-1"], host_ids=["hostS1", "hostZ"])
    assert rec["n_host_overlap"] == 1 and rec["host_overlap_frac"] == 0.5


def test_negative_used_as_a_training_host_is_refused(frozen_on_hosts):
    path, model_id = frozen_on_hosts
    cfg = ProvenanceConfig(models=[{"model_id": model_id, "frozen_model": path}], fail_on_host_overlap=False)
    with pytest.raises(ProvenanceError, match="negatives that set its FPR threshold"):
        verify_provenance([model_id], cfg, task_ids=["sel-1"], host_ids=[], negative_ids=["n1", "hostS1"])


def test_disjoint_model_is_verified(frozen):
    path, model_id = frozen
    cfg = ProvenanceConfig(models=[{"model_id": model_id, "frozen_model": path}], fail_on_host_overlap=False)
    (rec,) = verify_provenance([model_id], cfg, task_ids=["t1", "t2"], host_ids=["host1", "h9"])
    assert rec["verified"] and rec["n_host_overlap"] == 1 and rec["data_manifest_hash"] == "abc"


def test_trained_on_selection_task_fails(frozen):
    path, model_id = frozen
    cfg = ProvenanceConfig(models=[{"model_id": model_id, "frozen_model": path}])
    with pytest.raises(ProvenanceError, match="trained on 1 selection injections"):
        verify_provenance([model_id], cfg, task_ids=["t1", "taskX"], host_ids=[])


def test_threshold_negatives_must_be_held_out(frozen):
    path, model_id = frozen
    cfg = ProvenanceConfig(models=[{"model_id": model_id, "frozen_model": path}])
    with pytest.raises(ProvenanceError, match="negatives that set its FPR threshold"):
        verify_provenance([model_id], cfg, task_ids=["t1"], host_ids=[], negative_ids=["n1", "host1"])


def test_host_overlap_fails_by_default(frozen):
    path, model_id = frozen
    cfg = ProvenanceConfig(models=[{"model_id": model_id, "frozen_model": path}])
    with pytest.raises(ProvenanceError, match="selection hosts"):
        verify_provenance([model_id], cfg, task_ids=["t1"], host_ids=["host2"])


def test_wrong_model_id_and_missing_provenance(frozen):
    path, _ = frozen
    with pytest.raises(ProvenanceError, match="holds model"):
        verify_provenance(["other"], ProvenanceConfig(models=[{"model_id": "other", "frozen_model": path}]),
                          task_ids=[], host_ids=[])
    with pytest.raises(ProvenanceError, match="no provenance"):
        verify_provenance(["m"], ProvenanceConfig(), task_ids=[], host_ids=[])
    (rec,) = verify_provenance(["m"], ProvenanceConfig(allow_unverified=True), task_ids=[], host_ids=[])
    assert rec == {"model_id": "m", "verified": False, "method": "none"}


def test_ensemble_members_each_checked(frozen):
    path, _ = frozen
    cfg = ProvenanceConfig(models=[{"model_id": "ensemble-x", "members": [path, path]}], fail_on_host_overlap=False)
    (rec,) = verify_provenance(["ensemble-x"], cfg, task_ids=["t1"], host_ids=[])
    assert rec["method"] == "ensemble_members" and len(rec["members"]) == 2
    with pytest.raises(ProvenanceError, match="selection injections"):
        verify_provenance(["ensemble-x"], cfg, task_ids=["taskX"], host_ids=[])


def test_training_manifest_route(tmp_path):
    uri = str(tmp_path / "manifest.parquet")
    write_parquet(pa.table({"galaxy_id": ["a", "b"], "stamp_ref": ["s#1", "t7"], "host_id": ["hA", None],
                            "stamp": pa.array([b"x", b"y"], pa.binary())}), uri)
    cfg = ProvenanceConfig(models=[{"model_id": "m", "training_manifest": uri}])
    assert verify_provenance(["m"], cfg, task_ids=["t1"], host_ids=["z"])[0]["verified"]
    with pytest.raises(ProvenanceError):
        verify_provenance(["m"], cfg, task_ids=["t7"], host_ids=[])
    with pytest.raises(ProvenanceError, match="selection hosts"):
        verify_provenance(["m"], cfg, task_ids=["t1"], host_ids=["hA"])
