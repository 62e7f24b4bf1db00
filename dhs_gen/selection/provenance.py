"""Proof that a scored model never trained on the selection injection set.

A score row names its frozen model by ``model_id`` (a content hash). For each model the config
gives the frozen-model bundle (read as data by ``dhs_gen.model_bundle``: model_id, trained-ids
list checked against its hash) or the training manifest it was trained on. Selection ``task_id`` overlap with the
trained ids always fails; host-galaxy overlap (a selection host seen in training, e.g. as a
negative) fails unless ``fail_on_host_overlap`` is false, and is reported either way.
"""
from __future__ import annotations

from typing import Iterable

from dhs_gen.model_bundle import read_training_ids
from dhs_gen.selection.config import ModelProvenance, ProvenanceConfig


class ProvenanceError(RuntimeError):
    """A model's provenance is missing, inconsistent, or shows it trained on the selection set."""


def _frozen_ids(path: str, model_id: str | None) -> tuple[frozenset, dict]:
    """Trained ids of the bundle at ``path`` (read as data: no model is loaded)."""
    ids = read_training_ids(path)
    if model_id is not None and ids.model_id != model_id:
        raise ProvenanceError(f"scores name model {model_id!r} but {path} holds model {ids.model_id!r}")
    return ids.trained_ids, ids.provenance()


def _trained_ids(entry: ModelProvenance) -> tuple[frozenset, dict]:
    """(trained ids, provenance record) from the frozen model(s) or the training manifest."""
    if entry.frozen_model:
        ids, rec = _frozen_ids(entry.frozen_model, entry.model_id)
        return ids, {"method": "frozen_model", **rec}
    if entry.members:
        parts = [_frozen_ids(path, None) for path in entry.members]
        return frozenset().union(*(p[0] for p in parts)), {"method": "ensemble_members",
                                                            "members": [p[1] for p in parts]}
    if entry.training_manifest:
        from dhs_gen.storage import read_parquet

        table = read_parquet(entry.training_manifest, columns=["galaxy_id", "stamp_ref"])
        ids = set(table["galaxy_id"].to_pylist()) | set(table["stamp_ref"].to_pylist())
        return frozenset(i for i in ids if i is not None), {"method": "training_manifest",
                                                            "path": entry.training_manifest}
    raise ProvenanceError(f"provenance for model {entry.model_id!r} names no frozen_model, members or "
                          "training_manifest")


def verify_provenance(model_ids: Iterable[str], cfg: ProvenanceConfig, task_ids: Iterable[str],
                      host_ids: Iterable[str], negative_ids: Iterable[str] = ()) -> list[dict]:
    """Check every scored model; return one record per model (``verified`` true/false).

    Raises ProvenanceError when a model trained on a selection task_id (or host, if configured),
    on a negative that sets its FPR threshold (the cut would be optimistic), or when a model has
    no provenance and ``allow_unverified`` is false.
    """
    entries = {m.model_id: m for m in cfg.models}
    tasks = {str(t) for t in task_ids}
    hosts = {str(h) for h in host_ids if h is not None}
    negatives = {str(n) for n in negative_ids if n is not None}
    records = []
    for model_id in sorted(set(model_ids)):
        entry = entries.get(model_id)
        if entry is None:
            if not cfg.allow_unverified:
                raise ProvenanceError(
                    f"model {model_id!r} has no provenance (provenance.models); the selection function "
                    "refuses scores it cannot prove were not trained on the selection set. Give its "
                    "frozen_model or training_manifest, or set provenance.allow_unverified=true.")
            records.append({"model_id": model_id, "verified": False, "method": "none"})
            continue
        trained, record = _trained_ids(entry)
        task_overlap = sorted(tasks & trained)
        host_overlap = sorted(hosts & trained)
        if task_overlap:
            raise ProvenanceError(f"model {model_id!r} was trained on {len(task_overlap)} selection injections, "
                                  f"e.g. {task_overlap[:3]}: its completeness would be biased high")
        neg_overlap = sorted(negatives & trained)
        if neg_overlap:
            raise ProvenanceError(f"model {model_id!r} trained on {len(neg_overlap)} of the negatives that set its "
                                  f"FPR threshold, e.g. {neg_overlap[:3]}: use held-out negatives")
        if host_overlap and cfg.fail_on_host_overlap:
            raise ProvenanceError(
                f"model {model_id!r} trained on {len(host_overlap)} of the {len(hosts)} selection hosts, e.g. "
                f"{host_overlap[:3]}; use disjoint hosts or set provenance.fail_on_host_overlap=false")
        records.append({**record, "model_id": model_id, "verified": True, "n_trained_ids": len(trained),
                        "n_task_overlap": 0, "n_host_overlap": len(host_overlap),
                        "host_overlap_frac": len(host_overlap) / max(len(hosts), 1)})
    return records
