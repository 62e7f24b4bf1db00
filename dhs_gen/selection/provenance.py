"""Proof that a scored model never trained on the selection injection set, its hosts, or the
negatives that set its cut.

A score row names its frozen model by ``model_id`` (a content hash). For each model the config
gives the frozen-model bundle (read as data by ``dhs_gen.model_bundle``: model_id, the trained row
ids and the trained host-galaxy ids, each list checked against its hash) or the training manifest
it was trained on. "Seen in training" is a trained row id or a trained host id (a host whose
cutout carried a training injection, control or hard negative). The run stops when a selection
``task_id`` was trained on, when a negative that sets the FPR cut was seen in training, and, unless
``fail_on_host_overlap`` is false, when a selection host was seen in training: a model trained on
injections into the selection hosts has learnt those very galaxies. The overlap is reported either way.
"""
from __future__ import annotations

from typing import Iterable

from dhs_gen.model_bundle import read_training_ids
from dhs_gen.selection.config import ModelProvenance, ProvenanceConfig


class ProvenanceError(RuntimeError):
    """A model's provenance is missing, inconsistent, or shows it trained on the selection set."""


def _frozen_ids(path: str, model_id: str | None) -> tuple[frozenset, frozenset, dict]:
    """(trained row ids, trained host ids, record) of the bundle at ``path`` (no model is loaded)."""
    ids = read_training_ids(path)
    if model_id is not None and ids.model_id != model_id:
        raise ProvenanceError(f"scores name model {model_id!r} but {path} holds model {ids.model_id!r}")
    return ids.trained_ids, ids.trained_host_ids, ids.provenance()


def _trained_ids(entry: ModelProvenance) -> tuple[frozenset, frozenset, dict]:
    """(trained row ids, trained host ids, provenance record) from the frozen model(s) or the
    training manifest (its ``galaxy_id`` and ``host_id`` columns are hosts, ``stamp_ref`` rows)."""
    if entry.frozen_model:
        ids, hosts, rec = _frozen_ids(entry.frozen_model, entry.model_id)
        return ids, hosts, {"method": "frozen_model", **rec}
    if entry.members:
        parts = [_frozen_ids(path, None) for path in entry.members]
        return (frozenset().union(*(p[0] for p in parts)), frozenset().union(*(p[1] for p in parts)),
                {"method": "ensemble_members", "members": [p[2] for p in parts]})
    if entry.training_manifest:
        from dhs_gen.storage import parquet_dataset, read_parquet

        names = parquet_dataset(entry.training_manifest).schema.names
        table = read_parquet(entry.training_manifest, columns=[c for c in ("galaxy_id", "stamp_ref", "host_id")
                                                               if c in names])
        column = {c: [i for i in table[c].to_pylist() if i is not None] if c in table.column_names else []
                  for c in ("galaxy_id", "stamp_ref", "host_id")}
        return (frozenset(column["galaxy_id"]) | frozenset(column["stamp_ref"]),
                frozenset(column["galaxy_id"]) | frozenset(column["host_id"]),
                {"method": "training_manifest", "path": entry.training_manifest})
    raise ProvenanceError(f"provenance for model {entry.model_id!r} names no frozen_model, members or "
                          "training_manifest")


def verify_provenance(model_ids: Iterable[str], cfg: ProvenanceConfig, task_ids: Iterable[str],
                      host_ids: Iterable[str], negative_ids: Iterable[str] = ()) -> list[dict]:
    """Check every scored model; return one record per model (``verified`` true/false).

    Raises ProvenanceError when a model trained on a selection task_id, on a selection host (a
    trained row id or trained host id; unless ``fail_on_host_overlap`` is false), on a negative that
    sets its FPR threshold (the cut would be optimistic), or when a model has no provenance and
    ``allow_unverified`` is false.
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
        trained, trained_hosts, record = _trained_ids(entry)
        seen = trained | trained_hosts
        task_overlap = sorted(tasks & trained)
        if task_overlap:
            raise ProvenanceError(f"model {model_id!r} was trained on {len(task_overlap)} selection injections, "
                                  f"e.g. {task_overlap[:3]}: its completeness would be biased high")
        neg_overlap = sorted(negatives & seen)
        if neg_overlap:
            raise ProvenanceError(f"model {model_id!r} trained on {len(neg_overlap)} of the negatives that set its "
                                  f"FPR threshold (as rows or as injection hosts), e.g. {neg_overlap[:3]}: "
                                  "use held-out negatives")
        host_overlap = sorted(hosts & seen)
        if host_overlap and cfg.fail_on_host_overlap:
            raise ProvenanceError(
                f"model {model_id!r} was trained on {len(host_overlap)} of the {len(hosts)} selection hosts "
                f"(as training rows or injection hosts), e.g. {host_overlap[:3]}: draw the selection set from "
                "hosts with host_role 'selection' (disjoint from training), or set provenance.fail_on_host_overlap=false "
                "to report the overlap instead")
        records.append({**record, "model_id": model_id, "verified": True, "n_trained_ids": len(trained),
                        "n_trained_host_ids": len(trained_hosts), "n_task_overlap": 0,
                        "n_host_overlap": len(host_overlap), "host_overlap_frac": len(host_overlap) / max(len(hosts), 1)})
    return records
