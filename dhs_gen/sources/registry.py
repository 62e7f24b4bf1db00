"""Registry of source generators: declared parameters, vectorised sampling, row-deterministic draws.

A generator turns uniforms u (n, n_uniforms) into a batch of source parameters by inverse-CDF
transforms (``from_uniforms``), so the same row id and seed give the same source whatever the
batch it lands in (``sample_rows``), while ``sample(rng, n)`` draws a whole batch at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Tuple

import numpy as np

from dhs_gen.determinism import row_rng


class SourceError(ValueError):
    """Unknown generator, bad option or an invalid generated source (message names the row)."""


@dataclass(frozen=True)
class ParamSpec:
    """One declared source parameter: name, unit, range [low, high] and its prior in words."""

    name: str
    unit: str
    low: float
    high: float
    prior: str


class SourceGenerator:
    """Base class. Subclasses set ``name``, ``kind`` ("sersic" | "image"), ``n_uniforms`` and
    implement ``params()`` and ``from_uniforms(u, theta_E, center_x, center_y)``.

    The returned batch is a dict of (n,) arrays (plus ``templates`` (n, C, h, w) for image
    sources) ready for :func:`dhs_gen.sources.render.render_lensed_source`, with ``kind``.
    """

    name = ""
    kind = ""
    n_uniforms = 0

    def params(self) -> Tuple[ParamSpec, ...]:
        raise NotImplementedError

    def from_uniforms(self, u: np.ndarray, theta_E=None, center_x=0.0, center_y=0.0) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, n: int, theta_E=None, center_x=0.0,
               center_y=0.0) -> Dict[str, np.ndarray]:
        """Draw ``n`` sources with one Generator (vectorised)."""
        return self.from_uniforms(rng.random((int(n), self.n_uniforms)), theta_E, center_x, center_y)

    def sample_rows(self, seed, row_ids: Iterable, theta_E=None, center_x=0.0,
                    center_y=0.0) -> Dict[str, np.ndarray]:
        """One source per row id, each from its own stable (seed, row id) stream: independent of batching."""
        ids = list(row_ids)
        u = np.array([row_rng(seed, rid).random(self.n_uniforms) for rid in ids]).reshape(len(ids), self.n_uniforms)
        return self.from_uniforms(u, theta_E, center_x, center_y)

    def describe(self) -> List[dict]:
        """The declared parameters as plain dicts (for docs and run summaries)."""
        return [spec.__dict__.copy() for spec in self.params()]


_REGISTRY: Dict[str, Callable[..., SourceGenerator]] = {}


def register_source(name: str, factory: Callable[..., SourceGenerator]) -> None:
    """Register a generator factory (a class or callable taking keyword options) under ``name``."""
    if name in _REGISTRY and _REGISTRY[name] is not factory:
        raise SourceError(f"source generator {name!r} is already registered")
    _REGISTRY[name] = factory


def get_source(name: str, **options) -> SourceGenerator:
    """A configured generator by name; options are the generator's keyword settings."""
    if name not in _REGISTRY:
        raise SourceError(f"unknown source generator {name!r}; registered: {sorted(_REGISTRY)}")
    try:
        return _REGISTRY[name](**options)
    except TypeError as exc:
        raise SourceError(f"bad options for source generator {name!r}: {exc}") from None


def list_sources() -> List[str]:
    """Names of the registered generators."""
    return sorted(_REGISTRY)
