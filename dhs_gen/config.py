"""Typed YAML configuration.

Every stage declares its configuration as a :class:`StrictModel` (pydantic, unknown keys are
errors, values validated). ``load_config`` reads YAML (local or any fsspec URI), applies
``key.sub=value`` overrides, and validates; ``save_resolved_config`` writes the resolved
config beside an output so every result records exactly what produced it.
"""
from __future__ import annotations

import json
from typing import Any, Sequence, Type, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T", bound="StrictModel")


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key."""


class StrictModel(BaseModel):
    """Base for all config sections: unknown keys are rejected, assignment re-validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _parse_scalar(text: str) -> Any:
    return yaml.safe_load(text)


def apply_overrides(data: dict, overrides: Sequence[str] = ()) -> dict:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key.path=value")
        path, value = item.split("=", 1)
        keys = path.strip().split(".")
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {key!r} is not a section")
        node[keys[-1]] = _parse_scalar(value)
    return data


def read_yaml(uri: str) -> dict:
    """Read a YAML mapping from a path or URI."""
    from dhs_gen.storage import read_text

    try:
        data = yaml.safe_load(read_text(uri)) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{uri}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{uri}: top level must be a mapping, got {type(data).__name__}")
    return data


def parse_config(model: Type[T], data: dict, source: str = "<config>") -> T:
    """Validate a dict against ``model``; errors name every offending key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{source}: invalid configuration: {problems}") from None


def load_config(model: Type[T], uri: str | None = None, overrides: Sequence[str] = ()) -> T:
    """Load YAML at ``uri`` (or defaults when None), apply overrides, validate into ``model``."""
    data = read_yaml(uri) if uri else {}
    apply_overrides(data, overrides)
    return parse_config(model, data, source=uri or "<defaults>")


# argparse dests every job has that are not inputs or config values
GENERIC_FLAGS = frozenset({"config", "overrides", "set", "master", "log_level", "allow_partial", "debug",
                           "final_output"})


def cli_values(args: dict) -> dict:
    """A job's own command-line values (inputs, outputs, models...): the parsed flags that are set,
    without the generic ones (``--config``, ``--set``, ``--master``, ...)."""
    return {k: v for k, v in args.items() if k not in GENERIC_FLAGS and v is not None and v != [] and v != ""}


def apply_cli_values(cfg: T, values: dict) -> T:
    """``cfg`` with the command-line values written into the fields they stand for, validated, so
    ``_resolved_config.yaml`` records the inputs actually used (not ``input: ''``).

    A flag ``--x`` sets field ``x``, else ``x_uri`` (``--manifest`` -> ``manifest_uri``), else the
    list field ``xs`` (repeatable ``--model`` -> ``models``); flags with no such field, or whose
    field is a config section (the catalogue's ``positives:``), are left out (``_summary.json``
    records every flag's value under ``inputs``).
    """
    fields = type(cfg).model_fields
    update = {}
    for key, value in values.items():
        for name in (key, f"{key}_uri", f"{key}s"):
            if name in fields:
                if not isinstance(getattr(cfg, name), (BaseModel, dict)):  # a config section is not a flag's
                    update[name] = value
                break
    if not update:
        return cfg
    return parse_config(type(cfg), {**config_to_dict(cfg), **update}, source="command line")


def config_to_dict(cfg: BaseModel) -> dict:
    """The resolved config as plain JSON-able data."""
    return json.loads(cfg.model_dump_json())


def save_resolved_config(cfg: BaseModel, out_uri: str, name: str = "_resolved_config.yaml") -> str:
    """Write the resolved config as YAML beside an output (``out_uri`` is a directory URI)."""
    from dhs_gen.storage import join_uri, write_text

    target = join_uri(out_uri, name)
    write_text(target, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    return target
