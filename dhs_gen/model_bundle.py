"""The frozen-model bundle as data: its record and the id lists it was trained on, without torch.

A bundle directory (written by ``training.export``) holds ``model.json`` (model_id, hashes, code
version, ...), ``trained_ids.txt`` and ``trained_host_ids.txt`` (sorted ids, one a line, each checked
against its SHA-256 in the record), the weights, and ``_SUCCESS`` last. The science core reads only
the ids and the record from it, so provenance checks need no model and no deep-learning stack.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterable

MODEL_JSON = "model.json"
TRAINED_IDS = "trained_ids.txt"
TRAINED_HOSTS = "trained_host_ids.txt"


def ids_hash(ids: Iterable[str]) -> str:
    """SHA-256 of the sorted, newline-joined ids (order-independent)."""
    h = hashlib.sha256()
    for i in sorted(str(x) for x in ids):
        h.update(i.encode())
        h.update(b"\n")
    return h.hexdigest()


def read_record(path: str) -> dict:
    """``model.json`` of a complete bundle; FileNotFoundError when ``_SUCCESS`` is missing."""
    from dhs_gen.storage import is_complete, join_uri, read_bytes

    if not is_complete(path):
        raise FileNotFoundError(f"{path}: not a complete frozen model (no _SUCCESS marker)")
    return json.loads(read_bytes(join_uri(path, MODEL_JSON)))


def read_id_list(path: str, record: dict, name: str, hash_key: str) -> frozenset:
    """The id list ``name`` of the bundle at ``path``, verified against ``record[hash_key]``."""
    from dhs_gen.storage import join_uri, read_text

    ids = [line for line in read_text(join_uri(path, name)).splitlines() if line]
    if ids_hash(ids) != record[hash_key]:
        raise ValueError(f"{path}: {name} does not match {hash_key}")
    return frozenset(ids)


@dataclass(frozen=True)
class TrainingIds:
    """What one frozen model was trained on: row ids and host-galaxy ids, with its provenance."""

    path: str
    model_id: str
    trained_ids: frozenset
    trained_host_ids: frozenset
    record: dict

    def provenance(self) -> dict:
        """The fields a selection summary records for this model."""
        r = self.record
        return {"path": self.path, "model_id": self.model_id, "data_manifest_hash": r.get("data_manifest_hash"),
                "trained_ids_hash": r.get("trained_ids_hash"), "code_version": r.get("code_version")}


def read_training_ids(path: str) -> TrainingIds:
    """Read a bundle's record and both id lists (hash-verified)."""
    record = read_record(path)
    return TrainingIds(path=path, model_id=record["model_id"],
                       trained_ids=read_id_list(path, record, TRAINED_IDS, "trained_ids_hash"),
                       trained_host_ids=read_id_list(path, record, TRAINED_HOSTS, "trained_host_ids_hash"),
                       record=record)
